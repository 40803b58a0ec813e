"""Charts (issue 15, item 11): server-drawn SVG for a user's spending and the operators' days, with
bounded queries however many generations there are."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generations.models import Generation
from generations.reports import daily_series, daily_spending_for_user
from generations.services import generation_create, generation_fail
from seedance_site.charts import Series, chart
from tests.factories import make_user

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)


def make(user, *, days_ago: int, mode: str = "std", duration: int = 5) -> Generation:
    with time_machine.travel(NOW - timedelta(days=days_ago), tick=False):
        generation, _ = generation_create(
            user=user,
            prompt=f"a kite, {days_ago} days ago",
            mode=mode,
            duration=duration,
            aspect_ratio="16:9",
        )
    return generation


def succeed(generation: Generation, *, seconds: int, upstream: str) -> None:
    # Only the finishing columns: the pipeline's own tests cover how a video gets here.
    Generation.objects.filter(pk=generation.pk).update(
        status="succeeded",
        finished_at=generation.created_at + timedelta(seconds=seconds),
        upstream_amount=Decimal(upstream),
    )


@pytest.fixture(autouse=True)
def configured(settings):
    settings.SHORTAPI_KEY = "configured"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100


def test_a_chart_is_an_svg_image_with_a_title_a_description_and_its_figures():
    html = chart(
        title="Spent a day",
        labels=["Nov 1", "Nov 2", "Nov 3"],
        series=[Series("Standard", [1.2, 0, 2.4], 0), Series("Fast", [0, 1.0, 0.8], 1)],
        value_format=lambda v: f"${v:.2f}",
        summary="$5.40 in all.",
    )
    assert re.search(r'<svg class="chart-svg" [^>]*role="img" aria-labelledby="(chart\d+)-t \1-d"', html)
    assert "<title id=" in html and ">Spent a day</title>" in html and ">$5.40 in all.</desc>" in html
    assert html.count("<rect ") == 4  # zero values draw nothing
    assert "<title>Nov 3: Standard: $2.40; Fast: $0.80</title>" in html
    assert '<th scope="row">Nov 2</th><td>$0.00</td><td>$1.00</td>' in html  # the figures as a table
    assert "<script" not in html and 'style="left:' in html  # no script; only style attributes (CSP)
    empty = chart(title="Nothing", labels=["Nov 1"], series=[Series("A", [0])], empty="Nothing spent.")
    assert "<svg" not in empty and "Nothing spent." in empty
    with pytest.raises(ValueError):
        chart(title="x", labels=["a", "b"], series=[Series("A", [1])])


def test_a_users_spending_is_by_day_and_mode_without_failed_videos(alice, bob):
    make(alice, days_ago=0, mode="std")  # 120
    make(alice, days_ago=0, mode="fast")  # 100
    make(alice, days_ago=2, mode="std", duration=10)  # 240
    failed = make(alice, days_ago=2, mode="fast")
    generation_fail(generation_id=failed.pk, error="no", failure_class="upstream_rejected")
    make(alice, days_ago=40)  # outside the 30 days
    make(bob, days_ago=0)  # somebody else's
    with time_machine.travel(NOW, tick=False):
        days, by_mode = daily_spending_for_user(user=alice)
    assert len(days) == 30 and days[-1] == NOW.date()
    assert by_mode["std"][-1] == 120 and by_mode["fast"][-1] == 100
    assert by_mode["std"][-3] == 240 and by_mode["fast"][-3] == 0
    assert sum(by_mode["std"]) + sum(by_mode["fast"]) == 460


def test_the_billing_page_draws_the_spending_chart_in_a_bounded_number_of_queries(
    alice,
):
    client = Client()
    client.force_login(alice)

    def count_queries() -> tuple[int, str]:
        with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
            page = client.get("/billing/").content.decode()
        assert 'id="spending-heading"' in page
        return len(captured), page

    count_queries()  # the first request also refreshes the session
    few, _ = count_queries()
    for days_ago in range(12):
        make(alice, days_ago=days_ago, mode="std" if days_ago % 2 else "fast")
    many, page = count_queries()
    assert many == few, "the spending chart's queries grow with the number of videos"
    assert "What your videos cost, last 30 days" in page and "<rect " in page
    assert "No videos in the last 30 days" not in page


def test_the_overview_charts_generations_failures_money_and_speed(alice, bob):
    operator = make_user("olga", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    fast_one = make(alice, days_ago=1)
    succeed(fast_one, seconds=60, upstream="0.90")
    slow_one = make(bob, days_ago=1)
    succeed(slow_one, seconds=180, upstream="0.95")
    for cls in ("upstream_rejected", "upstream_rejected", "timeout"):
        failed = make(alice, days_ago=3)
        with time_machine.travel(NOW - timedelta(days=3), tick=False):  # refunded the same day
            generation_fail(generation_id=failed.pk, error="no", failure_class=cls)
    make(alice, days_ago=0)  # still queued

    with time_machine.travel(NOW, tick=False):
        series = daily_series()
    assert series.by_status["succeeded"][-2] == 2 and series.by_status["failed"][-4] == 3
    assert series.by_status["queued"][-1] == 1
    assert series.failures_by_class == {
        "upstream_rejected": [0] * 26 + [2, 0, 0, 0],
        "timeout": [0] * 26 + [1, 0, 0, 0],
    }
    assert series.revenue_cents[-2] == 240 and series.revenue_cents[-4] == 0  # failed: refunded
    assert series.upstream_spend_usd[-2] == Decimal("1.85")
    assert series.finish_p50_seconds[-2] in (60, 180) and series.finish_p50_seconds[-3] is None

    with time_machine.travel(NOW, tick=False):
        page = client.get("/admin/overview/").content.decode()
    for title in (
        "Generations a day, last 30 days",
        "Failures a day, by class",
        "Revenue against upstream spend, a day",
        "Time to a finished video (median of the day)",
    ):
        assert f">{title}</title>" in page, title
    assert page.count('role="img"') == 4
    assert "<title>Nov 29: Revenue (charges kept): $2.40; Upstream spend: $1.85</title>" in page
    assert "<title>Nov 27: upstream_rejected: 2; timeout: 1</title>" in page
    # Today's money in dollars, as everywhere else.
    assert re.search(
        r"<th scope=\"row\">Revenue \(charges kept\)</th><td><span title=\"[\d,]+ credits\">\$", page
    )


def test_the_overview_runs_the_same_queries_for_a_busy_month_as_for_a_quiet_one(alice):
    operator = make_user("olga", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)

    def count_queries() -> int:
        with time_machine.travel(NOW, tick=False), CaptureQueriesContext(connection) as captured:
            assert client.get("/admin/overview/").status_code == 200
        return len(captured)

    count_queries()  # the first request also refreshes the session
    quiet = count_queries()
    for days_ago in range(0, 25, 2):
        generation = make(alice, days_ago=days_ago)
        if days_ago % 4:
            succeed(generation, seconds=30 + days_ago, upstream="0.5")
        else:
            generation_fail(generation_id=generation.pk, error="no", failure_class=f"class_{days_ago}")
    busy = count_queries()
    assert busy == quiet <= 12
    assert timezone.now()  # the real clock is back
