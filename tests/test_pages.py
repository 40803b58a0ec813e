"""The web portal through Django's test client: every page and form, who may see what, and the
number of queries the grids make."""

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.billing.ledger import credits_grant
from accounts.models import CreditEntry, User
from generations.models import Generation
from generations.pricing import quote
from tests.factories import api_for, balance, client_for, generation_row, make_user, with_files
from tests.factories import html as text

pytestmark = pytest.mark.django_db

Status = Generation.Status


def idempotency_key(response) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', text(response)).group(1)


# --- Layout -------------------------------------------------------------------------------


def test_the_layout_has_nav_balance_account_menu_and_marks_the_current_page(alice):
    response = client_for(alice).get("/generate/")
    html = text(response)
    for label, href in (("Generate", "/generate/"), ("Gallery", "/gallery/"), ("Explore", "/explore/")):
        assert f'href="{href}"' in html and f">{label}</a>" in html
    assert 'href="/billing/"' in html
    assert re.search(r'href="/generate/"\s+aria-current="page"', html)
    assert not re.search(r'href="/gallery/"\s+aria-current="page"', html)
    assert 'id="balance"' in html and "$100.00" in html  # alice has 10,000 credits
    assert 'action="/accounts/logout/"' in html and 'method="post"' in html
    assert 'href="/accounts/"' in html
    assert "htmx" in html  # the script is served from our own static files
    assert "https://unpkg.com" not in html and "cdn" not in html.lower()


def test_anonymous_visitors_see_log_in_and_sign_up(db):
    html = text(Client().get("/"))
    assert 'href="/accounts/login/"' in html and 'href="/accounts/signup/"' in html
    assert 'id="balance"' not in html and 'href="/gallery/"' not in html


def test_flash_messages_are_shown(alice, settings):
    settings.SHORTAPI_KEY = "x"
    client = client_for(alice)
    client.post("/generate/", {"prompt": "A fox", "idempotency_key": "k1"})
    response = client.post("/generate/", {"prompt": "A fox", "idempotency_key": "k1"}, follow=True)
    assert "This form was already sent" in text(response)


def test_unknown_pages_get_the_friendly_404(alice):
    response = client_for(alice).get("/no-such-page/")
    assert response.status_code == 404
    html = text(response)
    assert "Nothing here" in html and 'href="/gallery/"' in html and "site-header" in html


def test_the_500_page_renders_without_any_context():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong" in html and "/static/css/app.css" in html


# --- Home ----------------------------------------------------------------------------------


def test_home_explains_prices_and_shows_the_newest_shared_videos(alice, bob):
    generation_row(bob, prompt="Shared lighthouse at dusk", shared=True)
    generation_row(bob, prompt="Private garden secret")
    generation_row(bob, prompt="Queued shared thing", status=Status.QUEUED, shared=True)
    html = text(Client().get("/"))
    assert "$0.24" in html and "$0.20" in html and "per second" in html
    assert "5 s = $1.20" in html
    assert "Shared lighthouse at dusk" in html and "@bob" in html
    assert "Private garden secret" not in html and "Queued shared thing" not in html
    assert "Sign up" in html
    assert 'href="/generate/"' in text(client_for(alice).get("/"))


# --- Generate ------------------------------------------------------------------------------


def test_generate_requires_login():
    response = Client().get("/generate/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next=/generate/")


def test_generate_page_shows_the_quote_the_pickers_and_a_fresh_key(alice):
    response = client_for(alice).get("/generate/")
    assert response.status_code == 200
    html = text(response)
    assert "5 s × $0.24 = $1.20 · balance after: $98.80" in html
    uuid.UUID(idempotency_key(response))
    assert idempotency_key(client_for(alice).get("/generate/")) != idempotency_key(response)
    assert "no-store" in response["Cache-Control"] or "no-cache" in response["Cache-Control"]
    for ratio in ("21:9", "16:9", "9:16", "4:3", "1:1", "3:4"):
        assert f'name="aspect_ratio" value="{ratio}"' in html
    assert 'name="aspect_ratio" value="16:9" checked' in html
    assert 'name="mode" value="std" checked' in html
    assert "quicker and cheaper" in html.lower() and "best motion" in html.lower()
    assert 'type="range" name="duration"' in html and 'min="4" max="15"' in html
    assert '"cents_per_second": {"std": 24, "fast": 20}' in html and '"balance_cents": 10000' in html
    assert html.count('class="example"') >= 3
    # No maxlength: a browser would cut a long paste silently (the page shows the overflow).
    assert "maxlength" not in html and "/ 2,000 characters" in html


def test_generate_page_prefills_from_the_query_and_quotes_it(alice):
    response = client_for(alice).get("/generate/?prompt=A+paper+boat&mode=fast&duration=8&aspect_ratio=9:16")
    html = text(response)
    assert "A paper boat</textarea>" in html
    assert 'value="fast" checked' in html and 'value="9:16" checked' in html and 'value="8"' in html
    assert "8 s × $0.20 = $1.60 · balance after: $98.40" in html


def test_generate_page_ignores_nonsense_in_the_query(alice):
    html = text(client_for(alice).get("/generate/?mode=turbo&duration=99&aspect_ratio=2:1"))
    assert "5 s × $0.24 = $1.20" in html and 'value="std" checked' in html


def test_generate_shows_field_errors_and_creates_nothing(alice, settings):
    settings.SHORTAPI_KEY = "x"
    client = client_for(alice)
    response = client.post("/generate/", {"prompt": "   ", "duration": "3", "idempotency_key": "k"})
    html = text(response)
    assert response.status_code == 200
    assert "Write a prompt: describe the video you want." in html
    assert "Duration must be between 4 and 15 seconds." in html
    assert 'aria-invalid="true"' in html
    response = client.post(
        "/generate/", {"prompt": "x", "mode": "turbo", "aspect_ratio": "2:1", "idempotency_key": "k"}
    )
    html = text(response)
    assert "Mode must be “std” or “fast”." in html
    assert "Aspect ratio must be one of 21:9, 16:9, 9:16, 4:3, 1:1, 3:4." in html
    response = client.post("/generate/", {"prompt": "x" * 2001, "idempotency_key": "k"})
    assert "The prompt is 2,001 characters; the most is 2,000. Shorten it by 1." in text(response)
    assert idempotency_key(response) == "k"  # the same form keeps its key
    assert not Generation.objects.exists()
    alice.refresh_from_db()
    assert balance(alice) == 10_000


def test_generate_creates_charges_and_redirects_to_the_generation(alice, settings):
    settings.SHORTAPI_KEY = "x"
    response = client_for(alice).post(
        "/generate/",
        {"prompt": "A fox", "mode": "fast", "duration": "6", "aspect_ratio": "1:1", "idempotency_key": "k1"},
    )
    generation = Generation.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/generations/{generation.pk}/"
    assert (generation.mode, generation.duration, generation.aspect_ratio) == ("fast", 6, "1:1")
    assert generation.cost_cents == 120 and generation.idempotency_key == "k1"
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - 120


def test_a_double_submit_with_the_same_key_charges_once(alice, settings):
    settings.SHORTAPI_KEY = "x"
    client = client_for(alice)
    key = idempotency_key(client.get("/generate/"))
    form = {"prompt": "A fox", "duration": "5", "idempotency_key": key}
    first = client.post("/generate/", form)
    second = client.post("/generate/", form, follow=True)
    generation = Generation.objects.get()
    assert first["Location"] == second.redirect_chain[-1][0] == f"/generations/{generation.pk}/"
    assert "Nothing more was charged" in text(second)
    assert CreditEntry.objects.filter(user=alice, kind="charge").count() == 1
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - 120
    # A new copy of the form (a new key) is a new video.
    client.post("/generate/", {**form, "idempotency_key": idempotency_key(client.get("/generate/"))})
    assert Generation.objects.count() == 2


def test_a_user_with_no_credits_is_told_plainly_and_shown_how_to_get_some(carol, settings):
    settings.SHORTAPI_KEY = "x"
    client = client_for(carol)
    html = text(client.get("/generate/"))
    assert "You have no credits yet." in html and "Videos start at $0.80." in html
    assert re.search(r'<a class="button block" href="/billing/#buy">Get credits</a>', html)
    assert re.search(r'id="generate-button"\s+disabled', html)
    assert "balance after" not in html and "-$" not in html
    # Posted anyway (an old tab, a script): refused, with the way to credits, and nothing held.
    response = client.post("/generate/", {"prompt": "A fox", "duration": "5", "idempotency_key": "k"})
    html = text(response)
    assert "This video costs $1.20 but your balance is $0.00." in html
    assert 'href="/billing/#buy"' in html and "Get credits" in html
    assert not Generation.objects.exists() and not CreditEntry.objects.filter(user=carol).exists()


def grant(user: User, cents: int) -> None:
    credits_grant(user=user, amount_cents=cents, reason="test credits")


OPERATOR_WORDS = re.compile(r"STRIPE_|SHORTAPI_KEY|DJANGO_|manage\.py|(?i:environment variable|operator)")


def words_of(html: str) -> str:
    """What a person reads in the page's main part: no tags, no scripts."""
    main = html.split('<main id="main"', 1)[1].split("</main>", 1)[0]
    return re.sub(r"<[^>]+>", " ", re.sub(r"<script.*?</script>", " ", main, flags=re.S))


def test_no_user_page_speaks_to_the_operator_on_an_unconfigured_server(carol, settings):
    settings.STRIPE_SECRET_KEY = settings.STRIPE_WEBHOOK_SECRET = settings.SHORTAPI_KEY = ""
    generation = generation_row(carol, status=Status.FAILED)
    client = client_for(carol)
    pages = ["/", "/generate/", "/gallery/", "/explore/", "/billing/", "/billing/cancel/", "/accounts/"]
    for path in [*pages, f"/generations/{generation.pk}/", "/accounts/password_change/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        words = words_of(text(response))
        assert not OPERATOR_WORDS.search(words), (path, OPERATOR_WORDS.search(words))
    refused = text(client.post("/generate/", {"prompt": "A fox", "idempotency_key": "k"}))
    assert "not available on this site yet" in refused and not OPERATOR_WORDS.search(words_of(refused))
    refused = text(client.post("/billing/checkout/", {"amount_cents": "1000"}, follow=True))
    assert not OPERATOR_WORDS.search(words_of(refused))


def test_a_balance_short_for_this_video_but_not_every_one_keeps_generate_and_says_so(carol, settings):
    grant(carol, 100)
    html = text(client_for(carol).get("/generate/"))
    assert "5 s × $0.24 = $1.20" in html and "balance after" not in html
    assert re.search(r'id="short-warning"\s*>', html)  # shown, not hidden
    assert "$0.20</span> short for this video" in html
    assert "You have no credits yet" not in html
    assert not re.search(r'id="generate-button"\s+disabled', html)


def test_a_balance_below_the_cheapest_video_is_said_in_dollars(carol):
    grant(carol, 50)
    html = text(client_for(carol).get("/generate/"))
    assert "Your balance of $0.50 is less than the cheapest video ($0.80)." in html
    assert re.search(r'id="generate-button"\s+disabled', html)


def test_the_api_answer_for_no_credits_is_unchanged(carol, settings):
    settings.SHORTAPI_KEY = "x"
    response = api_for(carol).post("/api/v1/generations", {"prompt": "A fox"})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"


def test_an_over_long_prompt_is_refused_whole_with_its_overflow_and_nothing_is_charged(alice, settings):
    settings.SHORTAPI_KEY = "x"
    prompt = "word " * 600  # 3,000 characters
    response = client_for(alice).post("/generate/", {"prompt": prompt, "idempotency_key": "k"})
    html = text(response)
    assert response.status_code == 200
    assert "The prompt is 2,999 characters; the most is 2,000. Shorten it by 999." in html
    assert prompt + "</textarea>" in html  # shown whole, never cut
    assert "<span data-count>2,999</span> / 2,000 characters<span data-over> — 999 too long</span>" in html
    assert 'class="help counter over"' in html
    assert not Generation.objects.exists() and balance(alice) == 10_000


def test_a_generate_again_link_with_a_long_prompt_shows_it_whole(alice):
    html = text(client_for(alice).get("/generate/", {"prompt": "y" * 2_500}))
    assert "y" * 2_500 + "</textarea>" in html and "— 500 too long" in html


def test_the_operator_is_told_in_the_admin_what_the_server_lacks(settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.SHORTAPI_KEY = ""
    root = make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)
    html = text(client.get("/admin/"))
    assert "set STRIPE_SECRET_KEY" in html and "set SHORTAPI_KEY" in html


def test_enough_balance_hides_the_short_warning(alice):
    assert re.search(r'id="short-warning"\s+hidden', text(client_for(alice).get("/generate/")))


def test_an_unconfigured_upstream_is_a_form_error(alice, settings):
    settings.SHORTAPI_KEY = ""
    response = client_for(alice).post("/generate/", {"prompt": "A fox", "idempotency_key": "k"})
    assert response.status_code == 200
    assert "not available on this site yet" in text(response)
    assert "ShortAPI" not in text(response) and "SHORTAPI_KEY" not in text(response)
    assert not Generation.objects.exists()


def test_too_many_active_generations_is_a_form_error(alice, settings):
    settings.SHORTAPI_KEY = "x"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 2
    for _ in range(2):
        generation_row(alice, status=Status.RUNNING)
    response = client_for(alice).post("/generate/", {"prompt": "A fox", "idempotency_key": "k"})
    assert "You already have 2 videos in progress" in text(response)
    assert Generation.objects.count() == 2


def test_csrf_is_enforced_on_the_generate_form(alice, settings):
    settings.SHORTAPI_KEY = "x"
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/generate/", {"prompt": "A fox", "idempotency_key": "k"})
    assert response.status_code == 403
    assert not Generation.objects.exists()
    # With the token from the page it goes through.
    page = client.get("/generate/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', text(page)).group(1)
    response = client.post(
        "/generate/", {"prompt": "A fox", "idempotency_key": "k", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and Generation.objects.count() == 1


# --- One generation ---------------------------------------------------------------------------


def test_a_queued_generation_polls_for_its_status(alice):
    generation = generation_row(alice, status=Status.SUBMITTING)
    response = client_for(alice).get(f"/generations/{generation.pk}/")
    html = text(response)
    assert response.status_code == 200
    assert f'hx-get="/generations/{generation.pk}/status/?seen=queued"' in html
    assert 'hx-trigger="every 2s"' in html
    assert "Queued" in html and "so far" in html
    assert "<video" not in html
    assert '<meta http-equiv="refresh"' in html  # inside <noscript>: the page still updates without JS
    assert "Most videos take a minute or two" in html  # no history to estimate from yet


def test_the_estimate_comes_from_recent_similar_generations(alice, bob):
    start = timezone.now() - timedelta(hours=1)
    for seconds in (50, 70, 90):
        g = generation_row(bob, mode="fast", duration=8)
        Generation.objects.filter(pk=g.pk).update(
            created_at=start, finished_at=start + timedelta(seconds=seconds)
        )
    generation_row(bob, mode="std", duration=8)  # another mode: not counted
    generation = generation_row(alice, status=Status.RUNNING, mode="fast", duration=8)
    html = text(client_for(alice).get(f"/generations/{generation.pk}/"))
    assert "usually take about 1 min 10 s" in html
    assert '<progress max="70"' in html


def test_the_status_fragment_is_204_until_something_changes(alice):
    generation = generation_row(alice, status=Status.RUNNING)
    client = client_for(alice)
    url = f"/generations/{generation.pk}/status/"
    assert client.get(url + "?seen=running", headers={"HX-Request": "true"}).status_code == 204
    response = client.get(url + "?seen=queued", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = text(response)
    assert 'hx-trigger="every 2s"' in html and "?seen=running" in html
    # Started: only the actions change (their Cancel button goes); the rest waits for the end.
    assert html.count("hx-swap-oob") == 1 and 'id="actions"' in html and "/cancel/" not in html


def test_a_finished_generation_stops_polling_and_swaps_in_the_player(alice):
    generation = generation_row(alice, status=Status.RUNNING)
    client = client_for(alice)
    url = f"/generations/{generation.pk}/status/?seen=running"
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.SUCCEEDED, finished_at=timezone.now(), video="videos/t/x.mp4"
    )
    html = text(client.get(url, headers={"HX-Request": "true"}))
    assert "hx-trigger" not in html and "hx-get" not in html
    assert 'id="player" class="player-region" hx-swap-oob="true"' in html
    assert "<video controls loop playsinline" in html and "/videos/" in html
    assert 'id="actions"' in html and 'id="balance"' in html and "Who can watch it" in html


def test_a_succeeded_generation_shows_video_download_settings_cost_and_actions(alice, media):
    generation = with_files(
        generation_row(alice, prompt="A paper boat", mode="fast", duration=6, aspect_ratio="9:16")
    )
    html = text(client_for(alice).get(f"/generations/{generation.pk}/"))
    assert "hx-trigger" not in html
    video_src = re.search(r'<video controls loop playsinline[^>]* src="([^"]+)"', html).group(1)
    assert video_src.startswith("http://testserver/videos/") and video_src.endswith(".mp4")
    assert f'poster="/generations/{generation.pk}/poster.jpg"' in html
    assert 'download="seedance-' in html and "Download MP4" in html
    assert "6 s × $0.20 = <strong>$1.20</strong>" in html
    assert "Fast" in html and "9:16" in html and "A paper boat" in html
    again = "/generate/?prompt=A+paper+boat&amp;mode=fast&amp;duration=6&amp;aspect_ratio=9%3A16"
    assert again in html and "Remix in the studio" in html
    assert "Generate again with these settings" not in html  # one way to try again: Remix
    assert 'name="visibility" value="private" checked' in html
    assert "Delete for good" in html and "is not returned" in html
    # The signed link plays without a session.
    assert Client().get(video_src.removeprefix("http://testserver")).status_code == 200


def test_a_failed_generation_says_why_and_that_the_credits_came_back(alice):
    generation = generation_row(
        alice, status=Status.FAILED, error="The video service turned this request down."
    )
    html = text(client_for(alice).get(f"/generations/{generation.pk}/"))
    assert "The video service turned this request down." in html
    assert "<video" not in html and "Who can watch it" not in html and "Delete for good" in html


def test_another_users_generation_pages_are_404(alice, bob, media):
    generation = with_files(generation_row(bob))
    client = client_for(alice)
    for path in ("", "status/", "poster.jpg"):
        assert client.get(f"/generations/{generation.pk}/{path}").status_code == 404
    assert client.post(f"/generations/{generation.pk}/share/", {"shared": "1"}).status_code == 404
    assert client.post(f"/generations/{generation.pk}/delete/").status_code == 404
    generation.refresh_from_db()
    assert not generation.shared and default_storage.exists(generation.video.name)
    assert client.get(f"/generations/{uuid.uuid4()}/").status_code == 404


def test_anonymous_users_are_sent_to_log_in(bob):
    generation = generation_row(bob)
    client = Client()
    for path in ("/gallery/", f"/generations/{generation.pk}/", f"/generations/{generation.pk}/status/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path
    for path in (f"/generations/{generation.pk}/share/", f"/generations/{generation.pk}/delete/"):
        response = client.post(path, {"shared": "1"})
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), path
    assert Generation.objects.filter(pk=generation.pk, shared=False).exists()


def test_a_poll_after_logging_out_sends_the_whole_page_to_log_in(bob):
    generation = generation_row(bob, status=Status.RUNNING)
    response = Client().get(
        f"/generations/{generation.pk}/status/?seen=running", headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next=/generations/{generation.pk}/"


# --- Posters, sharing, deleting ------------------------------------------------------------------


def test_posters_are_served_to_the_owner_and_to_everyone_once_shared(alice, bob, media):
    generation = with_files(generation_row(alice))
    url = f"/generations/{generation.pk}/poster.jpg"
    response = client_for(alice).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content).startswith(b"\xff\xd8")
    assert Client().get(url).status_code == 404 and client_for(bob).get(url).status_code == 404
    Generation.objects.filter(pk=generation.pk).update(shared=True, share_slug="abc")  # by link only
    assert Client().get(url).status_code == 200 and client_for(bob).get(url).status_code == 200


def test_a_generation_without_a_poster_has_none(alice):
    generation = generation_row(alice)
    assert client_for(alice).get(f"/generations/{generation.pk}/poster.jpg").status_code == 404


def test_sharing_makes_a_public_page_with_open_graph_tags_and_unsharing_hides_it(alice, media):
    generation = with_files(generation_row(alice, prompt="Neon rain in Tokyo"))
    client = client_for(alice)
    response = client.post(f"/generations/{generation.pk}/share/", {"shared": "1"}, follow=True)
    generation.refresh_from_db()
    assert generation.shared and generation.share_slug
    public = f"http://testserver/v/{generation.share_slug}/"
    html = text(response)
    assert f'value="{public}"' in html and "data-copy" in html
    assert 'name="visibility" value="listed" checked' in html

    html = text(Client().get(f"/v/{generation.share_slug}/"))
    assert '<meta property="og:type" content="video.other">' in html
    assert '<meta property="og:title" content="Neon rain in Tokyo">' in html
    assert f'<meta property="og:url" content="{public}">' in html
    og_video = re.search(r'<meta property="og:video" content="([^"]+)">', html).group(1)
    assert og_video.startswith("http://testserver/videos/")
    assert Client().get(og_video.removeprefix("http://testserver")).status_code == 200
    assert (
        f'<meta property="og:image" content="http://testserver/generations/{generation.pk}/poster.jpg">'
        in html
    )
    assert "@alice" in html and "alice@example.com" not in html

    client.post(f"/generations/{generation.pk}/share/", {"shared": "0"})
    assert Client().get(f"/v/{generation.share_slug}/").status_code == 404
    assert Client().get(f"/generations/{generation.pk}/poster.jpg").status_code == 404


def test_an_unfinished_generation_cannot_be_shared(alice):
    generation = generation_row(alice, status=Status.RUNNING)
    response = client_for(alice).post(f"/generations/{generation.pk}/share/", {"shared": "1"}, follow=True)
    assert "Only a finished video can be shared." in text(response)
    generation.refresh_from_db()
    assert not generation.shared


def test_share_and_delete_only_take_posts(alice):
    generation = generation_row(alice)
    client = client_for(alice)
    assert client.get(f"/generations/{generation.pk}/share/").status_code == 405
    assert client.get(f"/generations/{generation.pk}/delete/").status_code == 405


def test_deleting_removes_the_video_everywhere_and_the_files_and_keeps_the_charge(
    alice, media, django_capture_on_commit_callbacks
):
    generation = with_files(generation_row(alice, shared=True))
    alice_balance = balance(User.objects.get(pk=alice.pk))
    video, poster = generation.video.name, generation.poster.name
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(alice).post(f"/generations/{generation.pk}/delete/", follow=True)
    assert response.redirect_chain[-1][0] == "/gallery/"
    assert "The video was deleted." in text(response)
    assert not Generation.objects.visible().filter(pk=generation.pk).exists()
    assert not default_storage.exists(video) and not default_storage.exists(poster)
    assert balance(User.objects.get(pk=alice.pk)) == alice_balance
    assert Client().get(f"/v/{generation.share_slug}/").status_code == 404
    owner = client_for(alice)
    for path in (f"/generations/{generation.pk}/", f"/generations/{generation.pk}/poster.jpg"):
        assert owner.get(path).status_code == 404, path
    assert str(generation.pk) not in text(owner.get("/gallery/"))
    # The row stays for the ledger, whose entries name it (see test_pipeline for the audit).
    assert Generation.objects.filter(pk=generation.pk, deleted_at__isnull=False).exists()
    assert client_for(alice).post(f"/generations/{generation.pk}/delete/").status_code == 404


def test_an_unfinished_generation_cannot_be_deleted(alice):
    generation = generation_row(alice, status=Status.QUEUED)
    response = client_for(alice).post(f"/generations/{generation.pk}/delete/", follow=True)
    assert "still being made" in text(response)
    assert Generation.objects.filter(pk=generation.pk).exists()


# --- Gallery ------------------------------------------------------------------------------------


def test_the_gallery_lists_my_generations_newest_first_with_badges(alice, bob):
    old = generation_row(alice, prompt="Oldest fox")
    Generation.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=1))
    generation_row(alice, prompt="Running owl", status=Status.RUNNING)
    generation_row(alice, prompt="Failed whale", status=Status.FAILED)
    generation_row(bob, prompt="Bob's secret")
    html = text(client_for(alice).get("/gallery/"))
    assert html.index("Failed whale") < html.index("Running owl") < html.index("Oldest fox")
    assert "Bob&#x27;s secret" not in html and "Bob's secret" not in html
    assert ">Running</span>" in html and ">Failed</span>" in html
    assert "3 videos" in html


def test_the_gallery_filters_by_status_mode_ratio_and_prompt(alice):
    generation_row(alice, prompt="Fox std wide", mode="std", aspect_ratio="16:9")
    generation_row(alice, prompt="Fox fast tall", mode="fast", aspect_ratio="9:16")
    generation_row(
        alice, prompt="Owl fast tall running", mode="fast", aspect_ratio="9:16", status=Status.FETCHING
    )
    client = client_for(alice)

    def shown(query: str) -> set[str]:
        html = text(client.get("/gallery/?" + query))
        return {p for p in ("Fox std wide", "Fox fast tall", "Owl fast tall running") if p in html}

    assert shown("mode=fast") == {"Fox fast tall", "Owl fast tall running"}
    assert shown("status=running") == {"Owl fast tall running"}
    assert shown("aspect_ratio=16:9") == {"Fox std wide"}
    assert shown("q=fox") == {"Fox std wide", "Fox fast tall"}
    assert shown("q=fox&mode=fast&aspect_ratio=9:16&status=succeeded") == {"Fox fast tall"}
    assert shown("status=bogus&mode=turbo") == {"Fox std wide", "Fox fast tall", "Owl fast tall running"}
    html = text(client.get("/gallery/?q=nothing-like-this"))
    assert "Nothing matches these filters" in html and 'value="nothing-like-this"' in html


def test_the_gallery_is_paginated_by_24(alice):
    Generation.objects.bulk_create(bulk_generations(alice, 30))
    client = client_for(alice)
    first = text(client.get("/gallery/"))
    assert first.count('<li class="tile') == 24 and "Page 1 of 2" in first
    second = text(client.get("/gallery/?page=2&mode=std"))
    # 15 std among 30: one page, so a page number past the end shows it.
    assert second.count('<li class="tile') == 15 and "Page 1 of" not in second
    last = text(client.get("/gallery/?page=2"))
    assert last.count('<li class="tile') == 6 and 'href="?page=1"' in last


def test_an_empty_gallery_invites_to_generate(alice):
    html = text(client_for(alice).get("/gallery/"))
    assert "No videos yet" in html and 'href="/generate/"' in html


def bulk_generations(user: User, count: int, **extra) -> list[Generation]:
    now = timezone.now()
    statuses = [Status.SUCCEEDED, Status.RUNNING, Status.FAILED, Status.QUEUED]
    rows = []
    for i in range(count):
        status = extra.get("status", statuses[i % len(statuses)])
        mode = "std" if i % 2 == 0 else "fast"
        rows.append(
            Generation(
                user=user,
                prompt=f"Generation number {i}",
                mode=mode,
                duration=5,
                aspect_ratio="16:9",
                cost_cents=quote(mode, 5).cost_cents,
                cents_per_second=quote(mode, 5).cents_per_second,
                status=status,
                deadline_at=now + timedelta(minutes=30),
                finished_at=now if status in Generation.FINISHED else None,
                video=f"videos/t/{i}.mp4" if status == Status.SUCCEEDED else "",
                poster=f"posters/t/{i}.jpg" if status == Status.SUCCEEDED else "",
                shared=extra.get("shared", False),
                listed=extra.get("shared", False),
                share_slug=uuid.uuid4().hex[:11] if extra.get("shared") else None,
            )
        )
    return rows


def count_queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(path).status_code == 200
    return len(queries)


def test_the_gallery_makes_the_same_few_queries_for_5_or_500_generations(
    alice, django_assert_max_num_queries
):
    client = client_for(alice)
    Generation.objects.bulk_create(bulk_generations(alice, 5))
    few = count_queries(client, "/gallery/")
    Generation.objects.bulk_create(bulk_generations(alice, 495))
    assert Generation.objects.filter(user=alice).count() == 500
    with django_assert_max_num_queries(few):
        response = client.get("/gallery/?page=3&q=number")
    assert text(response).count('<li class="tile') == 24
    assert count_queries(client, "/gallery/?status=succeeded&mode=std") == few
    assert few <= 6  # session, user, the header's balance (its own table), count, page


# --- Explore -------------------------------------------------------------------------------------


def test_explore_shows_only_shared_finished_videos_with_the_owner_by_username(alice, bob):
    generation_row(alice, prompt="Alice public fox", shared=True)
    generation_row(bob, prompt="Bob public owl", shared=True)
    generation_row(bob, prompt="Bob private whale")
    generation_row(bob, prompt="Bob failed but shared", status=Status.FAILED, shared=True)
    html = text(Client().get("/explore/"))
    assert "Alice public fox" in html and "Bob public owl" in html
    assert "Bob private whale" not in html and "Bob failed but shared" not in html
    assert "@alice" in html and "@bob" in html
    assert "@example.com" not in html
    assert re.search(r'href="/v/[\w-]+/"', html)
    html = text(Client().get("/explore/?q=owl"))
    assert "Bob public owl" in html and "Alice public fox" not in html


def test_explore_makes_the_same_few_queries_for_5_or_500_videos(django_assert_max_num_queries):
    users = [make_user(f"maker{i}") for i in range(5)]
    Generation.objects.bulk_create(bulk_generations(users[0], 5, status=Status.SUCCEEDED, shared=True))
    client = Client()
    few = count_queries(client, "/explore/")
    for user in users:
        Generation.objects.bulk_create(bulk_generations(user, 99, status=Status.SUCCEEDED, shared=True))
    assert Generation.objects.filter(shared=True).count() == 500
    with django_assert_max_num_queries(few):
        response = client.get("/explore/?page=4")
    html = text(response)
    assert html.count('<li class="tile') == 24 and "@maker" in html
    assert few <= 3  # count and page (no session for a visitor)


def test_an_empty_explore_page_says_so(db):
    assert "Nothing shared yet" in text(Client().get("/explore/"))


# --- Account --------------------------------------------------------------------------------------


def test_the_account_page_sits_in_the_new_layout(alice):
    html = text(client_for(alice).get("/accounts/"))
    assert "API tokens" in html and "Credit history" in html and "Change your password" in html
    assert 'id="balance"' in html and re.search(r'href="/accounts/"\s+aria-current="page"', html)


def test_a_crafted_idempotency_key_with_a_nul_is_ignored_not_a_crash(alice, settings):
    settings.SHORTAPI_KEY = "x"
    response = client_for(alice).post(
        "/generate/",
        {
            "prompt": "a fox",
            "mode": "std",
            "duration": "5",
            "aspect_ratio": "16:9",
            "idempotency_key": "bad\x00key",
        },
    )
    assert response.status_code == 302
    assert Generation.objects.get().idempotency_key is None


# --- Live news: the gallery's tiles and any page's "a video finished" --------------------------


def test_an_unfinished_tile_polls_and_answers_204_until_its_video_changes(alice, bob):
    running = generation_row(alice, status=Status.RUNNING)
    client = client_for(alice)
    gallery = text(client.get("/gallery/"))
    assert f'hx-get="/generations/{running.pk}/tile/?seen=running"' in gallery
    url = f"/generations/{running.pk}/tile/"
    assert client.get(url + "?seen=running").status_code == 204
    Generation.objects.filter(pk=running.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    html = text(client.get(url + "?seen=running"))
    assert f'id="tile-{running.pk}"' in html and 'data-status="succeeded"' in html
    assert "hx-trigger" not in html and ">Ready<" in html
    # Gone, another user's, or logged out: 286 tells htmx to stop polling.
    assert client_for(bob).get(url + "?seen=running").status_code == 286
    assert Client().get(url + "?seen=running").status_code == 286
    # Finished tiles, and other people's on Explore, never poll.
    assert "hx-trigger" not in text(client.get("/gallery/"))


def test_the_watch_tells_each_finished_video_once(alice, bob):
    start = timezone.now()
    client = client_for(alice)
    assert Client().get("/generations/watch/").status_code == 401
    running = generation_row(alice, status=Status.RUNNING)
    generation_row(bob, status=Status.SUCCEEDED)  # someone else's: never told
    with time_machine.travel(start + timedelta(seconds=10), tick=False):
        first = client.get("/generations/watch/", {"since": start.isoformat()}).json()
    assert (first["active"], first["finished"]) == (1, [])

    finished_at = start + timedelta(seconds=12)
    Generation.objects.filter(pk=running.pk).update(status=Status.SUCCEEDED, finished_at=finished_at)
    with time_machine.travel(start + timedelta(seconds=13), tick=False):
        # Finished a second ago: its transaction may still be committing, so it waits a poll.
        settling = client.get("/generations/watch/", {"since": first["now"]}).json()
    assert settling["finished"] == []
    with time_machine.travel(start + timedelta(seconds=20), tick=False):
        second = client.get("/generations/watch/", {"since": settling["now"]}).json()
    assert second["active"] == 0
    assert second["finished"] == [
        {
            "id": str(running.pk),
            "status": "succeeded",
            "prompt": running.prompt,
            "url": f"/generations/{running.pk}/",
        }
    ]
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        assert client.get("/generations/watch/", {"since": second["now"]}).json()["finished"] == []
        # A since that makes no sense is "from now".
        assert client.get("/generations/watch/", {"since": "yesterday"}).json()["finished"] == []
