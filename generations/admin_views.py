from datetime import datetime

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.safestring import SafeString

from generations.pricing import format_usd
from generations.reports import DailySeries, daily_series, day_overview
from seedance_site.admin import OVERVIEW_PERMISSION, operator_view
from seedance_site.charts import Series, chart, day_label

FAILURE_COLORS = (2, 1, 4, 5, 6)


def _duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def overview_charts(d: DailySeries) -> list[SafeString]:
    labels = [day_label(day) for day in d.days]
    total = sum(sum(v) for v in d.by_status.values())
    # In progress together: submitting and fetching are the worker's own steps of queued and running.
    active = [
        sum(d.by_status[s][i] for s in ("queued", "submitting", "running", "fetching"))
        for i in range(len(labels))
    ]
    generations = chart(
        title=f"Generations a day, last {len(labels)} days",
        labels=labels,
        series=[
            Series("Succeeded", d.by_status["succeeded"], 3),
            Series("Failed", d.by_status["failed"], 2),
            Series("In progress", active, 0),
        ],
        summary=f"{total:,} generations in {len(labels)} days; {sum(d.by_status['failed']):,} failed.",
        whole=True,
    )
    failures = chart(
        title="Failures a day, by class",
        labels=labels,
        series=[
            Series(cls, values, 7 if cls == "other" else FAILURE_COLORS[i % len(FAILURE_COLORS)])
            for i, (cls, values) in enumerate(d.failures_by_class.items())
        ],
        summary=", ".join(f"{cls}: {sum(v):,}" for cls, v in d.failures_by_class.items()) or "No failures.",
        empty="No failures in these days.",
        whole=True,
    )
    revenue_usd = [cents / 100 for cents in d.revenue_cents]
    upstream_usd = [float(v) for v in d.upstream_spend_usd]
    money = chart(
        title="Revenue against upstream spend, a day",
        labels=labels,
        series=[Series("Revenue (charges kept)", revenue_usd, 0), Series("Upstream spend", upstream_usd, 1)],
        kind="grouped",
        value_format=lambda v: format_usd(round(v * 100)),
        summary=(
            f"Revenue {format_usd(sum(d.revenue_cents))}, upstream spend "
            f"{format_usd(round(sum(upstream_usd) * 100))} over {len(labels)} days."
        ),
    )
    finished = [v for v in d.finish_p50_seconds if v is not None]
    speed = chart(
        title="Time to a finished video (median of the day)",
        labels=labels,
        series=[Series("Median", d.finish_p50_seconds, 4)],
        kind="line",
        value_format=_duration,
        summary=(f"Between {_duration(min(finished))} and {_duration(max(finished))}." if finished else ""),
        empty="No finished videos in these days.",
    )
    return [generations, failures, money, speed]


@operator_view(OVERVIEW_PERMISSION)
def overview(request: HttpRequest) -> HttpResponse:
    day = request.GET.get("day")
    start = None
    if day:
        try:
            start = timezone.make_aware(datetime.strptime(day, "%Y-%m-%d"))
        except ValueError:
            start = None
    context = {
        **admin.site.each_context(request),
        "title": "Overview",
        "o": (o := day_overview(start)),
        # Upstream figures are Decimal dollars (the provider bills fractions of a cent): rounded to
        # cents for the eye, in the same format as every other amount.
        "upstream_label": format_usd(round(o.upstream_spend_usd * 100)),
        "margin_label": format_usd(round(o.margin_usd * 100)),
        "charts": overview_charts(daily_series()),
    }
    return render(request, "admin/overview.html", context)
