"""Uploads (CONTRACT §4b): the kind is read from the content, never the name; caps hold while the
request is read; metadata leaves before anything is stored; refusals leave nothing behind; and an
upload is its owner's alone."""

import io
import re
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.files.uploadhandler import StopUpload
from django.test import Client
from PIL import Image

from generations import probe
from generations.models import Upload
from tests import media
from tests.factories import make_user

UPLOAD_KEYS = {"id", "kind", "content_type", "bytes", "width", "height", "duration_seconds", "created_at"}


@pytest.fixture(autouse=True)
def storage(settings, tmp_path) -> dict[str, Path]:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-temp")
    (tmp_path / "upload-temp").mkdir()
    return {"media": tmp_path / "media", "temp": tmp_path / "upload-temp", "files": tmp_path / "files"}


@pytest.fixture
def files(storage) -> Path:
    storage["files"].mkdir()
    return storage["files"]


def token_client(user) -> Client:
    from accounts.services import api_token_create

    _, token = api_token_create(user=user, name="uploads")
    return Client(headers={"Authorization": f"Bearer {token}"})


def upload(client: Client, path: Path, name: str | None = None, url: str = "/api/v1/uploads", **extra):
    with path.open("rb") as handle:
        data = io.BytesIO(handle.read())
    data.name = name or path.name
    return client.post(url, {"file": data}, **extra)


def stored_files(storage) -> list[Path]:
    return [p for p in storage["media"].rglob("*") if p.is_file()]


def assert_nothing_left(storage) -> None:
    assert Upload.objects.count() == 0
    assert stored_files(storage) == []
    assert list(storage["temp"].iterdir()) == []


# --- What is taken --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("maker", "kind", "content_type", "shape"),
    [
        (lambda d: media.picture(d / "a.jpg", (800, 600)), "image", "image/jpeg", (800, 600, None)),
        (lambda d: media.picture(d / "a.png", (300, 6000)), "image", "image/png", (300, 6000, None)),
        (lambda d: media.picture(d / "a.webp", (640, 360)), "image", "image/webp", (640, 360, None)),
        (lambda d: media.video(d / "a.mp4", 2.5), "video", "video/mp4", (320, 240, 2.5)),
        (lambda d: media.video(d / "a.mov", 15), "video", "video/quicktime", (320, 240, 15.0)),
        (lambda d: media.sound(d / "a.mp3", 4), "audio", "audio/mpeg", (None, None, 4.0)),
        (lambda d: media.sound(d / "a.wav", 15), "audio", "audio/wav", (None, None, 15.0)),
        (lambda d: media.sound(d / "a.m4a", 3), "audio", "audio/mp4", (None, None, 3.0)),
    ],
    ids=["jpeg", "png-tall", "webp", "mp4", "mov-15s", "mp3", "wav-15s", "m4a"],
)
def test_each_accepted_kind_is_read_from_its_content_not_its_name(
    alice, files, storage, maker, kind, content_type, shape
):
    path = maker(files)
    # A misleading name and part type: the content decides.
    response = upload(token_client(alice), path, name="holiday.txt")
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == UPLOAD_KEYS
    width, height, seconds = shape
    assert (body["kind"], body["content_type"]) == (kind, content_type)
    assert (body["width"], body["height"]) == (width, height)
    if seconds is None:
        assert body["duration_seconds"] is None
    else:
        assert body["duration_seconds"] == pytest.approx(seconds, abs=0.15)
    row = Upload.objects.get(pk=body["id"])
    assert row.user == alice and row.size_bytes == body["bytes"] == Path(row.file.path).stat().st_size
    assert row.original_name == "holiday.txt" and "holiday" not in row.file.name
    assert (row.thumbnail.name != "") == (kind != "audio")
    assert list(storage["temp"].iterdir()) == []  # the request's temporary file is gone


def test_image_metadata_is_stripped_and_its_orientation_applied_before_storing(alice, files):
    path = media.picture(files / "phone.jpg", (640, 480), gps=True, orientation=6)
    assert b"PhoneMaker" in path.read_bytes()
    response = upload(token_client(alice), path)
    assert response.status_code == 201
    # Orientation 6: the camera was turned; the stored picture is upright, so portrait.
    assert (response.json()["width"], response.json()["height"]) == (480, 640)
    stored = Path(Upload.objects.get().file.path)
    assert b"PhoneMaker" not in stored.read_bytes()
    with Image.open(stored) as image:
        assert image.size == (480, 640)
        assert dict(image.getexif()) == {}
        assert "exif" not in image.info and "xmp" not in image.info
        # The white corner block was top-left in the sensor's frame; rotated, it is top-right.
        assert image.convert("RGB").getpixel((470, 10)) == pytest.approx((255, 255, 255), abs=8)


def test_a_videos_location_is_stripped_before_storing(alice, files):
    path = media.video(files / "clip.mp4", 3, location=True)
    located = re.compile(r"^\s+location\s*:", re.MULTILINE)
    assert located.search(media.probe(path))
    assert upload(token_client(alice), path).status_code == 201
    info = media.probe(Upload.objects.get().file.path)
    assert not located.search(info) and "Video: h264" in info and "Audio: aac" in info


# --- What is refused, and that nothing stays ----------------------------------------------------------


def _text_named_png(d: Path) -> Path:
    path = d / "notes.png"
    path.write_text("These are my notes, not a picture.\n" * 20)
    return path


def _cut(whole: Path, part: Path) -> Path:
    part.write_bytes(whole.read_bytes()[:900])
    return part


REFUSALS = [
    pytest.param(_text_named_png, "not an image, video or sound", id="text-named-png"),
    pytest.param(lambda d: media.picture(d / "tiny.png", (40, 40)), "at least 300 px", id="40x40"),
    pytest.param(lambda d: media.picture(d / "wide.png", (6001, 400)), "at most 6,000 px", id="too-wide"),
    pytest.param(lambda d: media.png_bomb(d / "bomb.png"), "too many pixels", id="image-bomb"),
    pytest.param(lambda d: media.video(d / "long.mp4", 20), "20.0 s long", id="20s-video"),
    pytest.param(lambda d: media.video(d / "short.mp4", 1), "2 to 15 seconds", id="1s-video"),
    pytest.param(lambda d: media.sound(d / "long.mp3", 16), "at most 15 seconds", id="16s-sound"),
    pytest.param(
        lambda d: _cut(media.picture(d / "whole.jpg"), d / "cut.jpg"),
        "damaged or incomplete",
        id="truncated-jpeg",
    ),
]


@pytest.mark.parametrize(("maker", "message"), REFUSALS)
def test_a_refused_file_is_a_clear_400_and_leaves_nothing_behind(alice, files, storage, maker, message):
    path = maker(files)
    response = upload(token_client(alice), path)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_upload" and message in error["message"], error
    assert_nothing_left(storage)


@pytest.mark.parametrize(("maker", "message"), REFUSALS[:5])
def test_the_studio_refuses_the_same_files_in_the_same_words(alice, files, storage, maker, message):
    client = Client()
    client.force_login(alice)
    response = upload(client, maker(files), url="/uploads/new/", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert_nothing_left(storage)


def test_a_file_over_its_cap_is_refused_while_it_is_read(alice, storage):
    """A JPEG's first bytes set the 10 MiB cap; reading stops at the chunk that passes it."""
    handler = probe.CappedUpload()
    handler.new_file("file", "big.jpg", "image/jpeg", None)
    chunk = b"\xff\xd8\xff\xe0" + b"\0" * (handler.chunk_size - 4)
    read = 0
    with pytest.raises(StopUpload) as stopped:
        for _ in range(1000):
            handler.receive_data_chunk(chunk, read)
            read += len(chunk)
    assert stopped.value.connection_reset
    assert probe.IMAGE_MAX_BYTES - handler.chunk_size <= read <= probe.IMAGE_MAX_BYTES
    assert "at most 10 MiB" in handler.refusal
    assert list(storage["temp"].iterdir()) == []
    # Through the API: the same answer, nothing kept.
    big = io.BytesIO(b"\xff\xd8\xff\xe0" + b"\0" * (probe.IMAGE_MAX_BYTES + 1))
    big.name = "big.jpg"
    response = token_client(alice).post("/api/v1/uploads", {"file": big})
    assert response.status_code == 400 and "at most 10 MiB" in response.json()["error"]["message"]
    assert_nothing_left(storage)


def test_a_body_larger_than_any_cap_is_refused_before_a_byte_is_read():
    handler = probe.CappedUpload()
    unread = io.BytesIO(b"never read")
    post, files = handler.handle_raw_input(unread, {}, probe.VIDEO_MAX_BYTES + 10**6, b"boundary")
    assert (dict(post), dict(files)) == ({}, {}) and unread.tell() == 0
    assert "too large" in handler.refusal


def test_no_file_or_two_files_is_invalid_upload(alice, files, storage):
    client = token_client(alice)
    missing = client.post("/api/v1/uploads", {"note": "hello"})
    assert missing.status_code == 400
    error = missing.json()["error"]
    assert error["code"] == "invalid_upload" and "file" in error["fields"]
    as_json = client.post("/api/v1/uploads", {"file": "x"}, content_type="application/json")
    assert as_json.status_code == 400 and as_json.json()["error"]["code"] == "invalid_upload"
    one, two = media.picture(files / "1.jpg"), media.picture(files / "2.jpg")
    with one.open("rb") as a, two.open("rb") as b:
        both = client.post("/api/v1/uploads", {"file": [a, b]})
    assert both.status_code == 400 and "one file" in both.json()["error"]["message"]
    assert both.json()["error"]["code"] == "invalid_upload"
    assert_nothing_left(storage)


@time_machine.travel("2026-11-29 12:00:10Z", tick=False)  # one rate-limit window
def test_uploads_are_rate_limited_per_user(alice, files, storage, settings):
    settings.UPLOAD_RATE_LIMIT = "2/m"
    client = token_client(alice)
    path = media.picture(files / "a.jpg")
    assert [upload(client, path).status_code for _ in range(3)] == [201, 201, 429]
    assert Upload.objects.count() == 2


def test_a_file_posted_anywhere_else_is_dropped_unread(alice, files, storage, settings):
    settings.SHORTAPI_KEY = "x"
    client = Client()
    client.force_login(alice)
    with media.picture(files / "a.jpg").open("rb") as handle:
        response = client.post("/generate/", {"prompt": "a fox", "idempotency_key": "k", "file": handle})
    assert response.status_code == 302
    assert_nothing_left(storage)


# --- Owner-only ----------------------------------------------------------------------------------------


def test_an_upload_is_its_owners_alone(alice, bob, files):
    body = upload(token_client(alice), media.picture(files / "a.jpg")).json()
    mine = token_client(alice).get(f"/api/v1/uploads/{body['id']}")
    assert mine.status_code == 200 and mine.json() == body
    for client, upload_id in (
        (token_client(bob), body["id"]),
        (token_client(alice), "00000000-0000-4000-8000-000000000000"),
        (token_client(alice), "not-a-uuid"),
    ):
        response = client.get(f"/api/v1/uploads/{upload_id}")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    # The pages' previews too: the owner sees them, nobody else does (nor anyone logged out).
    alice_web, bob_web = Client(), Client()
    alice_web.force_login(alice)
    bob_web.force_login(bob)
    for path in (f"/uploads/{body['id']}/thumb.jpg", f"/uploads/{body['id']}/file"):
        assert alice_web.get(path).status_code == 200
        assert bob_web.get(path).status_code == 404
        assert Client().get(path).status_code == 404
    assert bob_web.post(f"/uploads/{body['id']}/delete/").status_code == 404
    assert Upload.objects.filter(pk=body["id"]).exists()


def test_operators_who_may_view_uploads_see_them(alice, files):
    body = upload(token_client(alice), media.picture(files / "a.jpg")).json()
    operator = make_user("carol", is_staff=True)
    client = Client()
    client.force_login(operator)
    assert client.get(f"/uploads/{body['id']}/thumb.jpg").status_code == 404
    operator.user_permissions.add(Permission.objects.get(codename="view_upload"))
    client.force_login(operator)
    assert client.get(f"/uploads/{body['id']}/thumb.jpg").status_code == 200


# --- The studio's upload endpoint ---------------------------------------------------------------------


def test_the_studio_uploads_with_its_csrf_token_and_answers_json(alice, files, storage):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    path = media.picture(files / "a.png")
    refused = upload(client, path, url="/uploads/new/", headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert_nothing_left(storage)
    token = client.get("/generate/").cookies["csrftoken"].value
    response = upload(
        client, path, url="/uploads/new/", headers={"Accept": "application/json", "X-CSRFToken": token}
    )
    assert response.status_code == 201
    item = response.json()["upload"]
    assert item["kind"] == "image" and item["name"] == "a.png" and item["detail"] == "640 × 480"
    assert item["thumb_url"].endswith("/thumb.jpg") and item["file_url"].endswith("/file")
    # Logged out: refused, nothing kept.
    anonymous = upload(Client(), path, url="/uploads/new/", headers={"Accept": "application/json"})
    assert anonymous.status_code == 401
    assert Upload.objects.count() == 1


def test_without_scripting_an_upload_comes_back_to_the_studio_with_the_file_chosen(alice, files):
    client = Client()
    client.force_login(alice)
    with media.picture(files / "a.jpg").open("rb") as handle:
        response = client.post(
            "/uploads/new/", {"prompt": "A red kite", "mode": "fast", "duration": "6", "file": handle}
        )
    upload_id = Upload.objects.get().pk
    assert response.status_code == 302
    assert response["Location"].startswith("/generate/?prompt=A+red+kite&mode=fast&duration=6&image_ids=")
    page = client.get(response["Location"]).content.decode()
    assert f'name="image_ids" value="{upload_id}" checked' in page
    assert "5 s" not in page.split('id="quote"')[1][:80]  # the quote is for the 6 s asked for
    assert "6 s × $0.20 = $1.20" in page


def test_an_unused_upload_deleted_by_its_owner_is_gone_with_its_files(
    alice, files, storage, django_capture_on_commit_callbacks
):
    body = upload(token_client(alice), media.picture(files / "a.jpg")).json()
    client = Client()
    client.force_login(alice)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/uploads/{body['id']}/delete/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert_nothing_left(storage)
