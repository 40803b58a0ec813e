"""Figures for the staff overview page: one day's generations, money and failures."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.billing.models import CreditEntry
from generations.models import Generation


@dataclass(frozen=True)
class DayOverview:
    start: datetime
    by_status: dict[str, int]
    credits_bought_cents: int
    revenue_cents: int
    upstream_spend_usd: Decimal
    margin_usd: Decimal
    failures_by_class: dict[str, int]
    duration_p50: float | None
    duration_p95: float | None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def day_overview(day_start: datetime | None = None) -> DayOverview:
    start = day_start or timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=1)
    today = Generation.objects.filter(created_at__gte=start, created_at__lt=end)
    by_status = dict(today.values_list("status").annotate(n=Count("id")).order_by())
    failures = dict(
        today.filter(status=Generation.Status.FAILED)
        .values_list("failure_class")
        .annotate(n=Count("id"))
        .order_by()
    )
    money = CreditEntry.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        bought=Sum("amount_cents", filter=Q(kind=CreditEntry.Kind.TOPUP)),
        charged=Sum("amount_cents", filter=Q(kind=CreditEntry.Kind.CHARGE)),
        refunded=Sum("amount_cents", filter=Q(kind=CreditEntry.Kind.REFUND)),
    )
    revenue = -(money["charged"] or 0) - (money["refunded"] or 0)
    # A job the provider refunded (it reports `refunded: true` on failed jobs) cost us nothing.
    spent = today.filter(upstream_refunded=False).aggregate(total=Sum("upstream_amount"))["total"]
    spend = spent or Decimal("0")
    durations = [
        (finished - created).total_seconds()
        for created, finished in today.filter(status=Generation.Status.SUCCEEDED).values_list(
            "created_at", "finished_at"
        )
    ]
    return DayOverview(
        start=start,
        by_status={status: by_status.get(status, 0) for status in Generation.Status.values},
        credits_bought_cents=money["bought"] or 0,
        revenue_cents=revenue,
        upstream_spend_usd=spend,
        margin_usd=Decimal(revenue) / 100 - spend,
        failures_by_class=failures,
        duration_p50=_percentile(durations, 0.5),
        duration_p95=_percentile(durations, 0.95),
    )
