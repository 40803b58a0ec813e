"""Writes about who you are: accounts, sign-up and its email check, sessions and API tokens
(money lives in accounts.billing)."""

import hashlib
import logging
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template import loader
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.billing.ledger import credits_grant
from accounts.models import ApiToken, User

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "sds_"  # noqa: S105 - a public marker, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- Email, sent by a worker -------------------------------------------------------------------


def email_send_later(
    *, subject_template_name: str, body_template_name: str, context: dict[str, Any], to_email: str
) -> None:
    """Render a mail now and let a worker send it once this transaction commits.

    Sending from the request would make its answer as slow as the SMTP server whenever a mail goes
    out, and so tell a stranger whether an address has an account."""
    subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
    body = loader.render_to_string(body_template_name, context)

    def enqueue() -> None:
        from rq import Retry

        from seedance_site.queues import get_queue

        get_queue("default").enqueue(
            "accounts.jobs.send_email",
            subject,
            body,
            to_email,
            retry=Retry(max=3, interval=[10, 60, 300]),
            # The body may hold a one-time link: keep it in Redis no longer than needed.
            result_ttl=0,
            failure_ttl=24 * 3600,
        )

    transaction.on_commit(enqueue)


def _site_context() -> dict[str, str]:
    return {"site_url": settings.SITE_URL, "site_name": "Seedance Studio"}


# --- Sign-up ---------------------------------------------------------------------------------


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset-token machinery (HMAC of the account's state, with a timestamp, valid for
    PASSWORD_RESET_TIMEOUT), under its own salt, over what confirming changes: once the address
    is confirmed, or changed, the link stops working."""

    key_salt = "accounts.services.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        verified = "" if user.email_verified_at is None else user.email_verified_at.isoformat()
        return f"{user.pk}:{user.email}:{verified}:{timestamp}"


email_verification_tokens = EmailVerificationTokenGenerator()


def verification_url(user: User) -> str:
    path = reverse(
        "verify_email",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": email_verification_tokens.make_token(user),
        },
    )
    return settings.SITE_URL + path


def _send_verification(user: User) -> None:
    email_send_later(
        subject_template_name="registration/verify_email_subject.txt",
        body_template_name="registration/verify_email.txt",
        context={
            **_site_context(),
            "user": user,
            "link": verification_url(user),
            "signup_credits": settings.SIGNUP_CREDITS,
        },
        to_email=user.email,
    )


def signup_submit(*, username: str, email: str, password: str) -> None:
    """Sign up, answering every caller the same way whether or not the name or the address is
    taken: a free pair makes the account (it can log in at once) and mails a link to confirm
    the address; a taken one mails the address what happened instead. Who gets to know that a
    name or address exists is the owner of that address, never the person at the form."""
    with transaction.atomic():
        owner = User.objects.filter(email__iexact=email).first()
        name_taken = User.objects.filter(username__iexact=username).exists()
        if owner is None and not name_taken:
            try:
                with transaction.atomic():
                    user = User.objects.create_user(username=username, email=email, password=password)
            except IntegrityError:
                # Someone took the name or the address a moment ago (the constraints are the
                # judge): tell the address, as for any taken pair.
                owner = User.objects.filter(email__iexact=email).first()
            else:
                _send_verification(user)
                logger.info("account %s signed up", user.pk)
                return
    # The same hashing work a new account costs, so the answer takes as long either way.
    make_password(password)
    context = {
        **_site_context(),
        "username": username,
        "owner": owner,
        "login_url": settings.SITE_URL + reverse("login"),
        "reset_url": settings.SITE_URL + reverse("password_reset"),
        "signup_url": settings.SITE_URL + reverse("signup"),
    }
    email_send_later(
        subject_template_name="registration/signup_taken_subject.txt",
        body_template_name="registration/signup_taken_email.txt",
        context=context,
        to_email=email,
    )


def user_send_verification(*, user: User) -> bool:
    """Mail the confirmation link again; False when there is nothing to confirm."""
    if user.email_verified_at is not None or not user.email:
        return False
    _send_verification(user)
    return True


def user_verify_email(*, user: User, token: str) -> bool:
    """Confirm the address from the mailed link, and give the sign-up credits, exactly once.

    False for a link that is wrong, expired or already used."""
    if not email_verification_tokens.check_token(user, token):
        return False
    with transaction.atomic():
        claimed = User.objects.filter(pk=user.pk, email_verified_at__isnull=True).update(
            email_verified_at=timezone.now()
        )
        if not claimed:
            return False
        if settings.SIGNUP_CREDITS:
            credits_grant(
                user=user,
                amount_cents=settings.SIGNUP_CREDITS,
                reason="Welcome credits",
                idempotency_key=f"signup:{user.pk}",
            )
    user.refresh_from_db(fields=["email_verified_at"])
    return True


# --- Sessions and API tokens -------------------------------------------------------------------


def user_sign_out_everywhere(*, user: User) -> int:
    """End every session of this account (each carries a hash that includes the epoch) and
    revoke every API token. Returns how many tokens were revoked."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(session_epoch=F("session_epoch") + 1)
        revoked = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    user.refresh_from_db(fields=["session_epoch"])
    logger.info("account %s signed out everywhere; %s API tokens revoked", user.pk, revoked)
    return revoked


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Return the stored token and the plaintext, which is never stored and shown only once."""
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip() or "API token", prefix=plaintext[:10], token_hash=hash_token(plaintext)
    )
    return token, plaintext


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_token_authenticate(plaintext: str) -> User | None:
    if not plaintext.startswith(TOKEN_PREFIX):
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(plaintext), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    # Touch at most once a minute: a busy script should not write on every request.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
