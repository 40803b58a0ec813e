from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac


class User(AbstractUser):
    """Who you are. What you have is not here: Django saves this row whole (a password change,
    the admin's user form), so money lives in accounts.billing's CreditAccount."""

    # Set when the person opened the link we mailed; the sign-up credits wait for it.
    email_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Bumped by "sign out everywhere": every session signed before it stops working.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            # "Bob" and "bob" are one name to a reader, so they are one name here.
            models.UniqueConstraint(
                Lower("username"),
                name="user_username_unique_ci",
                violation_error_message="A user with that username already exists (in any capitalisation).",
            ),
            # An address belongs to one account, however it is capitalised; accounts made by
            # operators may have none.
            models.UniqueConstraint(
                Lower("email"),
                condition=~Q(email=""),
                name="user_email_unique_ci",
                violation_error_message="Another account already uses this email address.",
            ),
        ]

    # Sessions carry this hash and end when it changes: on a password change (Django's own rule)
    # and, here, when session_epoch is bumped. Epoch 0 keeps Django's exact values, so sessions
    # made before the epoch existed stay valid.
    def get_session_auth_hash(self) -> str:
        if not self.session_epoch:
            return super().get_session_auth_hash()
        return self._epoch_session_hash(settings.SECRET_KEY)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        if not self.session_epoch:
            yield from super().get_session_auth_fallback_hash()
            return
        for secret in settings.SECRET_KEY_FALLBACKS:
            yield self._epoch_session_hash(secret)

    def _epoch_session_hash(self, secret: str) -> str:
        value = f"{self.password}:{self.session_epoch}"
        key_salt = "accounts.User.session_auth_hash"
        return salted_hmac(key_salt, value, secret=secret, algorithm="sha256").hexdigest()


class ApiToken(models.Model):
    """A personal token for the JSON API. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The first characters, to tell tokens apart.")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AccountSettings(models.Model):
    """What a person chose for their account: a monthly spend limit, which emails they want, and
    the secret that signs webhooks to their servers.

    A table of its own, not columns on User: Django saves the User row whole (a password change,
    the admin's user form), which could write back a limit or a secret read before a change made
    meanwhile. Written only by accounts.preferences, with update_fields."""

    user = models.OneToOneField(User, primary_key=True, on_delete=models.CASCADE, related_name="+")
    # Null: no limit. Charges less refunds in one calendar month (UTC) may not go past it.
    monthly_spend_limit_cents = models.BigIntegerField(null=True, blank=True)
    email_on_finish = models.BooleanField(default=False, help_text="Email when a video is ready or fails.")
    # Null: no email. Otherwise one email each time the balance falls below this.
    low_balance_email_cents = models.BigIntegerField(null=True, blank=True)
    # "whsec_" + base64 of random bytes, the Standard Webhooks form (CONTRACT §4c).
    webhook_secret = models.CharField(max_length=100)
    # After a rotation the old secret signs too, until `webhook_previous_until`.
    webhook_previous_secret = models.CharField(max_length=100, blank=True)
    webhook_previous_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "account settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_spend_limit_cents__gte=0), name="account_spend_limit_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(low_balance_email_cents__gte=0), name="account_low_balance_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"Settings of {self.user_id}"


class EmailNotice(models.Model):
    """One email about one event, sent at most once: `key` names the event and is unique, and a
    worker claims the row (pending → sending) before it sends."""

    class Kind(models.TextChoices):
        GENERATION_SUCCEEDED = "generation_succeeded", "Video ready"
        GENERATION_FAILED = "generation_failed", "Video failed"
        BALANCE_LOW = "balance_low", "Balance low"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Could not be sent"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="email_notices")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    # The event: "generation:<uuid>:finished", "balance-low:<ledger entry id>".
    key = models.CharField(max_length=200, unique=True)
    to_email = models.EmailField()
    subject = models.CharField(max_length=300)
    text_body = models.TextField()
    html_body = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "created_at"], name="notice_state_created")]

    def __str__(self) -> str:
        return f"{self.kind} to {self.user_id} ({self.state})"


# Money lives in its own room; its models stay in this app (table names, migrations).
from accounts.billing.models import CreditAccount, CreditEntry, StripeEvent, TopUp  # noqa: E402, F401
