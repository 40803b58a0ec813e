"""The generation page says one sentence for its state and offers one way on (issue 15, item 7):
nothing stale above "Ready", and a failed video speaks of its refund once, with one retry button."""

import re

import pytest
from django.utils import timezone

from generations.models import Generation
from tests.factories import client_for, generation_row
from tests.factories import html as text

pytestmark = pytest.mark.django_db

Status = Generation.Status
STALE = ("on its way", "Nothing was charged", "credits came back", "credits have been returned")


def main_of(html: str) -> str:
    return html[html.index('<main id="main"') :]


def retry_links(html: str, generation: Generation) -> int:
    again = "/generate/?prompt="
    return len(re.findall(rf'<a class="button[^"]*"[^>]* href="{re.escape(again)}', html))


def test_a_new_generation_says_what_is_held_in_its_status_line_only(alice, settings):
    settings.SHORTAPI_KEY = "x"
    client = client_for(alice)
    response = client.post("/generate/", {"prompt": "A fox", "idempotency_key": "k"}, follow=True)
    html = main_of(text(response))
    assert 'class="messages"' not in html  # no flash that would outlive the state it describes
    status = re.search(r'<p class="status-line">(.*?)</p>', html, re.S).group(1)
    assert "Queued" in status and "$1.20 held, returned if it cannot be made" in status
    assert html.count("held") == 1


def test_a_ready_video_has_no_word_of_holding_and_one_way_to_make_another(alice):
    generation = generation_row(alice, prompt="A heron")
    html = main_of(text(client_for(alice).get(f"/generations/{generation.pk}/")))
    assert "Ready" in html and "held" not in html
    for stale in STALE:
        assert stale not in html
    assert "Remix in the studio" in html and "Generate again with these settings" not in html


def test_the_status_fragment_that_swaps_in_ready_drops_the_held_sentence(alice):
    generation = generation_row(alice, status=Status.RUNNING)
    client = client_for(alice)
    running = text(client.get(f"/generations/{generation.pk}/status/?seen=queued"))
    assert "$1.20 held" in running
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.SUCCEEDED, finished_at=timezone.now(), video="videos/t/x.mp4"
    )
    ready = text(client.get(f"/generations/{generation.pk}/status/?seen=running"))
    assert "Ready" in ready and "held" not in ready


def test_a_failed_video_says_why_speaks_of_its_refund_once_and_offers_one_retry(alice):
    generation = generation_row(alice, status=Status.FAILED)  # its error ends with the refund
    assert generation.error.endswith("Your credits have been returned.")
    html = main_of(text(client_for(alice).get(f"/generations/{generation.pk}/")))
    assert "The video service could not make this video." in html
    assert "the $1.20 held for it is back in your balance" in html
    for stale in STALE:
        assert stale not in html
    assert html.count("back in your balance") == 1
    assert retry_links(html, generation) == 1
    assert html.count("Try again with these settings") == 1


def test_a_cancelled_video_says_so_once(alice):
    generation = generation_row(alice, status=Status.FAILED, error="Cancelled by you")
    html = main_of(text(client_for(alice).get(f"/generations/{generation.pk}/")))
    assert html.count("Cancelled by you") == 1 and html.count("back in your balance") == 1
