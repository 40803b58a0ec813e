"""Writes about who you are: accounts and API tokens (money lives in accounts.credits)."""

import hashlib
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.credits import credits_grant
from accounts.models import ApiToken, User

TOKEN_PREFIX = "sds_"  # noqa: S105 - a public marker, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def user_create(*, username: str, email: str, password: str) -> User:
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=email, password=password)
        if settings.SIGNUP_CREDITS:
            credits_grant(
                user=user,
                amount_cents=settings.SIGNUP_CREDITS,
                reason="Welcome credits",
                idempotency_key=f"signup:{user.pk}",
            )
    return user


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
