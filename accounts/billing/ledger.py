"""The credit ledger: every change of a balance goes through here.

Each change is one `CreditEntry` with a unique idempotency key, written in the same
transaction as a guarded `UPDATE ... SET balance = balance + n WHERE balance + n >= 0`.
The database's CheckConstraint is the last line of defence; the guard keeps us from
ever reaching it. A repeated idempotency key returns the first entry and changes nothing.
"""

import uuid

from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.models import CreditEntry, User


class InsufficientCredits(Exception):
    def __init__(self, *, needed_cents: int, balance_cents: int) -> None:
        self.needed_cents = needed_cents
        self.balance_cents = balance_cents
        super().__init__(f"This needs {needed_cents} credits; the balance is {balance_cents}.")


class IdempotencyConflict(Exception):
    """The key was used before for a different change: a bug in the caller, never retried."""


def _existing(idempotency_key: str, *, user_id: int, amount_cents: int) -> CreditEntry | None:
    entry = CreditEntry.objects.filter(idempotency_key=idempotency_key).first()
    if entry is not None and (entry.user_id != user_id or entry.amount_cents != amount_cents):
        raise IdempotencyConflict(f"Idempotency key {idempotency_key!r} was used for another change.")
    return entry


def _apply(
    *,
    user_id: int,
    amount_cents: int,
    kind: str,
    description: str,
    idempotency_key: str,
    reference: str = "",
    created_by: str = "",
) -> CreditEntry:
    if amount_cents == 0:
        raise ValueError("A ledger entry moves at least one credit.")
    existing = _existing(idempotency_key, user_id=user_id, amount_cents=amount_cents)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            moved = User.objects.filter(pk=user_id, balance_cents__gte=-amount_cents).update(
                balance_cents=F("balance_cents") + amount_cents
            )
            if not moved:
                balance = User.objects.filter(pk=user_id).values_list("balance_cents", flat=True).first()
                if balance is None:
                    raise User.DoesNotExist(f"No user with id {user_id}.")
                raise InsufficientCredits(needed_cents=-amount_cents, balance_cents=balance)
            # Our UPDATE holds the row lock until commit, so this read is our own result.
            balance_after = User.objects.filter(pk=user_id).values_list("balance_cents", flat=True).get()
            return CreditEntry.objects.create(
                user_id=user_id,
                amount_cents=amount_cents,
                kind=kind,
                description=description[:300],
                reference=reference,
                idempotency_key=idempotency_key,
                balance_after=balance_after,
                created_by=created_by,
            )
    except IntegrityError:
        # A concurrent call with the same key won the unique index; ours rolled back whole.
        existing = _existing(idempotency_key, user_id=user_id, amount_cents=amount_cents)
        if existing is None:
            raise
        return existing


def credits_grant(
    *, user: User, amount_cents: int, reason: str, idempotency_key: str | None = None, created_by: str = ""
) -> CreditEntry:
    """Give credits (positive) or take them back (negative, never below zero)."""
    return _apply(
        user_id=user.pk,
        amount_cents=amount_cents,
        kind=CreditEntry.Kind.GRANT if amount_cents > 0 else CreditEntry.Kind.ADJUSTMENT,
        description=reason,
        idempotency_key=idempotency_key or f"grant:{uuid.uuid4()}",
        created_by=created_by,
    )


def credits_charge(
    *, user_id: int, amount_cents: int, description: str, idempotency_key: str, reference: str
) -> CreditEntry:
    """Hold `amount_cents` (> 0). Raises InsufficientCredits and writes nothing when short."""
    if amount_cents <= 0:
        raise ValueError("A charge takes at least one credit.")
    return _apply(
        user_id=user_id,
        amount_cents=-amount_cents,
        kind=CreditEntry.Kind.CHARGE,
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
    )


def credits_refund(
    *, user_id: int, amount_cents: int, description: str, idempotency_key: str, reference: str
) -> CreditEntry:
    if amount_cents <= 0:
        raise ValueError("A refund returns at least one credit.")
    return _apply(
        user_id=user_id,
        amount_cents=amount_cents,
        kind=CreditEntry.Kind.REFUND,
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
    )


def credits_topup(
    *, user_id: int, amount_cents: int, description: str, idempotency_key: str, reference: str
) -> CreditEntry:
    if amount_cents <= 0:
        raise ValueError("A top-up adds at least one credit.")
    return _apply(
        user_id=user_id,
        amount_cents=amount_cents,
        kind=CreditEntry.Kind.TOPUP,
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
    )


def credits_take_back(
    *, user_id: int, amount_cents: int, description: str, idempotency_key: str, reference: str
) -> CreditEntry:
    """Take credits back (a refunded payment); raises InsufficientCredits when short."""
    if amount_cents <= 0:
        raise ValueError("A take-back removes at least one credit.")
    return _apply(
        user_id=user_id,
        amount_cents=-amount_cents,
        kind=CreditEntry.Kind.ADJUSTMENT,
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
    )
