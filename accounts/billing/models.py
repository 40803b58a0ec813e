"""The money's tables: moved only by accounts.billing (the ledger, top-ups), never by a form or a save."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class CreditEntry(models.Model):
    """One append-only line of the credit ledger; a user's balance is the sum of theirs."""

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        TOPUP = "topup", "Top-up"
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_entries"
    )
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

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="topups")
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
