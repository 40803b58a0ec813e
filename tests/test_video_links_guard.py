"""The signed video link (CONTRACT §4 `video_url`) is the only key to a stored video: a link that is
not signed by us, or signed too long ago, opens nothing. Each test here kills one mutant of
generations.services / generations.media that the rest of the suite let through (tests/MUTATION.md)."""

from datetime import timedelta

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone

from generations.models import Generation
from generations.pricing import quote
from generations.services import generation_id_from_video_token, video_token

pytestmark = pytest.mark.django_db

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64


@pytest.fixture
def video(alice, settings, tmp_path) -> Generation:
    """A succeeded generation of alice's with its video stored."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    price = quote("std", 5)
    generation = Generation.objects.create(
        user=alice,
        prompt="a private lighthouse",
        mode="std",
        duration=5,
        aspect_ratio="16:9",
        cost_cents=price.cost_cents,
        cents_per_second=price.cents_per_second,
        status=Generation.Status.SUCCEEDED,
        deadline_at=timezone.now() + timedelta(minutes=30),
        finished_at=timezone.now(),
    )
    name = default_storage.save(f"videos/test/{generation.pk}.mp4", ContentFile(MP4))
    Generation.objects.filter(pk=generation.pk).update(video=name)
    return generation


def link(token: str) -> str:
    return reverse("video_file", args=[token])


def test_a_signed_video_link_opens_the_video(client, video):
    response = client.get(link(video_token(video.pk)))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == MP4


def test_a_video_link_made_of_the_bare_id_opens_nothing(client, video):
    # Anyone who learns an id (a log, a webhook body, a support mail) must not fetch the video.
    assert generation_id_from_video_token(str(video.pk)) is None
    assert client.get(link(str(video.pk))).status_code == 404


def test_a_video_link_with_a_forged_signature_opens_nothing(client, video):
    signed = video_token(video.pk)
    value, timestamp, _signature = signed.split(":")
    forged = f"{value}:{timestamp}:{'A' * 27}"
    assert generation_id_from_video_token(forged) is None
    assert client.get(link(forged)).status_code == 404


def test_a_video_link_signed_for_another_purpose_opens_nothing(client, video):
    # The callback token signs the same id with another salt; it must not double as a video link.
    from generations.services import callback_token

    assert client.get(link(callback_token(video.pk))).status_code == 404


def test_a_video_link_past_its_max_age_opens_nothing(client, video, settings):
    token = video_token(video.pk)
    max_age = settings.VIDEO_URL_MAX_AGE_SECONDS
    with time_machine.travel(timezone.now() + timedelta(seconds=max_age - 60)):
        assert client.get(link(token)).status_code == 200  # still in time a minute before
    with time_machine.travel(timezone.now() + timedelta(seconds=max_age + 60)):
        assert generation_id_from_video_token(token) is None
        assert client.get(link(token)).status_code == 404
