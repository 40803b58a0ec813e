"""Image-to-video and omni-reference end to end: the JSON API, a real RQ worker, the ShortAPI simulator
over real HTTP fetching every input from the portal's own signed links (the live server), and the
video that comes back, which visibly comes from those inputs. Then the follow-ups on a finished video."""

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditEntry
from generations.models import Generation, Upload
from generations.uploads import upload_from_file
from tests import media
from tests.factories import api_for, balance, client_for, make_user, run_jobs, settle, submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_tx():
    alice = make_user("alice", 10_000)
    return alice, api_for(alice)


def keep(user, path: Path) -> str:
    return str(upload_from_file(user=user, path=str(path), original_name=path.name).pk)


def near(color, expected, tolerance=45) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(color, expected, strict=True))


def the_job(simulator) -> dict:
    (job,) = simulator.job_summaries()
    return job


def test_image_to_video_animates_the_picture_the_simulator_fetched_from_the_portal(
    pipeline, alice_tx, live_server, tmp_path
):
    alice, api = alice_tx
    red = keep(alice, media.picture(tmp_path / "red.jpg", (800, 450), (200, 20, 20)))
    tone = keep(alice, media.sound(tmp_path / "tone.mp3", 3))
    generation = submit(
        api, prompt="The red wall slowly comes closer", image_ids=[red], audio_ids=[tone], mode="fast"
    )
    generation = settle(generation)
    assert generation.status == "succeeded", generation.error_detail
    job = the_job(pipeline)
    assert job["model"] == "bytedance/seedance-2.0/image-to-video"
    assert [i["field"] for i in job["inputs"]] == ["image_urls[0]", "audio_urls[0]"]
    assert all(i["url"].startswith(f"{live_server.url}/inputs/") for i in job["inputs"])
    assert job["inputs_fetched"] == 2 and pipeline.stats()["input_fetches"] == 2
    # The video is the picture (the white corner block zooms out of view; the red fills the frame).
    info = media.probe(generation.video.path)
    assert "Duration: 00:00:04" in info and "Video: h264" in info and "Audio: aac" in info
    assert near(media.frame_color(generation.video.path, 3.5), (200, 20, 20), 60)
    assert generation.cost_cents == 80 and audit_mismatches() == []
    assert api.get(f"/api/v1/generations/{generation.pk}").json()["image_ids"] == [red]


def test_a_first_and_last_frame_video_opens_on_the_first_and_ends_on_the_last(pipeline, alice_tx, tmp_path):
    alice, api = alice_tx
    first = keep(alice, media.picture(tmp_path / "first.png", (600, 600), (210, 30, 30)))
    last = keep(alice, media.picture(tmp_path / "last.png", (600, 600), (30, 30, 210)))
    generation = submit(
        api, prompt="Red becomes blue", image_ids=[first, last], first_last_frame=True, aspect_ratio="16:9"
    )
    generation = settle(generation)
    assert generation.status == "succeeded", generation.error_detail
    args = the_job(pipeline)["args"]
    assert args["is_first_last_frame"] is True and "aspect_ratio" not in the_job_request(generation)
    # Square pictures make a square video: the frames set the shape, not the ratio asked for.
    assert "240x240" in media.probe(generation.video.path)
    assert near(media.frame_color(generation.video.path, 0.1), (210, 30, 30), 70)
    assert near(media.frame_color(generation.video.path, 3.9), (30, 30, 210), 70)


def the_job_request(generation: Generation) -> dict:
    from generations import shortapi
    from generations.jobs import job_request

    return shortapi.job_args(**job_request(generation))


def test_omni_reference_retints_the_reference_video_and_bills_its_seconds(pipeline, alice_tx, tmp_path):
    alice, api = alice_tx
    green = keep(alice, media.video(tmp_path / "green.mp4", 6.2, color="0x20c020"))
    assert Upload.objects.get(pk=green).duration_seconds > 6
    generation = submit(api, prompt="Make it dusk", video_id=green, duration=5)
    assert generation.model == "omni-reference" and generation.cost_cents == 202  # (7 + 5) * 16.8, rounded up
    generation = settle(generation)
    assert generation.status == "succeeded", generation.error_detail
    job = the_job(pipeline)
    assert job["model"] == "bytedance/seedance-2.0/omni-reference" and job["args"]["video_url"].endswith(
        ".mp4"
    )
    assert "Duration: 00:00:05" in media.probe(generation.video.path)
    color = media.frame_color(generation.video.path, 2)
    # Still one flat colour, as the input was, but no longer green: re-tinted.
    assert color[1] < max(color[0], color[2]), color
    assert CreditEntry.objects.get(reference=generation.ledger_reference).amount_cents == -202


def test_an_input_the_provider_cannot_fetch_fails_the_job_clearly_and_refunds_once(
    pipeline, alice_tx, tmp_path
):
    alice, api = alice_tx
    image = keep(alice, media.picture(tmp_path / "gone.jpg"))
    Path(Upload.objects.get(pk=image).file.path).unlink()  # the storage lost it
    generation = submit(api, prompt="A kite", image_ids=[image])
    generation = settle(generation)
    assert generation.status == "failed" and generation.failure_class == "upstream_failed"
    assert "Could not use image_urls[0]: the URL answered HTTP 404" in generation.error
    assert "credits have been returned" in generation.error
    entries = CreditEntry.objects.filter(reference=generation.ledger_reference).values_list("kind", flat=True)
    assert sorted(entries) == ["charge", "refund"] and audit_mismatches() == []


def test_a_worker_killed_after_an_image_to_video_create_is_resumed_by_the_callback(
    pipeline, alice_tx, tmp_path
):
    """The callback's job id is taken once upstream shows the very model and args, input links
    included (they are the same whenever they are built); a job made for other inputs is not."""
    from generations import shortapi
    from generations.jobs import job_request
    from generations.services import callback_url, generation_claim_submit

    alice, api = alice_tx
    image, other = (keep(alice, media.picture(tmp_path / f"{n}.jpg")) for n in ("a", "b"))
    generation = submit(api, prompt="A kite", image_ids=[image])
    # What a worker does before it dies: claim, call create upstream... and never save the answer.
    assert generation_claim_submit(generation_id=generation.pk)
    asked = job_request(generation)
    foreign = {**asked, "image_urls": [asked["image_urls"][0].replace(image, other)]}
    shortapi.create_job(**foreign, callback_url=callback_url(generation.pk))  # another picture's job
    run_jobs(lambda: pipeline.stats()["callbacks_sent"] == 1)
    run_jobs()
    generation.refresh_from_db()
    assert generation.status == "submitting" and generation.upstream_job_id == ""
    shortapi.create_job(**asked, callback_url=callback_url(generation.pk))
    generation = settle(generation)
    assert generation.status == "succeeded", generation.error_detail
    assert generation.upstream_job_id == pipeline.job_summaries()[-1]["job_id"]


def test_continue_from_the_last_frame_opens_the_studio_with_it_and_spends_nothing(
    pipeline, alice_tx, tmp_path
):
    alice, api = alice_tx
    blue = keep(alice, media.picture(tmp_path / "blue.jpg", (640, 360), (20, 20, 200)))
    generation = settle(submit(api, prompt="A blue sky", image_ids=[blue], mode="fast"))
    client = client_for(alice)
    page = client.get(f"/generations/{generation.pk}/").content.decode()
    assert (
        "Continue from the last frame" in page and "Nothing is spent until you press Generate: $0.80" in page
    )
    alice.refresh_from_db()
    before = balance(alice)
    response = client.post(f"/generations/{generation.pk}/continue/")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response["Location"]).query)
    frame = Upload.objects.get(pk=query["image_ids"][0])
    assert (frame.user, frame.kind, frame.content_type) == (alice, "image", "image/png")
    assert min(frame.width, frame.height) >= 300  # the simulator's small frame, scaled to an input's minimum
    assert near(media.frame_color(frame.file.path, 0), (20, 20, 200), 60)  # it is the video's last frame
    assert query["prompt"] == ["A blue sky"] and query["mode"] == ["fast"]
    studio = client.get(response["Location"]).content.decode()
    assert f'name="image_ids" value="{frame.pk}" checked' in studio and "Image to video" in studio
    assert "4 s × $0.20 = $0.80" in studio
    alice.refresh_from_db()
    assert balance(alice) == before and Generation.objects.count() == 1


def test_make_it_in_standard_remakes_a_fast_draft_with_the_same_prompt_and_inputs(
    pipeline, alice_tx, tmp_path
):
    alice, api = alice_tx
    picture = keep(alice, media.picture(tmp_path / "p.jpg"))
    video = keep(alice, media.video(tmp_path / "v.mp4", 3))
    draft = settle(
        submit(api, prompt="Neon rain", image_ids=[picture], video_id=video, mode="fast", duration=4)
    )
    assert draft.cost_cents == 98  # (3 + 4) * 14
    client = client_for(alice)
    page = client.get(f"/generations/{draft.pk}/").content.decode()
    price = re.search(r"Make it in Standard · (\$[\d.]+)", page).group(1)
    assert price == "$1.18"  # (3 + 4) * 16.8 = 117.6, shown before anything is spent
    form = re.search(r'<form method="post" action="/generate/">(.*?)</form>', page, re.S).group(1)
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form)
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value.replace("&#x27;", "'"))
    response = client.post("/generate/", data)
    assert response.status_code == 302
    final = Generation.objects.exclude(pk=draft.pk).get()
    assert (final.mode, final.prompt, final.model, final.cost_cents) == (
        "std",
        "Neon rain",
        "omni-reference",
        118,
    )
    assert api.get(f"/api/v1/generations/{final.pk}").json()["image_ids"] == [picture]
    assert client.post("/generate/", data).status_code == 302  # sent twice: still one
    assert Generation.objects.count() == 2
    # Remix fills the studio with everything.
    remix = re.search(r'href="(/generate/\?[^"]+)">Remix in the studio', page).group(1).replace("&amp;", "&")
    studio = client.get(remix).content.decode()
    assert f'name="video_id" value="{video}" checked' in studio and "Neon rain</textarea>" in studio
    assert settle(final).status == "succeeded"
