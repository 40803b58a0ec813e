"""Figures for the staff overview page (one day's generations, money and failures) and the daily
series its charts and the billing page's spending chart draw."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.billing.models import CreditEntry
from accounts.models import User
from generations.models import Generation
from generations.pricing import MODES
from seedance_site.charts import days_ending


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


# --- Daily series for the charts (the overview's and the billing page's) -----------------------

CHART_DAYS = 30
MAX_FAILURE_CLASSES = 5  # the rest are drawn together as "other"


def _window(days: int, today: date | None) -> tuple[list[date], datetime]:
    last = today or timezone.now().astimezone(UTC).date()
    span = days_ending(last, days)
    return span, datetime.combine(span[0], time.min, tzinfo=UTC)


@dataclass(frozen=True)
class DailySeries:
    days: list[date]
    by_status: dict[str, list[int]]
    failures_by_class: dict[str, list[int]]
    revenue_cents: list[int]
    upstream_spend_usd: list[Decimal]
    finish_p50_seconds: list[float | None]


def daily_series(*, days: int = CHART_DAYS, today: date | None = None) -> DailySeries:
    """Each of the last `days` UTC days: generations made, by status and by failure class; revenue
    (charges kept) against what the provider cost; the median time to a finished video. Three
    queries, however many days and generations."""
    span, start = _window(days, today)
    index = {day: i for i, day in enumerate(span)}
    day = TruncDate("created_at", tzinfo=UTC)

    def zeros() -> list:
        return [0] * len(span)

    by_status = {status: zeros() for status in Generation.Status.values}
    by_class: dict[str, list[int]] = {}
    upstream = [Decimal("0")] * len(span)
    rows = (
        Generation.objects.filter(created_at__gte=start)
        .annotate(day=day)
        .values_list("day", "status", "failure_class")
        .annotate(n=Count("id"), spent=Sum("upstream_amount", filter=Q(upstream_refunded=False)))
        .order_by()
    )
    for row_day, status, failure_class, n, spent in rows:
        i = index.get(row_day)
        if i is None:
            continue
        by_status.setdefault(status, zeros())[i] += n
        upstream[i] += spent or 0
        if status == Generation.Status.FAILED:
            by_class.setdefault(failure_class or "unclassified", zeros())[i] += n
    ranked = sorted(by_class, key=lambda cls: (-sum(by_class[cls]), cls))
    failures = {cls: by_class[cls] for cls in ranked[:MAX_FAILURE_CLASSES]}
    if len(ranked) > MAX_FAILURE_CLASSES:
        failures["other"] = [
            sum(by_class[c][i] for c in ranked[MAX_FAILURE_CLASSES:]) for i in range(len(span))
        ]

    revenue = zeros()
    money = (
        CreditEntry.objects.filter(
            created_at__gte=start, kind__in=[CreditEntry.Kind.CHARGE, CreditEntry.Kind.REFUND]
        )
        .annotate(day=day)
        .values_list("day")
        .annotate(total=Sum("amount_cents"))
        .order_by()
    )
    for row_day, total in money:
        if row_day in index:
            revenue[index[row_day]] = -(total or 0)

    # The median wants every duration: two timestamps a succeeded video, fetched in one query.
    durations: list[list[float]] = [[] for _ in span]
    finished = Generation.objects.filter(
        created_at__gte=start, status=Generation.Status.SUCCEEDED, finished_at__isnull=False
    ).values_list("created_at", "finished_at")
    for created, done in finished:
        i = index.get(created.astimezone(UTC).date())
        if i is not None:
            durations[i].append((done - created).total_seconds())
    return DailySeries(
        days=span,
        by_status=by_status,
        failures_by_class=failures,
        revenue_cents=revenue,
        upstream_spend_usd=upstream,
        finish_p50_seconds=[_percentile(d, 0.5) for d in durations],
    )


def daily_spending_for_user(
    *, user: User, days: int = CHART_DAYS, today: date | None = None
) -> tuple[list[date], dict[str, list[int]]]:
    """What a user's videos cost each of the last `days` UTC days, by mode: the price of every video
    made that day, less the failed ones (their credits came back). One query."""
    span, start = _window(days, today)
    index = {day: i for i, day in enumerate(span)}
    by_mode = {mode: [0] * len(span) for mode in MODES}
    rows = (
        Generation.objects.filter(user=user, created_at__gte=start)
        .exclude(status=Generation.Status.FAILED)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values_list("day", "mode")
        .annotate(cents=Sum("cost_cents"))
        .order_by()
    )
    for row_day, mode, cents in rows:
        if row_day in index:
            by_mode.setdefault(mode, [0] * len(span))[index[row_day]] += cents or 0
    return span, by_mode
