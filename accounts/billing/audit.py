"""Proof that the money adds up (`manage.py audit_credits`, CONTRACT §3; also the tests).

Every check reads one consistent snapshot: on PostgreSQL a REPEATABLE READ transaction, so
charges committing while the audit runs are either wholly in what it reads or wholly out; on
SQLite one transaction (its write lock holds writers back until the audit is done). Reading
each table at a different moment would report healthy books as broken, or hide a real fault.

What it proves:
- every account's balance is the sum of its entries' balance moves, and its debt the sum of
  their debt moves; every entry is for the owner of the account it moves;
- every generation has exactly one charge entry (its cost), every failed one exactly one
  refund entry (its cost) and no other generation any, and all of them are its owner's;
- every paid top-up was credited exactly once (its amount, to its owner), an unpaid one never;
  its take-backs equal what Stripe refunded or disputed (less any dispute won), and the part of
  them that became owed equals what the top-up records as owed;
- no entry names a generation or a top-up that does not exist, or one it cannot belong to.
"""

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, F, Sum

from accounts.billing.models import CreditAccount, CreditEntry, TopUp

Kind = CreditEntry.Kind
GENERATION_KINDS = {Kind.CHARGE, Kind.REFUND}
TOPUP_KINDS = {Kind.TOPUP, Kind.TAKE_BACK, Kind.RESTORE}


@contextmanager
def consistent_snapshot() -> Iterator[None]:
    """Everything read inside sees the database at one moment."""
    if connection.in_atomic_block:
        # Inside a caller's transaction (the tests' own): it is the snapshot we are asked about,
        # and its isolation level can no longer be changed.
        yield
        return
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Must be the transaction's first statement: the snapshot is taken at the next one.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


@dataclass
class _Named:
    """What the ledger says about one generation or top-up."""

    users: set[int] = field(default_factory=set)
    count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    amount: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    owed: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def _entries_naming(prefix: str) -> dict[str, _Named]:
    named: dict[str, _Named] = defaultdict(_Named)
    rows = (
        CreditEntry.objects.filter(reference__startswith=prefix)
        .values("reference", "user_id", "kind")
        .annotate(n=Count("id"), amount=Sum("amount_cents"), owed=Sum("owed_cents"))
        .order_by()
    )
    for row in rows:
        about = named[row["reference"].removeprefix(prefix)]
        about.users.add(row["user_id"])
        about.count[row["kind"]] += row["n"]
        about.amount[row["kind"]] += row["amount"]
        about.owed[row["kind"]] += row["owed"]
    return named


def _owner_problems(what: str, about: _Named, owner_id: int, usernames: dict[int, str]) -> list[str]:
    strangers = sorted(usernames.get(user_id, str(user_id)) for user_id in about.users - {owner_id})
    if not strangers:
        return []
    return [f"{what}: ledger entries for {', '.join(strangers)}, but it is {usernames.get(owner_id)}'s"]


def _account_problems(usernames: dict[int, str]) -> list[str]:
    problems: list[str] = []
    sums = {
        row["account_id"]: row
        for row in CreditEntry.objects.values("account_id")
        .annotate(amount=Sum("amount_cents"), owed=Sum("owed_cents"))
        .order_by()
    }
    accounts = CreditAccount.objects.values_list("id", "owner_id", "balance_cents", "owed_cents")
    for account_id, owner_id, balance, owed in accounts.iterator():
        row = sums.get(account_id) or {"amount": 0, "owed": 0}
        name = usernames.get(owner_id, str(owner_id))
        if balance != row["amount"] + row["owed"]:
            problems.append(f"user {name}: balance {balance} != ledger sum {row['amount'] + row['owed']}")
        if owed != row["owed"]:
            problems.append(f"user {name}: owes {owed} != ledger debt {row['owed']}")
    strays = (
        CreditEntry.objects.exclude(account__owner_id=F("user_id"))
        .values_list("id", "user_id", "account__owner_id")
        .order_by("id")
    )
    for entry_id, user_id, owner_id in strays:
        problems.append(
            f"ledger entry {entry_id} is for {usernames.get(user_id)} "
            f"but moves the account of {usernames.get(owner_id)}"
        )
    return problems


def _generation_problems(usernames: dict[int, str]) -> list[str]:
    from generations.models import Generation

    problems: list[str] = []
    named = _entries_naming("generation:")
    seen: set[str] = set()
    rows = Generation.objects.values_list("id", "user_id", "status", "cost_cents").order_by()
    for gen_id, owner_id, status, cost in rows.iterator():
        key = str(gen_id)
        seen.add(key)
        about = named.get(key, _Named())
        what = f"generation {gen_id}"
        charges, refunds = about.count[Kind.CHARGE], about.count[Kind.REFUND]
        if charges != 1:
            problems.append(f"{what}: {charges} charge entries, expected 1")
        elif -about.amount[Kind.CHARGE] != cost:
            problems.append(f"{what}: charged {-about.amount[Kind.CHARGE]}, cost is {cost}")
        expected_refunds = 1 if status == Generation.Status.FAILED else 0
        if refunds != expected_refunds:
            problems.append(f"{what} ({status}): {refunds} refund entries, expected {expected_refunds}")
        elif expected_refunds and about.amount[Kind.REFUND] != cost:
            problems.append(f"{what}: refunded {about.amount[Kind.REFUND]}, cost is {cost}")
        others = {kind: n for kind, n in about.count.items() if kind not in GENERATION_KINDS and n}
        if others:
            problems.append(f"{what}: entries of kinds a generation never has: {sorted(others)}")
        problems += _owner_problems(what, about, owner_id, usernames)
    problems += [f"ledger entries name generation:{key}, which does not exist" for key in named.keys() - seen]
    return problems


def _topup_problems(usernames: dict[int, str]) -> list[str]:
    problems: list[str] = []
    named = _entries_naming("topup:")
    seen: set[str] = set()
    rows = TopUp.objects.values_list(
        "id", "user_id", "state", "amount_cents", "refunded_cents", "disputed_cents", "shortfall_cents"
    ).order_by()
    for topup_id, owner_id, state, amount, refunded, disputed, shortfall in rows.iterator():
        key = str(topup_id)
        seen.add(key)
        about = named.get(key, _Named())
        what = f"top-up {topup_id} ({state})"
        credits = about.count[Kind.TOPUP]
        if state in TopUp.CREDITED:
            if credits != 1:
                problems.append(f"{what}: credited {credits} times, expected once")
            elif about.amount[Kind.TOPUP] != amount:
                problems.append(f"{what}: credited {about.amount[Kind.TOPUP]}, paid {amount}")
        elif credits:
            problems.append(f"{what}: credited {credits} times, but never paid")
        taken = -about.amount[Kind.TAKE_BACK] - about.amount[Kind.RESTORE]
        if taken != refunded + disputed:
            problems.append(
                f"{what}: {taken} credits taken back, but Stripe refunded {refunded} and disputed {disputed}"
            )
        if about.owed[Kind.TAKE_BACK] != shortfall:
            problems.append(
                f"{what}: {about.owed[Kind.TAKE_BACK]} of its take-backs became owed, it records {shortfall}"
            )
        others = {kind: n for kind, n in about.count.items() if kind not in TOPUP_KINDS and n}
        if others:
            problems.append(f"{what}: entries of kinds a top-up never has: {sorted(others)}")
        problems += _owner_problems(f"top-up {topup_id}", about, owner_id, usernames)
    problems += [f"ledger entries name topup:{key}, which does not exist" for key in named.keys() - seen]
    return problems


def audit_mismatches() -> list[str]:
    """Every way the books disagree with themselves, one line each; [] when they add up."""
    from accounts.models import User

    with consistent_snapshot():
        usernames = dict(User.objects.values_list("id", "username"))
        return _account_problems(usernames) + _generation_problems(usernames) + _topup_problems(usernames)
