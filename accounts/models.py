from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.crypto import salted_hmac


class User(AbstractUser):
    # Moved only by accounts.credits, in the same transaction as its ledger entry.
    balance_cents = models.BigIntegerField(default=0, editable=False)
    # Set when the person opened the link we mailed; the sign-up credits wait for it.
    email_verified_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Bumped by "sign out everywhere": every session signed before it stops working.
    session_epoch = models.PositiveIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance_cents__gte=0), name="user_balance_not_negative"),
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


class CreditEntry(models.Model):
    """One append-only line of the credit ledger; a user's balance is the sum of theirs."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        TOPUP = "topup", "Top-up"
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="credit_entries")
    amount_cents = models.BigIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=300)
    # What caused it, as "<kind>:<id>" (e.g. "generation:<uuid>", "topup:<id>").
    reference = models.CharField(max_length=100, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    balance_after = models.BigIntegerField()
    created_by = models.CharField(max_length=150, blank=True, help_text="Operator, for manual entries.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["user", "-id"], name="credit_user_newest")]
        constraints = [
            models.CheckConstraint(condition=~Q(amount_cents=0), name="credit_entry_not_zero"),
            models.CheckConstraint(
                condition=Q(balance_after__gte=0), name="credit_balance_after_not_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind="charge") | Q(amount_cents__lt=0), name="credit_charge_is_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["refund", "topup", "grant"]) | Q(amount_cents__gt=0),
                name="credit_credit_is_positive",
            ),
        ]
        verbose_name_plural = "credit entries"

    def __str__(self) -> str:
        return f"{self.amount_cents:+d} {self.kind} for {self.user_id}"


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


class TopUp(models.Model):
    """One purchase of credits through a Stripe Checkout Session (1 credit = 1 cent).

    Written before the session exists, so the session can name it; moved only by
    accounts.billing, by claims on `state`.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        PAID = "paid", "Paid"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="topups")
    amount_cents = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="usd")
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    # Null until Stripe has answered; unique once known (NULLs never collide).
    stripe_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_payment_intent = models.CharField(max_length=255, blank=True, db_index=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    receipt_url = models.URLField(max_length=2000, blank=True)
    refunded_cents = models.BigIntegerField(default=0)
    # Refunded credits the user had already spent, so could not be taken back: for operators.
    shortfall_cents = models.BigIntegerField(default=0)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"], name="topup_user_newest")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_cents__gt=0), name="topup_amount_positive"),
            models.CheckConstraint(
                condition=Q(refunded_cents__gte=0) & Q(refunded_cents__lte=models.F("amount_cents")),
                name="topup_refunded_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(shortfall_cents__gte=0) & Q(shortfall_cents__lte=models.F("refunded_cents")),
                name="topup_shortfall_within_refunded",
            ),
        ]

    def __str__(self) -> str:
        return f"Top-up {self.pk}: {self.amount_cents} credits, {self.state}"

    @property
    def credited(self) -> bool:
        return self.state in (self.State.PAID, self.State.PARTIALLY_REFUNDED, self.State.REFUNDED)


class StripeEvent(models.Model):
    """Every verified Stripe webhook event, stored under Stripe's id before it is handled.

    The unique id makes a redelivery find the first row; the state says whether it was
    handled, so it is handled once, and a failed one can be handled again (by Stripe's
    retry, or an operator's "process again").
    """

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    stripe_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_id} ({self.state})"


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
