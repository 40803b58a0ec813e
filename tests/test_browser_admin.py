"""The operator's pages and the charts in headless Chromium (issue 15, items 8, 10, 11): readable
at a laptop's 1366 px and a phone's 390 px, times in the reader's own zone.

Screenshots land in screenshots/ (git-ignored): admin-*-1366.png, overview-390.png,
billing-chart-*.png. Look at them after changing the admin, the charts or their styles.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from accounts.billing.topups import topup_create
from generations.models import Generation
from tests.factories import CHROMIUM, SCREENSHOTS, make_user, make_videos
from tests.fake_stripe import deliver

LAPTOP = {"width": 1366, "height": 800}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Chromium at /usr/bin/chromium"),
]

NO_OVERFLOW = "document.documentElement.scrollWidth <= window.innerWidth"
RESULTS_FIT = "(r => r.scrollWidth <= r.clientWidth + 1)(document.querySelector('#changelist .results'))"

WIDTHS = "(r => [r.scrollWidth, r.clientWidth])(document.querySelector('#changelist .results'))"


def local_text(iso: str, zone: str) -> str:
    """What localtime.js shows for the "short" style in an en-US browser in `zone`."""
    moment = datetime.fromisoformat(iso).astimezone(ZoneInfo(zone))
    return f"{moment:%b} {moment.day}, {moment:%I:%M %p}"


def admin_log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username * 2)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")


def test_operator_pages_and_charts_read_well_at_laptop_and_phone_width(
    fake_stripe,
    pipeline,
    live_server,
    browser,
    settings,
):
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 20
    alice, bob = make_user("alice", 10_000), make_user("bob", 10_000)
    make_user("olga", is_staff=True, is_superuser=True)
    videos = make_videos(alice, bob)
    topup = topup_create(user=alice, amount_cents=2500)
    deliver(fake_stripe.event("checkout.session.completed", fake_stripe.mark_paid(topup.stripe_session_id)))
    fox = videos["fox"]
    assert fox.status == "succeeded" and fox.video and fox.poster
    base = live_server.url

    # A laptop in New York: every time on the page is in its zone, not the server's UTC.
    context = browser.new_context(viewport=LAPTOP, timezone_id="America/New_York", locale="en-US")
    page = context.new_page()
    admin_log_in(page, base, "olga")

    page.goto(f"{base}/admin/generations/generation/")
    shoot(page, "admin-generations-1366")
    assert page.evaluate(NO_OVERFLOW), "the generation list overflows at 1366 px"
    assert page.evaluate(RESULTS_FIT), "the generation list's columns overflow their box at 1366 px"
    assert page.locator("td.field-prompt_line").first.bounding_box()["width"] >= 200, "no room for the prompt"
    short_id = page.locator(".field-short_id code").first
    assert len(short_id.inner_text()) == 8
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#result_list td')).lineHeight)")
    assert short_id.bounding_box()["height"] <= 1.5 * line, "an id wraps"
    prompt = page.locator("td.field-prompt_line .prompt-line").first
    assert prompt.inner_text() and prompt.bounding_box()["height"] <= 1.5 * line
    stamp = page.locator("td.field-created time").first
    assert stamp.get_attribute("data-localised") is not None
    assert stamp.inner_text() == local_text(stamp.get_attribute("datetime"), "America/New_York")
    assert stamp.get_attribute("title").endswith(" UTC")  # the server's own words, on hover
    assert page.locator("td.field-cost").first.inner_text().startswith("$")

    page.goto(f"{base}/admin/generations/generation/{fox.pk}/change/")
    page.wait_for_function("document.querySelector('video.op-video').readyState >= 1", timeout=15_000)
    assert page.locator("video.op-video").get_attribute("poster")
    poster = page.request.get(base + page.locator("video.op-video").get_attribute("poster"))
    assert poster.status == 200 and poster.headers["content-type"] == "image/jpeg"
    assert page.evaluate(NO_OVERFLOW)
    shoot(page, "admin-generation-1366")

    for name, path in (
        ("users", "/admin/accounts/user/"),
        ("topups", "/admin/accounts/topup/"),
        ("ledger", "/admin/accounts/creditentry/"),
    ):
        page.goto(base + path)
        shoot(page, f"admin-{name}-1366")
        widths = page.evaluate(WIDTHS)
        assert page.evaluate(NO_OVERFLOW) and page.evaluate(RESULTS_FIT), (
            f"{path} overflows at 1366 px: {widths}"
        )
        assert "$" in page.locator("#result_list").inner_text()

    page.goto(f"{base}/admin/overview/")
    assert page.locator("figure.chart svg[role=img]").count() == 4
    assert page.evaluate(NO_OVERFLOW)
    shoot(page, "admin-overview-1366")
    context.close()

    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, timezone_id="Asia/Tokyo")
    page = phone.new_page()
    admin_log_in(page, base, "olga")
    page.goto(f"{base}/admin/overview/")
    charts = page.locator("figure.chart svg")
    assert charts.count() == 4
    for i in range(4):
        box = charts.nth(i).bounding_box()
        assert box["width"] >= 250 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    legend_size = page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('.chart-legend')).fontSize)"
    )
    assert legend_size >= 11, "chart words too small to read on a phone"
    shoot(page, "admin-overview-390")
    phone.close()

    for label, viewport in (("1366", LAPTOP), ("390", PHONE)):
        context = browser.new_context(viewport=viewport, timezone_id="Europe/Berlin", locale="en-US")
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", "alice")
        page.fill("#id_password", "pw-alicealice")
        page.click("main button[type=submit]")
        page.wait_for_url(f"{base}/")
        page.goto(f"{base}/billing/")
        chart = page.locator("#spending figure.chart svg[role=img]")
        assert chart.count() == 1 and chart.locator("rect").count() >= 2
        assert page.evaluate(NO_OVERFLOW), f"the billing page overflows at {label} px"
        assert page.locator(".balance").inner_text().endswith("$117.64")  # 100 + 25 - 7.36 of videos
        first_time = page.locator("table time").first
        assert first_time.inner_text() == local_text(first_time.get_attribute("datetime"), "Europe/Berlin")
        shoot(page, f"billing-chart-{label}")
        context.close()
    assert Generation.objects.filter(status="succeeded").exists()
