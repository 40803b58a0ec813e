"""A generation's inputs (CONTRACT §4b): every rule, from the API and from the web form alike, with a
clear error that changes nothing; the model and the price that follow from them; the links the
provider fetches them by; and how long uploads and their files are kept."""

import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.utils import timezone

from accounts.models import CreditEntry
from generations import shortapi
from generations.models import Generation, GenerationInput, Upload
from generations.pricing import OMNI_REFERENCE, quote
from generations.uploads import generation_input_urls, upload_from_file, uploads_sweep
from tests import media
from tests.factories import balance, make_user

SIX_SECONDS = Decimal("6.200")  # billed as 7 whole seconds


def row(user, kind: str, *, seconds: Decimal | None = None) -> Upload:
    """An upload row without a file: enough for the rules, which never read one."""
    size = {"image": (800, 600), "video": (320, 240), "audio": (None, None)}[kind]
    return Upload.objects.create(
        user=user,
        kind=kind,
        content_type={"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mpeg"}[kind],
        size_bytes=1000,
        width=size[0],
        height=size[1],
        duration_seconds=seconds if kind != "image" else None,
        file=f"uploads/test/{uuid.uuid4()}.bin",
        created_at=timezone.now(),
    )


@pytest.fixture
def ids(alice, bob, settings) -> dict:
    settings.SHORTAPI_KEY = "configured"  # jobs are only queued
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"
    made = {f"image{n}": row(alice, "image") for n in range(1, 11)}
    made["video"] = row(alice, "video", seconds=SIX_SECONDS)
    made.update({f"audio{n}": row(alice, "audio", seconds=Decimal(3)) for n in range(1, 5)})
    made["bobs_image"] = row(bob, "image")
    return {name: str(upload.pk) for name, upload in made.items()}


def images(ids, count: int) -> list[str]:
    return [ids[f"image{n}"] for n in range(1, count + 1)]


# Each case: the inputs sent, and the one field the error names.
RULES = [
    pytest.param(
        lambda i: {"audio_ids": [i["audio1"]]},
        "audio_ids",
        "Audio needs an image or a video",
        id="audio-alone",
    ),
    pytest.param(
        lambda i: {"image_ids": images(i, 3), "first_last_frame": True},
        "first_last_frame",
        "one or two images",
        id="three-images-first-last",
    ),
    pytest.param(
        lambda i: {"first_last_frame": True},
        "first_last_frame",
        "one or two images",
        id="first-last-no-image",
    ),
    pytest.param(
        lambda i: {"image_ids": images(i, 1), "video_id": i["video"], "first_last_frame": True},
        "first_last_frame",
        "images only",
        id="first-last-with-video",
    ),
    pytest.param(
        lambda i: {"image_ids": images(i, 2), "audio_ids": [i["audio1"]], "first_last_frame": True},
        "first_last_frame",
        "images only",
        id="first-last-with-audio",
    ),
    pytest.param(
        lambda i: {"image_ids": [i["bobs_image"]]},
        "image_ids",
        "no upload with the id",
        id="another-users-image",
    ),
    pytest.param(
        lambda i: {"image_ids": [str(uuid.uuid4())]}, "image_ids", "no upload with the id", id="unknown-image"
    ),
    pytest.param(
        lambda i: {"image_ids": [i["video"]]}, "image_ids", "is a video, not an image", id="video-as-image"
    ),
    pytest.param(
        lambda i: {"video_id": i["image1"]}, "video_id", "is an image, not a video", id="image-as-video"
    ),
    pytest.param(
        lambda i: {"audio_ids": [i["image1"]]}, "audio_ids", "is an image, not a sound", id="image-as-audio"
    ),
    pytest.param(
        lambda i: {"video_id": i["bobs_image"]}, "video_id", "no upload with the id", id="another-users-video"
    ),
    pytest.param(lambda i: {"image_ids": images(i, 10)}, "image_ids", "at most 9 images", id="ten-images"),
    pytest.param(
        lambda i: {"image_ids": images(i, 1), "audio_ids": [i[f"audio{n}"] for n in range(1, 5)]},
        "audio_ids",
        "at most 3 sounds",
        id="four-sounds",
    ),
    pytest.param(
        lambda i: {
            "image_ids": images(i, 9),
            "video_id": i["video"],
            "audio_ids": [i[f"audio{n}"] for n in (1, 2, 3)],
        },
        "image_ids",
        "at most 12 inputs in all",
        id="thirteen-inputs",
    ),
]


def assert_nothing_held(user, before: int) -> None:
    user.refresh_from_db()
    assert balance(user) == before
    assert Generation.objects.count() == 0 and GenerationInput.objects.count() == 0
    assert not CreditEntry.objects.filter(kind="charge").exists()


@pytest.mark.parametrize(("inputs", "field", "message"), RULES)
def test_every_input_rule_from_the_api(alice, alice_api, ids, inputs, field, message):
    response = alice_api.post("/api/v1/generations", {"prompt": "a kite", **inputs(ids)})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in error["fields"] and any(message in m for m in error["fields"][field]), error
    assert_nothing_held(alice, 10_000)


def _form_fields(inputs: dict) -> dict:
    data = {"prompt": "a kite", "idempotency_key": "k"}
    for name, value in inputs.items():
        data[name] = "1" if value is True else value
    return data


@pytest.mark.parametrize(("inputs", "field", "message"), RULES)
def test_every_input_rule_from_the_web_form_in_the_same_words(alice, ids, inputs, field, message):
    client = Client()
    client.force_login(alice)
    response = client.post("/generate/", _form_fields(inputs(ids)))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="input-errors"' in html
    assert message in html.replace("&quot;", '"').replace("&#x27;", "'")
    assert_nothing_held(alice, 10_000)


def test_two_videos_ticked_without_scripting_are_refused(alice, ids):
    other = str(row(alice, "video", seconds=Decimal(3)).pk)
    client = Client()
    client.force_login(alice)
    response = client.post(
        "/generate/", {"prompt": "x", "idempotency_key": "k", "video_id": [ids["video"], other]}
    )
    assert "Use one reference video at most." in response.content.decode()
    assert_nothing_held(alice, 10_000)


def test_an_id_that_is_no_uuid_is_named_by_the_api(alice_api, ids):
    response = alice_api.post("/api/v1/generations", {"prompt": "a kite", "image_ids": ["../etc/passwd"]})
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["image_ids"]


@pytest.mark.parametrize(
    ("inputs", "field"),
    [
        (lambda i: {"image_ids": [1, 2]}, "image_ids"),
        (lambda i: {"image_ids": [i["image1"]], "audio_ids": [None]}, "audio_ids"),
    ],
)
def test_an_id_that_is_no_string_is_named_by_its_field(alice, alice_api, ids, inputs, field):
    # `fields` names the body's field (CONTRACT §4b), not a path into it such as "image_ids.0".
    response = alice_api.post("/api/v1/generations", {"prompt": "a kite", **inputs(ids)})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert list(error["fields"]) == [field]
    assert error["message"] == error["fields"][field][0] and "must be a string" in error["message"]
    assert_nothing_held(alice, 10_000)


def test_an_empty_list_or_null_is_the_same_as_leaving_it_out(alice_api, ids):
    response = alice_api.post(
        "/api/v1/generations",
        {"prompt": "a kite", "image_ids": [], "video_id": None, "audio_ids": None, "first_last_frame": None},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["model"], body["image_ids"], body["video_id"], body["audio_ids"]) == (
        "text-to-video",
        [],
        None,
        [],
    )
    assert body["cost_cents"] == 120


# --- The model and the price follow from the inputs ----------------------------------------------------


def test_images_make_it_image_to_video_at_the_text_price(alice, alice_api, ids):
    chosen = [ids["image3"], ids["image1"], ids["image3"]]  # in order, and one picture may come back
    response = alice_api.post(
        "/api/v1/generations",
        {
            "prompt": "a kite",
            "image_ids": chosen,
            "audio_ids": [ids["audio2"]],
            "mode": "fast",
            "duration": 6,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["model"] == "image-to-video" and body["cost_cents"] == 120
    assert body["image_ids"] == chosen and body["audio_ids"] == [ids["audio2"]] and body["video_id"] is None
    assert body["first_last_frame"] is False
    generation = Generation.objects.get(pk=body["id"])
    assert (generation.model, generation.input_seconds, generation.cents_per_second) == (
        "image-to-video",
        0,
        20,
    )
    assert alice_api.get(f"/api/v1/generations/{generation.pk}").json() == body
    # Using an upload counts as using it: the sweeper keeps it another 30 days.
    assert Upload.objects.get(pk=ids["image3"]).last_used_at is not None


def test_a_first_and_last_frame_takes_one_or_two_images_and_is_echoed(alice_api, ids):
    response = alice_api.post(
        "/api/v1/generations",
        {
            "prompt": "sunrise to sunset",
            "image_ids": images(ids, 2),
            "first_last_frame": True,
            "aspect_ratio": "1:1",
        },
    )
    assert response.status_code == 201
    assert response.json()["first_last_frame"] is True and response.json()["model"] == "image-to-video"


@pytest.mark.parametrize(("mode", "cost"), [("std", 202), ("fast", 168)])
def test_a_video_makes_it_omni_reference_priced_on_input_and_output_seconds(
    alice, alice_api, ids, mode, cost
):
    """(ceil(6.2) + 5) * 16.8 = 201.6, rounded up to 202; * 14 = 168."""
    response = alice_api.post(
        "/api/v1/generations",
        {
            "prompt": "restyle it",
            "video_id": ids["video"],
            "image_ids": images(ids, 1),
            "mode": mode,
            "duration": 5,
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["model"] == "omni-reference" and body["video_id"] == ids["video"]
    assert body["cost_cents"] == cost
    generation = Generation.objects.get(pk=body["id"])
    assert generation.input_seconds == 7
    assert generation.cents_per_second == (Decimal("16.8") if mode == "std" else Decimal(14))
    charge = CreditEntry.objects.get(reference=generation.ledger_reference)
    assert charge.amount_cents == -cost and "reference video" in charge.description
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - cost


def test_one_quote_for_every_model_in_exact_decimals(settings):
    assert quote("std", 5).cost_cents == 120
    assert quote("fast", 15, model="image-to-video").cost_cents == 300
    # 16.8 * 5 is 84 exactly; in floats it is 84.00000000000001, and rounding up would make it 85.
    assert quote("std", 5, model=OMNI_REFERENCE).cost_cents == 84
    assert quote("std", 4, model=OMNI_REFERENCE, input_seconds=2).cost_cents == 101  # 100.8
    assert quote("fast", 15, model=OMNI_REFERENCE, input_seconds=15).cost_cents == 420
    settings.PRICE_OMNI_STD_CENTS_PER_SECOND = Decimal("16.001")
    assert quote("std", 4, model=OMNI_REFERENCE).cost_cents == 65  # 64.004, rounded up
    with pytest.raises(ValueError):
        quote("std", 5, input_seconds=3)  # only omni-reference bills input seconds


@pytest.mark.parametrize("value", ["lots", "-1", "16.8001", "NaN", "Infinity"])
def test_a_bad_omni_rate_stops_the_process_at_start(monkeypatch, value):
    from seedance_site.env import env_decimal

    monkeypatch.setenv("PRICE_OMNI_STD_CENTS_PER_SECOND", value)
    with pytest.raises(ImproperlyConfigured, match="PRICE_OMNI_STD_CENTS_PER_SECOND"):
        env_decimal("PRICE_OMNI_STD_CENTS_PER_SECOND", "16.8")


def test_the_generate_page_quotes_a_reference_video_by_its_length(alice, ids):
    client = Client()
    client.force_login(alice)
    html = client.get(f"/generate/?video_id={ids['video']}&image_ids={ids['image1']}").content.decode()
    assert "(7 s reference + 5 s) × $0.168 = $2.02 · balance after: $97.98" in html
    assert '"omni-reference": {"std": 16800, "fast": 14000}' in html  # the page's script: exact too
    assert "Reference video" in html
    assert f'name="video_id" value="{ids["video"]}" checked' in html
    # Another user's upload in the query is not offered, not chosen, and not priced.
    html = client.get(f"/generate/?video_id={ids['bobs_image']}").content.decode()
    assert ids["bobs_image"] not in html and "5 s × $0.24 = $1.20" in html


# --- The create call ---------------------------------------------------------------------------------


def test_the_create_call_carries_each_models_args():
    base = {"prompt": "p", "mode": "fast", "duration": 6, "aspect_ratio": "9:16"}
    assert shortapi.job_args(**base) == base
    assert shortapi.job_args(**base, model="image-to-video", image_urls=["i1", "i2"], audio_urls=["a1"]) == {
        **base,
        "image_urls": ["i1", "i2"],
        "audio_urls": ["a1"],
        "is_first_last_frame": False,
    }
    first_last = shortapi.job_args(**base, model="image-to-video", image_urls=["i1"], first_last_frame=True)
    assert first_last == {
        "prompt": "p",
        "mode": "fast",
        "duration": 6,
        "image_urls": ["i1"],
        "is_first_last_frame": True,
    }
    assert shortapi.job_args(**base, model="omni-reference", video_url="v", image_urls=["i1"]) == {
        **base,
        "video_url": "v",
        "image_urls": ["i1"],
    }
    assert shortapi.MODEL_IDS["omni-reference"] == "bytedance/seedance-2.0/omni-reference"


# --- The links the provider fetches inputs by ----------------------------------------------------------


@pytest.fixture
def real_upload(alice, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.SITE_URL = "http://testserver"
    path = media.picture(tmp_path / "photo.jpg", (640, 480))
    return upload_from_file(user=alice, path=str(path), original_name="photo.jpg")


def test_an_inputs_link_is_signed_expiring_and_serves_the_file_to_anyone_holding_it(
    alice, alice_api, real_upload, settings
):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"
    body = alice_api.post("/api/v1/generations", {"prompt": "x", "image_ids": [str(real_upload.pk)]}).json()
    generation = Generation.objects.get(pk=body["id"])
    (url,) = generation_input_urls(generation)["image"]
    assert url.startswith("http://testserver/inputs/") and url.endswith(".jpg")
    assert generation_input_urls(generation)["image"] == [url]  # the same link every time it is built
    path = url.removeprefix("http://testserver")
    response = Client().get(path)  # no session, no token: the link is the key
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content) == Path(real_upload.file.path).read_bytes()
    token = path.removeprefix("/inputs/").removesuffix(".jpg")
    upload_id, stamp, signature = token.split(":")
    forged = [
        f"/inputs/{upload_id}:{stamp}:{'A' * len(signature)}.jpg",  # a guessed signature
        f"/inputs/{uuid.uuid4()}:{stamp}:{signature}.jpg",  # another upload under the same signature
        f"/inputs/{token}.png",  # another extension
        f"/uploads/{upload_id}/file",  # the owner's own preview, without a session
    ]
    for other in forged:
        assert Client().get(other).status_code == 404, other
    with time_machine.travel(timezone.now() + timedelta(hours=24)):
        assert Client().get(path).status_code == 200  # at least a day (CONTRACT §4b)
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.INPUT_URL_MAX_AGE_SECONDS + 60)):
        assert Client().get(path).status_code == 404


# --- Keeping and removing ---------------------------------------------------------------------------


def test_a_used_upload_deleted_by_its_owner_stays_in_the_generations_record(
    alice, alice_api, real_upload, settings, django_capture_on_commit_callbacks
):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"
    body = alice_api.post("/api/v1/generations", {"prompt": "x", "image_ids": [str(real_upload.pk)]}).json()
    generation = Generation.objects.get(pk=body["id"])
    Generation.objects.filter(pk=generation.pk).update(status="failed", finished_at=timezone.now())
    client = Client()
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/uploads/{real_upload.pk}/delete/").status_code == 302
    # Gone for its owner: not offered, 404 in the API, refused as an input…
    assert alice_api.get(f"/api/v1/uploads/{real_upload.pk}").status_code == 404
    refused = alice_api.post("/api/v1/generations", {"prompt": "y", "image_ids": [str(real_upload.pk)]})
    assert refused.status_code == 400 and "image_ids" in refused.json()["error"]["fields"]
    # …but the generation still says what it was made from, and its page still shows it.
    assert alice_api.get(f"/api/v1/generations/{generation.pk}").json()["image_ids"] == [str(real_upload.pk)]
    page = client.get(f"/generations/{generation.pk}/").content.decode()
    assert f"/uploads/{real_upload.pk}/thumb.jpg" in page and "deleted from your uploads" in page
    assert client.get(f"/uploads/{real_upload.pk}/thumb.jpg").status_code == 200
    file = Path(real_upload.file.path)
    assert uploads_sweep() == [] and file.exists()  # a visible generation shows it
    # Once the generation is deleted too, the sweeper removes the file; the row stays for the audit.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/generations/{generation.pk}/delete/")
    assert uploads_sweep() == [f"upload {real_upload.pk}: file removed (no visible generation shows it)"]
    assert not file.exists()
    kept = Upload.objects.get(pk=real_upload.pk)
    assert kept.file.name == "" and kept.deleted_at is not None and kept.size_bytes > 0
    assert GenerationInput.objects.filter(upload=kept).count() == 1


def test_the_sweeper_removes_uploads_nobody_used_for_30_days(
    alice, real_upload, django_capture_on_commit_callbacks
):
    used = row(alice, "image")
    Upload.objects.filter(pk=used.pk).update(last_used_at=timezone.now() + timedelta(days=20))
    file = Path(real_upload.file.path)
    with time_machine.travel(timezone.now() + timedelta(days=29)):
        assert uploads_sweep() == []
    with (
        time_machine.travel(timezone.now() + timedelta(days=31)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        lines = uploads_sweep()
    assert lines == [f"upload {real_upload.pk} unused for 30 days: deleted"]
    assert not Upload.objects.filter(pk=real_upload.pk).exists() and not file.exists()
    assert Upload.objects.filter(pk=used.pk, deleted_at__isnull=True).exists()  # used 11 days before


def test_an_input_deleted_while_the_form_was_sent_is_refused_cleanly(alice, ids):
    from generations.forms import GenerationForm
    from generations.services import InputGone, generation_create

    form = GenerationForm({"prompt": "x", "image_ids": [ids["image1"]]}, user=alice)
    assert form.is_valid()
    Upload.objects.filter(pk=ids["image1"]).update(deleted_at=timezone.now())  # another tab deleted it
    with pytest.raises(InputGone):
        generation_create(user=alice, **form.cleaned_data)
    assert_nothing_held(alice, 10_000)


def test_the_owners_gallery_tiles_show_the_inputs_and_public_pages_do_not(
    alice, alice_api, real_upload, settings
):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"
    body = alice_api.post("/api/v1/generations", {"prompt": "x", "image_ids": [str(real_upload.pk)]}).json()
    client = Client()
    client.force_login(alice)
    assert f"/uploads/{real_upload.pk}/thumb.jpg" in client.get("/gallery/").content.decode()
    Generation.objects.filter(pk=body["id"]).update(
        status="succeeded", shared=True, share_slug="abc", video="v.mp4"
    )
    for path in ("/explore/", "/v/abc/"):
        assert f"/uploads/{real_upload.pk}" not in Client().get(path).content.decode(), path


def test_another_user_cannot_reach_an_upload_through_a_generation(bob, real_upload):
    client = Client()
    client.force_login(make_user("dave"))
    assert client.get(f"/uploads/{real_upload.pk}/file").status_code == 404
    client.force_login(bob)
    assert client.get(f"/uploads/{real_upload.pk}/thumb.jpg").status_code == 404
