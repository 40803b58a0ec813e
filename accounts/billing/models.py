"""The money's tables: moved only by accounts.billing (the ledger, top-ups), never by a form or a save."""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class CreditAccount(models.Model):
    """Where a balance and a debt live: one account per user now, shaped so a team could share one.

    Written only by accounts.billing.ledger, by a guarded UPDATE in the same transaction as the
    ledger row that explains it. It is not the auth `User` row on purpose: Django saves that row
    whole on a password change, and a stale copy written back would undo every charge since.
    """

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_account"
    )
    balance_cents = models.BigIntegerField(default=0)
    # Credits taken back (a Stripe refund or dispute) that the balance could not cover: the next
    # credits to arrive pay this first, so a debt and a positive balance never exist together.
    owed_cents = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance_cents__gte=0), name="credit_account_balance_gte_0"),
            models.CheckConstraint(condition=Q(owed_cents__gte=0), name="credit_account_owed_gte_0"),
            models.CheckConstraint(
                condition=Q(balance_cents=0) | Q(owed_cents=0), name="credit_account_debt_paid_first"
            ),
        ]

    def __str__(self) -> str:
        owed = f", owes {self.owed_cents}" if self.owed_cents else ""
        return f"Credits of {self.owner_id}: {self.balance_cents}{owed}"

    def save(self, *args: object, **kwargs: object) -> None:
        # A guard, not logic: no form, admin page or stale instance may write a balance.
        raise TypeError("A CreditAccount is written only by accounts.billing.ledger.")


class CreditEntry(models.Model):
    """One append-only line of the credit ledger: one event, exactly one row.

    `amount_cents` is the event's value (a refund's is the cost it gives back, a take-back's what
    Stripe took); `owed_cents` is how it moved the debt (+ when a take-back could not be covered,
    - when arriving credits paid a debt). The balance moved by `amount_cents + owed_cents`, so an
    account's balance is the sum of both columns over its entries and its debt the sum of `owed_cents`.
    """

    class Kind(models.TextChoices):
        GRANT = "grant", "Grant"
        TOPUP = "topup", "Top-up"
        CHARGE = "charge", "Charge"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"
        TAKE_BACK = "take_back", "Taken back"
        RESTORE = "restore", "Given back"

    # Credits arriving: they pay what is owed before they reach the balance.
    CREDITS = (Kind.GRANT, Kind.TOPUP, Kind.REFUND, Kind.RESTORE)

    account = models.ForeignKey(CreditAccount, on_delete=models.PROTECT, related_name="entries")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="credit_entries"
    )
    amount_cents = models.BigIntegerField()
    owed_cents = models.BigIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    description = models.CharField(max_length=300)
    # What caused it, as "<kind>:<id>" (e.g. "generation:<uuid>", "topup:<id>").
    reference = models.CharField(max_length=100, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=200, unique=True)
    balance_after = models.BigIntegerField()
    owed_after = models.BigIntegerField(default=0)
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
            models.CheckConstraint(condition=Q(owed_after__gte=0), name="credit_owed_after_not_negative"),
            models.CheckConstraint(
                condition=~Q(kind="charge") | Q(amount_cents__lt=0), name="credit_charge_is_negative"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["charge", "adjustment"]) | Q(owed_cents=0),
                name="credit_charge_never_owes",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["refund", "topup", "grant", "restore"])
                | (Q(amount_cents__gt=0) & Q(owed_cents__lte=0) & Q(owed_cents__gte=-F("amount_cents"))),
                name="credit_credit_pays_debt_within_value",
            ),
            models.CheckConstraint(
                condition=~Q(kind="take_back")
                | (Q(amount_cents__lt=0) & Q(owed_cents__gte=0) & Q(owed_cents__lte=-F("amount_cents"))),
                name="credit_take_back_owes_within_value",
            ),
        ]
        verbose_name_plural = "credit entries"

    def __str__(self) -> str:
        return f"{self.amount_cents:+d} {self.kind} for {self.user_id}"

    @property
    def balance_delta(self) -> int:
        return self.amount_cents + self.owed_cents

    @property
    def debt_paid_cents(self) -> int:
        return max(-self.owed_cents, 0)


class TopUp(models.Model):
    """One purchase of credits through a Stripe Checkout Session (1 credit = 1 cent).

    Written before the session exists, so the session can name it; moved only by
    accounts.billing.topups, by claims on `state` under the row's lock.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Awaiting payment"
        PAID = "paid", "Paid"
        EXPIRED = "expired", "Expired"
        FAILED = "failed", "Failed"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"
        DISPUTED = "disputed", "Disputed"

    CREDITED = (State.PAID, State.PARTIALLY_REFUNDED, State.REFUNDED, State.DISPUTED)

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
    # Taken back by a dispute still open or lost (a dispute won gives it back).
    disputed_cents = models.BigIntegerField(default=0)
    # Of the credits taken back for this top-up, those the balance could not cover (held by
    # unfinished videos, or spent) and that became owed instead: for operators.
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
                condition=Q(disputed_cents__gte=0)
                & Q(disputed_cents__lte=models.F("amount_cents") - models.F("refunded_cents")),
                name="topup_disputed_within_unrefunded",
            ),
            models.CheckConstraint(condition=Q(shortfall_cents__gte=0), name="topup_shortfall_not_negative"),
        ]

    def __str__(self) -> str:
        return f"Top-up {self.pk}: {self.amount_cents} credits, {self.state}"

    @property
    def credited(self) -> bool:
        return self.state in self.CREDITED


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
