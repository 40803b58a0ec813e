from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q


class User(AbstractUser):
    # Moved only by accounts.credits, in the same transaction as its ledger entry.
    balance_cents = models.BigIntegerField(default=0, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance_cents__gte=0), name="user_balance_not_negative"),
        ]


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
