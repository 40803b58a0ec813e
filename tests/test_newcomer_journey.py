"""A newcomer's first hour, in headless Chromium, at laptop and phone widths (issue #15).

Sign up with nothing, confirm the address from the mail, find the way to credits, buy $10 on the
Stripe stand-in's test page (as `make run` serves it: real HTTP, the portal's own CSP, a signed
webhook back), generate, and watch the video. Screenshots of each step land in
`screenshots/journey-<width>-<step>.png`.
"""

import re

import pytest
from django.core import mail

from generations.models import Generation
from tests.factories import CHROMIUM, SCREENSHOTS, play, run_jobs
from tests.fake_stripe import FakeStripe

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Chromium at /usr/bin/chromium"),
]

LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["1366", "390"])
def test_a_newcomer_buys_credits_on_the_standin_and_watches_their_first_video(
    pipeline, live_server, browser, settings, fake_stripe: FakeStripe, viewport
):
    base = live_server.url
    # As `make run` sets it up: the stand-in's events go to the portal, and its page may be
    # reached from the checkout form (CSP form-action).
    settings.SITE_URL = base
    settings.STRIPE_STANDIN = True
    fake_stripe.webhook_url = f"{base}/webhooks/stripe/"
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    settings.CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {**directives, "form-action": [*directives["form-action"], fake_stripe.url]}
    }
    SCREENSHOTS.mkdir(exist_ok=True)
    width = viewport["width"]
    problems: list[str] = []
    page = browser.new_page(viewport=viewport)
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))

    def shot(step: str) -> None:
        page.screenshot(path=SCREENSHOTS / f"journey-{width}-{step}.png", full_page=True)

    # Sign up, confirm the address from the mail, log in: $0.
    page.goto(f"{base}/accounts/signup/")
    page.fill("#id_username", "erin")
    page.fill("#id_email", "erin@example.com")
    page.fill("#id_password1", "a-Long-pass-77")
    page.fill("#id_password2", "a-Long-pass-77")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1:has-text('Check your inbox')")
    run_jobs(lambda: len(mail.outbox) == 1)
    link = re.search(r"http://\S+/accounts/verify/\S+/\S+/", mail.outbox[0].body).group(0)
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "erin")
    page.fill("#id_password", "a-Long-pass-77")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    page.goto(link)
    page.wait_for_selector("h1:has-text('Address confirmed')")
    assert page.inner_text("#balance").strip().endswith("$0.00")
    shot("1-confirmed")

    # The balance leads to the way to get credits, which says plainly that this is test money.
    page.click("#balance")
    page.wait_for_url(f"{base}/billing/")
    assert "Test mode — no real money." in page.inner_text(".test-mode-band")
    shot("2-billing")

    # Buy $10 on the stand-in's page.
    page.click("button.pack[value='1000']")
    page.wait_for_url(re.compile(re.escape(fake_stripe.url) + r"/c/pay/cs_test_\w+"))
    assert "Test mode — no real money" in page.inner_text(".band")
    shot("3-standin-checkout")
    page.click("button:has-text('Pay $10.00')")
    page.wait_for_url(re.compile(re.escape(base) + r"/billing/success/.*"))
    assert [(d["type"], d["status"]) for d in fake_stripe.deliveries][:1] == [
        ("checkout.session.completed", 200)
    ]
    assert page.inner_text("#balance").strip().endswith("$10.00")
    shot("4-paid")
    with page.expect_popup() as receipt:
        page.click("a:has-text('receipt')")
    assert "no real money" in receipt.value.inner_text("main")
    receipt.value.close()

    # Generate, and watch it arrive without a reload.
    page.goto(f"{base}/generate/")
    page.fill("#id_prompt", "A red fox trots through fresh snow at dawn")
    page.click("label.choice:has(input[value=fast])")
    page.fill("#id_duration", "4")
    shot("5-generate")
    page.click("#generate-button")
    page.wait_for_url(re.compile(r".*/generations/[0-9a-f-]{36}/$"))
    generation_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    assert page.inner_text("#balance").strip().endswith("$9.20")
    run_jobs(lambda: Generation.objects.get(pk=generation_id).public_status == "succeeded")
    page.wait_for_selector("#player video", timeout=15_000)
    play(page, "#player video")
    run_jobs()  # the poster
    shot("6-watching")
    page.close()
    assert [p for p in problems if "Content Security Policy" in p or "Refused" in p] == []
