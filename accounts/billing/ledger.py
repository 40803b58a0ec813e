"""The credit ledger: the only code that moves a balance or a debt.

Each event is exactly one `CreditEntry`, with a unique idempotency key, written in the same
transaction as the `CreditAccount` row it moves. That row is locked (`SELECT ... FOR UPDATE`)
and then changed by an `UPDATE` guarded on the very values it was read with; the database's
CheckConstraints (balance >= 0, owed >= 0, never both positive) are the last line of defence.
A repeated idempotency key returns the first entry (with `replayed` set) and changes nothing.

Debts: a take-back (a Stripe refund or dispute) takes what the balance holds and records the
rest as owed; credits that arrive later (a failed video's refund, a grant, a top-up, a dispute
won) pay what is owed before they reach the balance. An entry's `amount_cents` is always the
event's whole value; `owed_cents` says how much of it went to or came from the debt.
"""

import uuid

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F

from accounts.billing.models import CreditAccount, CreditEntry


class InsufficientCredits(Exception):
    def __init__(self, *, needed_cents: int, balance_cents: int) -> None:
        self.needed_cents = needed_cents
        self.balance_cents = balance_cents
        super().__init__(f"This needs {needed_cents} credits; the balance is {balance_cents}.")


class IdempotencyConflict(Exception):
    """The key was used before for a different change: a bug in the caller, never retried."""


def _existing(idempotency_key: str, *, user_id: int, amount_cents: int) -> CreditEntry | None:
    entry = CreditEntry.objects.filter(idempotency_key=idempotency_key).first()
    if entry is None:
        return None
    if entry.user_id != user_id or entry.amount_cents != amount_cents:
        raise IdempotencyConflict(f"Idempotency key {idempotency_key!r} was used for another change.")
    entry.replayed = True
    return entry


def _account_for_update(user_id: int) -> CreditAccount:
    """The user's account, locked until the end of the transaction; made on first use.

    Made lazily, so that every way a user comes to exist (sign-up, createsuperuser, the admin's
    "add user", a script) works without a hook. ON CONFLICT DO NOTHING lets two first movements
    at once both go on: the loser waits for the winner's row and locks it.
    """
    account = CreditAccount.objects.select_for_update().filter(owner_id=user_id).first()
    if account is not None:
        return account
    user_model = get_user_model()
    if not user_model.objects.filter(pk=user_id).exists():
        raise user_model.DoesNotExist(f"No user with id {user_id}.")
    CreditAccount.objects.bulk_create([CreditAccount(owner_id=user_id)], ignore_conflicts=True)
    return CreditAccount.objects.select_for_update().get(owner_id=user_id)


def _apply(
    *,
    user_id: int,
    amount_cents: int,
    kind: str,
    description: str,
    idempotency_key: str,
    reference: str = "",
    created_by: str = "",
    may_owe: bool = False,
    new_key: bool = False,
) -> CreditEntry:
    if amount_cents == 0:
        raise ValueError("A ledger entry moves at least one credit.")
    if not new_key:
        existing = _existing(idempotency_key, user_id=user_id, amount_cents=amount_cents)
        if existing is not None:
            return existing
    try:
        # A new key cannot collide, so no savepoint to fall back to (two round trips fewer).
        with transaction.atomic(savepoint=not new_key):
            account = _account_for_update(user_id)
            # Again under the lock: a twin call with this key may have committed meanwhile.
            existing = (
                None if new_key else _existing(idempotency_key, user_id=user_id, amount_cents=amount_cents)
            )
            if existing is not None:
                return existing
            balance, owed = account.balance_cents, account.owed_cents
            if amount_cents > 0:
                paid = min(owed, amount_cents)  # what is owed is paid first
                balance_delta, owed_delta = amount_cents - paid, -paid
            elif -amount_cents <= balance:
                balance_delta, owed_delta = amount_cents, 0
            elif may_owe:
                balance_delta, owed_delta = -balance, -amount_cents - balance
            else:
                raise InsufficientCredits(needed_cents=-amount_cents, balance_cents=balance)
            guarded = CreditAccount.objects.filter(pk=account.pk, balance_cents=balance, owed_cents=owed)
            moved = guarded.update(
                balance_cents=F("balance_cents") + balance_delta, owed_cents=F("owed_cents") + owed_delta
            )
            # Defence in depth: the row lock makes a miss impossible (no test can reach it); never
            # write an entry that lies.
            if moved != 1:  # pragma: no cover, no mutate
                raise RuntimeError(f"Credit account {account.pk} moved under our lock.")  # pragma: no mutate
            entry = CreditEntry.objects.create(
                account=account,
                user_id=user_id,
                amount_cents=amount_cents,
                owed_cents=owed_delta,
                kind=kind,
                description=description[:300],
                reference=reference,
                idempotency_key=idempotency_key,
                balance_after=balance + balance_delta,
                owed_after=owed + owed_delta,
                created_by=created_by,
            )
            entry.replayed = False
            return entry
    except IntegrityError:
        if new_key:
            raise
        # A concurrent call with the same key (for another user) won the unique index; ours
        # rolled back whole.
        # Race-only (tests/MUTATION.md): reached when another user's entry takes the key between our
        # locked look-up and our insert; tests/test_ledger_key_race.py runs it on PostgreSQL.
        # _existing raises IdempotencyConflict for it. The same user's twin never gets here (it waits
        # on the account's lock and is found by the look-up under it): returning its entry, or
        # re-raising any other IntegrityError, is defence in depth that no test can reach.
        existing = _existing(idempotency_key, user_id=user_id, amount_cents=amount_cents)  # pragma: no mutate
        if existing is None:  # pragma: no cover, no mutate
            raise
        return existing  # pragma: no cover, no mutate


def credits_grant(
    *, user, amount_cents: int, reason: str, idempotency_key: str | None = None, created_by: str = ""
) -> CreditEntry:
    """Give credits (positive: they pay what is owed first) or take them back (negative: never
    below zero and never into debt; raises InsufficientCredits instead)."""
    return _apply(
        user_id=user.pk,
        amount_cents=amount_cents,
        kind=CreditEntry.Kind.GRANT if amount_cents > 0 else CreditEntry.Kind.ADJUSTMENT,
        description=reason,
        idempotency_key=idempotency_key or f"grant:{uuid.uuid4()}",
        created_by=created_by,
    )


def credits_charge(
    *,
    user_id: int,
    amount_cents: int,
    description: str,
    idempotency_key: str,
    reference: str,
    new_key: bool = False,
) -> CreditEntry:
    """Hold `amount_cents` (> 0). Raises InsufficientCredits and writes nothing when short.

    `new_key`: the key names a row made in this same transaction (a new generation), so no entry
    can carry it yet: the two look-ups for a repeat are skipped (two queries fewer under the
    caller's lock); the unique index still refuses a second entry with it."""
    if amount_cents <= 0:
        raise ValueError("A charge takes at least one credit.")
    return _apply(
        user_id=user_id,
        amount_cents=-amount_cents,
        kind=CreditEntry.Kind.CHARGE,
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
        new_key=new_key,
    )


def credits_refund(
    *, user_id: int, amount_cents: int, description: str, idempotency_key: str, reference: str
) -> CreditEntry:
    """Give a charge back; whatever is owed is paid from it first."""
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
    """Take back credits whose payment went back (a Stripe refund or dispute): what the balance
    holds goes at once, the rest is recorded as owed. Never raises InsufficientCredits."""
    if amount_cents <= 0:
        raise ValueError("A take-back removes at least one credit.")
    return _apply(
        user_id=user_id,
        amount_cents=-amount_cents,
        kind=CreditEntry.Kind.TAKE_BACK,
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
        may_owe=True,
    )


def credits_restore(
    *, user_id: int, amount_cents: int, description: str, idempotency_key: str, reference: str
) -> CreditEntry:
    """Give back what a take-back took (a dispute won); whatever is owed is paid from it first."""
    if amount_cents <= 0:
        raise ValueError("A restore gives back at least one credit.")
    return _apply(
        user_id=user_id,
        amount_cents=amount_cents,
        kind=CreditEntry.Kind.RESTORE,
        description=description,
        idempotency_key=idempotency_key,
        reference=reference,
    )
