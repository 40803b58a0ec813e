"""The monthly spend limit (CONTRACT §4d): what a user's generations held and kept in one calendar
month (UTC), read from the ledger itself, never from a counter that could drift from it.

Spent = charges less refunds, each counted in the month it happened: a video held on the 31st and
refunded on the 1st counts in the first month and gives its credits back in the second."""

from datetime import UTC, datetime

from django.db.models import Sum
from django.utils import timezone

from accounts.models import CreditEntry

SPENDING_KINDS = (CreditEntry.Kind.CHARGE, CreditEntry.Kind.REFUND)


class SpendLimitReached(Exception):
    def __init__(self, *, limit_cents: int, spent_cents: int, needed_cents: int) -> None:
        self.limit_cents = limit_cents
        self.spent_cents = spent_cents
        self.needed_cents = needed_cents
        super().__init__(
            f"This needs {needed_cents} credits; {spent_cents} of the monthly limit of {limit_cents} "
            "are spent already."
        )


def month_start(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(moment: datetime) -> datetime:
    start = month_start(moment)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def spent_this_month_cents(*, user_id: int, now: datetime | None = None) -> int:
    """Charges less refunds this calendar month (UTC). Below zero when refunds this month return
    more than was charged in it (a video charged last month, refunded this one)."""
    now = now or timezone.now()
    total = CreditEntry.objects.filter(
        user_id=user_id,
        kind__in=SPENDING_KINDS,
        created_at__gte=month_start(now),
        created_at__lt=next_month_start(now),
    ).aggregate(total=Sum("amount_cents"))["total"]
    return -(total or 0)


def spend_limit_check(*, user_id: int, cost_cents: int, limit_cents: int | None) -> None:
    """Raise SpendLimitReached when holding `cost_cents` more would go past `limit_cents`, the
    user's monthly limit (`monthly_spend_limit_cents`, read by the caller before it takes the
    lock: most users have none, and then nothing is read under it); reaching it exactly is allowed.
    Called under the user's row lock, with the charge that follows in the same transaction, so
    concurrent submissions cannot all pass it on one reading of what was spent."""
    if limit_cents is None:
        return
    spent = spent_this_month_cents(user_id=user_id)
    if spent + cost_cents > limit_cents:
        raise SpendLimitReached(limit_cents=limit_cents, spent_cents=spent, needed_cents=cost_cents)
