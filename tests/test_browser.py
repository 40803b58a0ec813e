"""The portal in headless Chromium (Playwright, sync API) against the live server, the ShortAPI
simulator and a real RQ worker.

The worker runs in this (main) thread through `run_jobs`, between browser steps: RQ installs
signal handlers, which only the main thread may do. The browser is its own process, so its
htmx polling goes on while the worker runs, and the page is checked afterwards for having
updated by itself.

Screenshots of every page at desktop and phone widths land in /work/main/screenshots/
(git-ignored); look at them after a change to the templates or the stylesheet.
"""

import re

import pytest
from django.core import mail

from generations.models import Generation
from generations.services import generation_create
from tests.factories import CHROMIUM, SCREENSHOTS, log_in, make_user, make_videos, play, run_jobs

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Chromium at /usr/bin/chromium (apt-get install chromium); CI installs it",
    ),
]


def status_of(generation_id: object) -> str:
    return Generation.objects.get(pk=generation_id).public_status


def log_out(page) -> None:
    if page.get_attribute("details.menu", "open") is None:
        page.click("details.menu summary")
    page.click("details.menu button:has-text('Log out')")
    page.wait_for_selector("a:has-text('Log in')")


def test_a_new_user_signs_up_generates_watches_it_arrive_and_shares_it(
    pipeline, live_server, browser, settings
):
    settings.SIGNUP_CREDITS = 1_000
    base = live_server.url
    page = browser.new_page(viewport=DESKTOP)

    # Sign up: the welcome credits show in the header.
    page.goto(f"{base}/")
    page.click("header a:has-text('Sign up')")
    page.fill("#id_username", "dana")
    page.fill("#id_email", "dana@example.com")
    page.fill("#id_password1", "a-Long-pass-77")
    page.fill("#id_password2", "a-Long-pass-77")
    page.click("main button[type=submit]")
    # The same page whether or not the name was free; the news comes by email.
    page.wait_for_selector("h1:has-text('Check your inbox')")
    run_jobs(lambda: len(mail.outbox) == 1)
    link = re.search(r"http://\S+/accounts/verify/\S+/\S+/", mail.outbox[0].body).group(0)
    page.click("main a.button:has-text('Log in')")
    page.fill("#id_username", "dana")
    page.fill("#id_password", "a-Long-pass-77")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")
    assert page.inner_text("#balance").strip().endswith("$0.00")
    # Confirming the address brings the welcome credits.
    page.goto(link)
    page.wait_for_selector("h1:has-text('Address confirmed')")
    assert page.inner_text("#balance").strip().endswith("$10.00")

    # Generate: the counter, the example prompts and the quote follow every change.
    page.click("nav a:has-text('Generate')")
    assert page.get_attribute("nav a:has-text('Generate')", "aria-current") == "page"
    assert page.inner_text("#quote") == "5 s × $0.24 = $1.20 · balance after: $8.80"
    page.click("a.example >> nth=1")
    assert page.input_value("#id_prompt").startswith("Aerial drone shot")
    prompt = "A red fox trots through fresh snow at dawn"
    page.fill("#id_prompt", prompt)
    assert page.inner_text("#prompt-count [data-count]") == str(len(prompt))
    page.click("label.choice:has(input[value=fast])")
    page.fill("#id_duration", "4")
    assert page.inner_text("#duration-value") == "4 s"
    page.click("label.ratio:has(input[value='9:16'])")
    assert page.is_checked("input[name=aspect_ratio][value='9:16']")
    assert page.inner_text("#quote") == "4 s × $0.20 = $0.80 · balance after: $9.20"
    page.fill("#id_duration", "15")
    assert page.inner_text("#quote") == "15 s × $0.20 = $3.00 · balance after: $7.00"
    page.fill("#id_duration", "4")
    page.click("#generate-button")
    page.wait_for_url(re.compile(r".*/generations/[0-9a-f-]{36}/$"))
    generation_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    generation = Generation.objects.get(pk=generation_id)
    assert (generation.prompt, generation.mode, generation.duration, generation.aspect_ratio) == (
        prompt,
        "fast",
        4,
        "9:16",
    )
    assert page.inner_text("#balance").strip().endswith("$9.20")
    assert page.get_attribute("#status", "data-status") == "queued"
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    # The status changes without a reload: queued → running → the video itself.
    run_jobs(lambda: status_of(generation_id) != "queued")
    page.wait_for_selector("#status[data-status=running], #status[data-status=succeeded]", timeout=10_000)
    run_jobs(lambda: status_of(generation_id) == "succeeded")
    page.wait_for_selector("#player video", timeout=10_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.get_attribute("#status", "hx-trigger") is None  # polling has stopped
    assert page.is_visible("a:has-text('Download MP4')")
    play(page, "#player video")
    run_jobs()  # the poster

    # The gallery shows it, with its poster frame; hovering plays it.
    page.click("nav a:has-text('Gallery')")
    tile = page.locator("li.tile", has_text=prompt)
    assert tile.count() == 1
    assert page.evaluate("document.querySelector('li.tile img').naturalWidth") > 0
    tile.hover()
    page.wait_for_selector("li.tile.playing", timeout=10_000)

    # Share it, then look at it logged out: on Explore and on its own page.
    tile.locator("a.tile-link").click()
    page.click("label.share-choice:has-text('Everyone')")  # applied as soon as it is chosen
    page.wait_for_selector("#share-url")
    public_url = page.input_value("#share-url")
    assert re.fullmatch(rf"{re.escape(base)}/v/[\w-]+/", public_url)
    log_out(page)
    page.goto(f"{base}/explore/")
    shared_tile = page.locator("li.tile", has_text=prompt)
    assert shared_tile.count() == 1 and "@dana" in shared_tile.inner_text()
    page.goto(public_url)
    assert page.get_attribute("meta[property='og:type']", "content") == "video.other"
    assert page.get_attribute("meta[property='og:video']", "content").startswith(f"{base}/videos/")
    assert page.get_attribute("meta[property='og:image']", "content").endswith("/poster.jpg")
    play(page, "main video")
    page.close()


# Desktop notifications the page shows, recorded (headless Chromium has no desktop to show them on).
RECORD_NOTIFICATIONS = """
window.__notes = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notes.push({title: title, body: (options || {}).body}); }
  close() {}
};
"""


def test_a_gallery_tile_turns_ready_without_a_reload_and_the_tab_says_so(
    pipeline, live_server, browser, settings
):
    """The gallery's unfinished tiles follow their videos; when one finishes the tab title changes
    and, with permission given, a desktop notification appears. Then the account page shows the
    webhook it sent, the spend limit and the notification settings (screenshots of both pages)."""
    from playwright.sync_api import expect

    from accounts.preferences import account_set_email_preferences, account_set_spend_limit
    from tests.webhook_receiver import Receiver

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    receiver = Receiver(statuses=[500])
    alice = make_user("alice", 10_000)
    account_set_spend_limit(user=alice, limit_cents=5_000)
    account_set_email_preferences(user=alice, email_on_finish=True, low_balance_email_cents=500)
    base = live_server.url
    context = browser.new_context(viewport=DESKTOP)
    context.add_init_script(RECORD_NOTIFICATIONS)
    page = context.new_page()
    log_in(page, base, "alice")
    heron, _ = generation_create(
        user=alice,
        prompt="A grey heron lifts off a misty lake at dawn",
        mode="fast",
        duration=4,
        aspect_ratio="16:9",
        webhook_url=receiver.url,
    )
    waiting, _ = generation_create(
        user=alice,
        prompt="Neon rain on a Tokyo street at night",
        mode="fast",
        duration=4,
        aspect_ratio="9:16",
    )
    Generation.objects.filter(pk=waiting.pk).update(prompt="Neon rain on a Tokyo street at night [sim:never]")
    page.goto(f"{base}/gallery/")
    tile = f"#tile-{heron.pk}"
    assert page.get_attribute(tile, "data-status") == "queued"
    assert page.locator(f"{tile} .status-badge").inner_text() == "Queued"
    assert page.locator(f"{tile} form.tile-cancel button").is_visible()
    title = page.title()
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    run_jobs(lambda: status_of(heron.pk) == "succeeded")
    page.wait_for_selector(f"{tile}[data-status=succeeded]", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator(f"{tile} .status-badge").inner_text() == "Ready"
    assert page.get_attribute(tile, "hx-trigger") is None  # it stopped polling
    assert page.locator(f"{tile} form.tile-cancel").count() == 0
    # The other tile is still waiting, and still polling.
    assert page.get_attribute(f"#tile-{waiting.pk}", "hx-trigger") == "every 3s"
    # Not wait_for_function: it evaluates a string, which our CSP (no unsafe-eval) refuses.
    expect(page).to_have_title(f"\u2713 Video ready \u00b7 {title}", timeout=15_000)
    notes = page.evaluate("window.__notes")
    assert notes == [{"title": "Your video is ready", "body": "A grey heron lifts off a misty lake at dawn"}]
    run_jobs(lambda: len(receiver.requests) >= 1)  # the webhook (answered 500: retrying)
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "gallery-live-desktop.png"), full_page=True, animations="disabled")

    page.goto(f"{base}/accounts/")
    page.click("summary:has-text('Reveal the signing secret')")
    assert page.input_value("#webhook-secret").startswith("whsec_")
    assert page.locator("table.deliveries").inner_text().count("Retrying") == 1
    assert "answered HTTP 500" in page.locator("table.deliveries").inner_text()
    assert page.input_value("#id_limit") == "50.00"
    assert page.is_checked("#id_email_on_finish") and page.input_value("#id_low_balance_dollars") == "5.00"
    page.screenshot(
        path=str(SCREENSHOTS / "account-desktop-webhooks.png"), full_page=True, animations="disabled"
    )
    # Rotate: the page says both secrets sign for a day.
    old = page.input_value("#webhook-secret")
    page.click("summary:has-text('Rotate')")
    page.click("button:has-text('Make a new secret')")
    page.wait_for_selector(".message:has-text('For the next 24 hours')")
    page.click("summary:has-text('Reveal the signing secret')")
    assert page.input_value("#webhook-secret") not in (old, "")
    context.close()
    receiver.stop()


def test_without_javascript_the_form_still_generates(live_server, browser, settings):
    settings.SHORTAPI_KEY = "x"  # nothing runs the job: this is about the form
    make_user("erin", 500)
    base = live_server.url
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    page = context.new_page()
    log_in(page, base, "erin")
    page.goto(f"{base}/generate/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    assert page.inner_text("#quote") == "5 s × $0.24 = $1.20 · balance after: $3.80"
    page.click("a.example >> nth=2")  # without JS it is a link that prefills the form
    assert page.input_value("#id_prompt").startswith("Close-up of rain drops")
    page.click("label.choice:has(input[value=fast])")
    page.click("label.ratio:has(input[value='1:1'])")
    page.click("#generate-button")
    page.wait_for_url(re.compile(r".*/generations/[0-9a-f-]{36}/$"))
    generation = Generation.objects.get(user__username="erin")
    assert (generation.mode, generation.aspect_ratio, generation.duration) == ("fast", "1:1", 5)
    # With scripting off the page refreshes itself until the video is ready.
    assert 'http-equiv="refresh"' in page.content()
    context.close()


# --- Screenshots ---------------------------------------------------------------------------------


def test_screenshots_of_every_page(pipeline, live_server, browser, settings):
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 20
    alice, bob = make_user("alice", 10_000), make_user("bob", 10_000)
    make_user("carol", 50)
    videos = make_videos(alice, bob)
    assert videos["failed"].status == "failed" and videos["fox"].status == "succeeded"
    base = live_server.url
    SCREENSHOTS.mkdir(exist_ok=True)
    anonymous = {
        "home": "/",
        "signup": "/accounts/signup/",
        "signup-done": "/accounts/signup/done/",
        "login": "/accounts/login/",
        "explore": "/explore/",
        "shared": f"/v/{videos['fox'].share_slug}/",
        "404": "/no-such-page/",
    }
    logged_in = {
        "home-logged-in": "/",
        "generate": "/generate/",
        "generation-queued": f"/generations/{videos['queued'].pk}/",
        "generation-running": f"/generations/{videos['running'].pk}/",
        "generation-succeeded": f"/generations/{videos['fox'].pk}/",
        "generation-shared": f"/generations/{videos['neon'].pk}/",
        "generation-failed": f"/generations/{videos['failed'].pk}/",
        "gallery": "/gallery/",
        "gallery-filtered": "/gallery/?status=succeeded&mode=fast",
        "account": "/accounts/",
        "password-change": "/accounts/password_change/",
    }
    taken = []
    for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport, is_mobile=width_name == "phone", has_touch=True)
        page = context.new_page()

        def shoot(name: str, path: str | None = None, *, page=page, suffix=width_name) -> None:
            if path is not None:
                page.goto(base + path, wait_until="load")
            file = SCREENSHOTS / f"{name}-{suffix}.png"
            page.screenshot(path=str(file), full_page=True, animations="disabled")
            taken.append(file)

        for name, path in anonymous.items():
            shoot(name, path)
        log_in(page, base, "alice")
        for name, path in logged_in.items():
            shoot(name, path)
        # The generate page with errors: an empty prompt, then too little money.
        page.goto(f"{base}/generate/")
        page.click("#generate-button")
        page.wait_for_selector(".form-errors, .error")
        shoot("generate-error")
        page.click("details.menu summary")
        shoot("account-menu-open")
        # Carol has less than the cheapest video: Generate is off, and the page shows the way to credits.
        log_out(page)
        log_in(page, base, "carol")
        page.goto(f"{base}/generate/")
        page.fill("#id_prompt", "A long film about the sea")
        shoot("generate-short-quote")
        assert page.is_disabled("#generate-button") and page.is_visible("#no-credits a")
        page.click("#no-credits a")
        page.wait_for_url(re.compile(r".*/billing/#buy$"))
        shoot("generate-no-credits")
        context.close()
    assert len(taken) == 2 * (len(anonymous) + len(logged_in) + 4)
    assert all(file.stat().st_size > 5_000 for file in taken)


# --- The API docs page ---------------------------------------------------------------------------


def test_the_api_docs_list_every_operation_and_try_one_under_our_csp(live_server, browser):
    """Swagger UI from ninja's bundled files, under our Content-Security-Policy: every operation of
    the document is listed, and a token typed into "Authorize" makes a real call from the page."""
    from accounts.services import api_token_create
    from tests.factories import CONTRACT_OPERATIONS

    _, token = api_token_create(user=make_user("alice", 10_000), name="docs")
    page = browser.new_page(viewport=DESKTOP)
    problems: list[str] = []  # a CSP violation is a console error ("Refused to …")
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    response = page.goto(f"{live_server.url}/api/v1/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.wait_for_selector(".opblock")
    methods = page.eval_on_selector_all(".opblock-summary-method", "es => es.map(e => e.textContent)")
    paths = page.eval_on_selector_all(".opblock-summary-path", "es => es.map(e => e.dataset.path)")
    assert set(zip(methods, paths, strict=True)) == CONTRACT_OPERATIONS

    page.click("button.authorize")
    page.fill(".modal-ux input", token)
    page.click(".modal-ux button.authorize")
    page.click(".modal-ux button.close-modal")
    account = page.locator("#operations-Account-account")
    account.locator(".opblock-summary").click()
    account.locator("button.execute").click()
    answer = account.locator(".live-responses-table tbody .response")
    answer.wait_for()
    assert answer.locator(".response-col_status").inner_text().strip() == "200"
    assert '"username": "alice"' in answer.locator(".microlight").first.inner_text()

    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-docs-desktop.png"), full_page=True, animations="disabled")
    assert problems == []


# --- The studio: your own picture, animated ---------------------------------------------------------


def test_a_picture_uploaded_in_the_studio_becomes_a_video_that_plays(
    pipeline, live_server, browser, tmp_path
):
    from tests import media

    make_user("alice", 10_000)
    base = live_server.url
    red = media.picture(tmp_path / "my-red-wall.jpg", (800, 450), (200, 20, 20), gps=True)
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture at all\n" * 10)
    SCREENSHOTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=DESKTOP)
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    log_in(page, base, "alice")
    page.goto(f"{base}/generate/")
    assert page.inner_text("[data-model-label]") == "Text to video"

    # A text file named .png is refused, clearly, and nothing is chosen.
    page.set_input_files("#id_file", str(notes))
    page.wait_for_selector(".upload-row.refused")
    assert "not an image, video or sound" in page.inner_text(".upload-row.refused")
    assert page.locator("#chosen-images .input-item").count() == 0
    page.click(".upload-row.refused .icon-button")
    problems.clear()  # the browser logs the refusal's 400: that one was meant

    # The picture goes up with a progress bar, shows as the first picture, and the price follows.
    page.set_input_files("#id_file", str(red))
    page.wait_for_selector("#chosen-images .input-item")
    assert page.inner_text("#chosen-images .slot-label") == "PICTURE 1" or "Picture 1" in page.inner_text(
        "#chosen-images .slot-label"
    )
    page.wait_for_function("() => document.querySelector('#chosen-images img').naturalWidth > 0")
    assert page.inner_text("[data-model-label]") == "Image to video"
    page.fill("#id_prompt", "The red wall slowly comes closer")
    page.click("label.choice:has(input[value=fast])")
    page.fill("#id_duration", "4")
    assert page.inner_text("#quote") == "4 s × $0.20 = $0.80 · balance after: $99.20"
    # It is offered again under "Your uploads" on the next visit: ticked there now.
    page.screenshot(
        path=str(SCREENSHOTS / "studio-picture-desktop.png"), full_page=True, animations="disabled"
    )

    page.click("#generate-button")
    page.wait_for_url(re.compile(r".*/generations/[0-9a-f-]{36}/$"))
    generation_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    generation = Generation.objects.get(pk=generation_id)
    assert (generation.model, generation.mode, generation.duration, generation.cost_cents) == (
        "image-to-video",
        "fast",
        4,
        80,
    )
    run_jobs(lambda: status_of(generation_id) == "succeeded")
    page.wait_for_selector("#player video", timeout=10_000)
    play(page, "#player video")
    page.wait_for_selector("#followups:not([hidden])")
    assert "Make it in Standard · $0.96" in page.inner_text("#followups")
    page.screenshot(
        path=str(SCREENSHOTS / "studio-result-desktop.png"), full_page=True, animations="disabled"
    )

    # Continue from the last frame: the studio opens with it chosen; nothing is spent yet.
    page.click("button:has-text('Continue from the last frame')")
    page.wait_for_url(re.compile(r".*/generate/\?.*"))
    page.wait_for_selector("#chosen-images .input-item")
    assert page.inner_text("[data-model-label]") == "Image to video"
    assert "last-frame" in page.inner_text("#chosen-images .input-name")
    assert Generation.objects.count() == 1
    # The gallery tile shows what the video was made from.
    page.goto(f"{base}/gallery/")
    page.wait_for_function("() => document.querySelector('.tile-inputs img').naturalWidth > 0")
    page.screenshot(
        path=str(SCREENSHOTS / "studio-gallery-desktop.png"), full_page=True, animations="disabled"
    )
    assert problems == []
    page.close()


def test_the_studio_on_a_phone_keeps_generate_in_reach_and_prices_a_reference_video(
    pipeline, live_server, browser, tmp_path
):
    from tests import media

    alice = make_user("alice", 10_000)
    from generations.uploads import upload_from_file

    for name, color in (("dawn.jpg", (240, 160, 60)), ("dusk.jpg", (40, 40, 140))):
        path = media.picture(tmp_path / name, (600, 600), color)
        upload_from_file(user=alice, path=str(path), original_name=name)
    clip = media.video(tmp_path / "street.mp4", 6.2)
    base = live_server.url
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, base, "alice")
    page.goto(f"{base}/generate/")
    # Generate is on screen without scrolling past everything.
    box = page.locator("#generate-button").bounding_box()
    assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"]

    # Two earlier uploads are offered; first and last frame shows two labelled slots.
    assert page.locator(".library-item").count() == 2
    page.click("label.switch")
    assert page.is_visible("#flf-slots")
    page.click(".library-item:has-text('dawn.jpg') label")
    page.click(".library-item:has-text('dusk.jpg') label")
    labels = page.eval_on_selector_all("#chosen-images .slot-label", "es => es.map(e => e.textContent)")
    assert labels == ["First frame", "Last frame"]
    page.screenshot(
        path=str(SCREENSHOTS / "studio-first-last-phone.png"), full_page=True, animations="disabled"
    )
    # Reordering swaps them.
    page.click("#chosen-images li:first-child .icon-button >> nth=1")
    names = page.eval_on_selector_all("#chosen-images .input-name", "es => es.map(e => e.textContent)")
    assert names == ["dusk.jpg", "dawn.jpg"]

    # A reference video makes it omni-reference, priced on its whole seconds plus the output's.
    page.click("label.switch")
    page.set_input_files("#id_file", str(clip))
    page.wait_for_selector("#chosen-video .input-item", timeout=20_000)
    assert page.inner_text("[data-model-label]") == "Reference video"
    assert page.inner_text("#quote") == "(7 s reference + 5 s) × $0.168 = $2.02 · balance after: $97.98"
    box = page.locator("#generate-button").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"]
    page.screenshot(path=str(SCREENSHOTS / "studio-omni-phone.png"), full_page=False, animations="disabled")
    page.fill("#id_prompt", "Dawn to dusk on a busy street")
    page.click("#generate-button")
    page.wait_for_url(re.compile(r".*/generations/[0-9a-f-]{36}/$"))
    generation = Generation.objects.get()
    assert (generation.model, generation.cost_cents, generation.input_seconds) == ("omni-reference", 202, 7)
    assert [i.upload.original_name for i in generation.inputs_of("image")] == ["dusk.jpg", "dawn.jpg"]
    run_jobs(lambda: status_of(generation.pk) == "succeeded")
    page.wait_for_selector("#player video", timeout=10_000)
    page.screenshot(path=str(SCREENSHOTS / "studio-result-phone.png"), full_page=True, animations="disabled")
    context.close()
