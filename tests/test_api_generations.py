"""The generations API's contract (CONTRACT §4, §5b): shapes, validation, order of checks,
idempotency, pagination and privacy. Nothing here needs the upstream to answer."""

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import CreditEntry
from generations.models import Generation
from tests.factories import api_for, balance, generation_row, make_user, with_files

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def upstream_key(settings):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"  # nothing is called: jobs are only queued


def fields_of(response):
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and error["message"]
    return error["fields"]


def test_create_returns_201_and_the_generation_shape(alice_api, alice):
    response = alice_api.post("/api/v1/generations", {"prompt": "  a heron at dawn  ", "unknown": 1})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id",
        "status",
        "prompt",
        "mode",
        "duration",
        "aspect_ratio",
        "cost_cents",
        "video_url",
        "error",
        "created_at",
        "finished_at",
        "model",
        "image_ids",
        "video_id",
        "audio_ids",
        "first_last_frame",
        "webhook_url",
        # Extensions after the contract's fields (issue 15): who may watch it, and its public link.
        "visibility",
        "share_url",
    }
    assert body["status"] == "queued"
    assert (body["prompt"], body["mode"], body["duration"], body["aspect_ratio"]) == (
        "a heron at dawn",
        "std",
        5,
        "16:9",
    )
    assert body["cost_cents"] == 120
    assert body["video_url"] is None and body["error"] is None and body["finished_at"] is None
    assert body["model"] == "text-to-video"
    inputs = (body["image_ids"], body["video_id"], body["audio_ids"], body["first_last_frame"])
    assert inputs == ([], None, [], False)
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - 120


def test_the_video_url_is_built_from_site_url_whatever_host_the_request_named(
    alice, alice_api, settings, media
):
    # CONTRACT §2: SITE_URL builds the absolute video URLs; only a list's `next` follows the request.
    settings.SITE_URL = "http://127.0.0.1:8000"
    generation = with_files(generation_row(alice))
    # The link's token carries the second it was signed in: hold the clock so both reads sign alike.
    with time_machine.travel(timezone.now(), tick=False):
        for host in ("testserver", "localhost:8000"):
            one = alice_api.get(f"/api/v1/generations/{generation.pk}", headers={"Host": host}).json()
            listed = alice_api.get("/api/v1/generations", headers={"Host": host}).json()["results"][0]
            assert one["video_url"].startswith("http://127.0.0.1:8000/videos/"), one["video_url"]
            assert listed["video_url"] == one["video_url"]
    # A plain GET of that URL, no token and no session, is the MP4.
    video = Client().get(one["video_url"])
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"


@pytest.mark.parametrize(
    ("mode", "duration", "cost"), [("std", 4, 96), ("std", 15, 360), ("fast", 4, 80), ("fast", 15, 300)]
)
def test_the_price_is_exact(alice_api, mode, duration, cost):
    response = alice_api.post("/api/v1/generations", {"prompt": "x", "mode": mode, "duration": duration})
    assert response.json()["cost_cents"] == cost


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x" * 2001}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "x", "duration": "5"}, "duration"),
        ({"prompt": "x", "duration": 5.0}, "duration"),
        ({"prompt": "x", "duration": True}, "duration"),
        ({"prompt": "x", "duration": 3}, "duration"),
        ({"prompt": "x", "duration": 16}, "duration"),
        ({"prompt": "x", "mode": "turbo"}, "mode"),
        ({"prompt": "x", "mode": 1}, "mode"),
        ({"prompt": "x", "aspect_ratio": "2:1"}, "aspect_ratio"),
    ],
)
def test_bad_input_is_400_with_fields_and_changes_nothing(alice_api, body, field):
    fields = fields_of(alice_api.post("/api/v1/generations", body))
    assert field in fields and fields[field][0]
    assert not Generation.objects.exists() and CreditEntry.objects.filter(kind="charge").count() == 0


def test_a_prompt_of_exactly_2000_characters_is_fine(alice_api):
    assert alice_api.post("/api/v1/generations", {"prompt": "y" * 2000}).status_code == 201


def test_a_body_that_is_not_a_json_object_is_400(alice_api):
    response = alice_api.client.post(
        "/api/v1/generations", data="[1,2]", content_type="application/json", headers=alice_api.headers
    )
    assert response.status_code == 400
    response = alice_api.client.post(
        "/api/v1/generations", data="{nope", content_type="application/json", headers=alice_api.headers
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_request"


def test_checks_run_in_the_contract_order(settings, carol):
    api = api_for(carol)  # carol has no credits
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 1
    # 400 before 503
    settings.SHORTAPI_KEY = ""
    assert api.post("/api/v1/generations", {"duration": 99}).status_code == 400
    response = api.post("/api/v1/generations", {"prompt": "x"})
    assert response.status_code == 503 and response.json()["error"]["code"] == "upstream_unconfigured"
    settings.SHORTAPI_KEY = "configured"
    # 429 before 402: carol is at her limit and broke
    Generation.objects.create(
        user=carol,
        prompt="p",
        mode="std",
        duration=4,
        aspect_ratio="16:9",
        cost_cents=0,
        cents_per_second=24,
        deadline_at="2099-01-01T00:00Z",
    )
    assert api.post("/api/v1/generations", {"prompt": "x"}).status_code == 429
    Generation.objects.all().delete()
    assert api.post("/api/v1/generations", {"prompt": "x"}).status_code == 402
    assert not Generation.objects.exists()


def test_an_idempotency_key_returns_the_first_generation_and_charges_once(alice_api, alice):
    headers = {"Idempotency-Key": "order-42"}
    first = alice_api.post("/api/v1/generations", {"prompt": "a"}, headers=headers)
    again = alice_api.post(
        "/api/v1/generations", {"prompt": "something else", "duration": 99}, headers=headers
    )
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["prompt"] == "a"
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - 120
    assert CreditEntry.objects.filter(kind="charge").count() == 1


def test_idempotency_keys_are_per_user(alice_api, bob_api):
    headers = {"Idempotency-Key": "same"}
    a = alice_api.post("/api/v1/generations", {"prompt": "a"}, headers=headers).json()
    b = bob_api.post("/api/v1/generations", {"prompt": "b"}, headers=headers).json()
    assert a["id"] != b["id"]


def test_a_refused_request_does_not_use_up_its_key(alice_api):
    headers = {"Idempotency-Key": "retry-me"}
    assert alice_api.post("/api/v1/generations", {"prompt": ""}, headers=headers).status_code == 400
    assert alice_api.post("/api/v1/generations", {"prompt": "ok"}, headers=headers).status_code == 201


def test_an_idempotency_key_over_200_characters_is_400(alice_api):
    fields = fields_of(
        alice_api.post("/api/v1/generations", {"prompt": "a"}, headers={"Idempotency-Key": "k" * 201})
    )
    assert "Idempotency-Key" in fields
    assert (
        alice_api.post(
            "/api/v1/generations", {"prompt": "a"}, headers={"Idempotency-Key": "k" * 200}
        ).status_code
        == 201
    )


def test_another_users_generation_is_404_like_an_unknown_one(alice_api, bob_api):
    gen_id = alice_api.post("/api/v1/generations", {"prompt": "mine"}).json()["id"]
    for path in (
        f"/api/v1/generations/{gen_id}",
        "/api/v1/generations/00000000-0000-0000-0000-000000000000",
        "/api/v1/generations/not-a-uuid",
    ):
        response = bob_api.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert alice_api.get(f"/api/v1/generations/{gen_id}").status_code == 200
    assert bob_api.get("/api/v1/generations").json()["results"] == []


def test_the_list_pages_newest_first_with_absolute_next_urls(settings):
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100
    user = make_user("erin", 100_000)
    api = api_for(user)
    ids = [api.post("/api/v1/generations", {"prompt": f"p{i}"}).json()["id"] for i in range(25)]
    page = api.get("/api/v1/generations").json()
    assert [g["id"] for g in page["results"]] == ids[::-1][:20]
    assert page["next"].startswith("http://testserver/api/v1/generations?")
    page2 = api.get(page["next"].removeprefix("http://testserver")).json()
    assert [g["id"] for g in page2["results"]] == ids[::-1][20:]
    assert page2["next"] is None
    small = api.get("/api/v1/generations?limit=10").json()
    assert len(small["results"]) == 10 and "limit=10" in small["next"]


def test_the_list_filters_by_status(alice_api, alice):
    alice_api.post("/api/v1/generations", {"prompt": "a"})
    Generation.objects.filter(user=alice).update(status="fetching")
    assert len(alice_api.get("/api/v1/generations?status=running").json()["results"]) == 1
    assert alice_api.get("/api/v1/generations?status=queued").json()["results"] == []


@pytest.mark.parametrize("query", ["status=done", "limit=0", "limit=101", "limit=x", "cursor=%%%"])
def test_bad_list_parameters_are_400(alice_api, query):
    fields_of(alice_api.get(f"/api/v1/generations?{query}"))


@pytest.mark.parametrize("limit", ["0", "101", "99999999999999999999", "-1", "x", "1.5"])
def test_every_bad_page_size_is_told_in_the_same_words(alice_api, limit):
    fields = fields_of(alice_api.get(f"/api/v1/generations?limit={limit}"))
    assert fields == {"limit": ["The page size, limit, must be a whole number from 1 to 100."]}


@pytest.mark.parametrize("status", ["done", "SUCCEEDED", "cancelled"])
def test_an_unknown_status_is_told_with_the_ones_there_are(alice_api, status):
    fields = fields_of(alice_api.get(f"/api/v1/generations?status={status}"))
    assert fields == {"status": ["Status must be one of queued, running, succeeded or failed."]}


@time_machine.travel("2026-11-29 12:00:10Z", tick=False)  # one rate-limit window
def test_submitting_too_fast_is_429_and_holds_nothing(alice_api, alice, settings):
    settings.SUBMIT_RATE_LIMIT = "2/m"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100
    assert alice_api.post("/api/v1/generations", {"prompt": "a"}).status_code == 201
    assert alice_api.post("/api/v1/generations", {"prompt": "b"}).status_code == 201
    response = alice_api.post("/api/v1/generations", {"prompt": "c"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert Generation.objects.count() == 2
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - 2 * 120


@time_machine.travel("2026-11-29 12:00:10Z", tick=False)  # one rate-limit window
def test_the_api_is_rate_limited_per_user(alice_api, bob_api, settings):
    settings.API_USER_RATE_LIMIT = "3/m"
    assert [alice_api.get("/api/v1/account").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert alice_api.get("/api/v1/account").json()["error"]["code"] == "rate_limited"
    assert bob_api.get("/api/v1/account").status_code == 200


@time_machine.travel("2026-11-29 12:00:10Z", tick=False)  # one rate-limit window
def test_the_api_is_rate_limited_per_address(settings):
    settings.API_IP_RATE_LIMIT = "2/m"
    from tests.factories import ApiClient

    anonymous = ApiClient(None)
    assert [anonymous.get("/api/v1/pricing").status_code for _ in range(3)] == [200, 200, 429]


def test_a_generation_is_the_same_bytes_as_before_the_api_moved_to_ninja(alice_api, alice):
    """Key order, types, nulls, escapes and timestamps exactly as the hand-written API wrote them."""
    from datetime import UTC, datetime
    from uuid import UUID

    generation = Generation.objects.create(
        id=UUID("1b4e28ba-2fa1-41d2-883f-0016d3cca427"),
        user=alice,
        prompt="a “fox”",
        mode="fast",
        duration=6,
        aspect_ratio="9:16",
        cost_cents=120,
        cents_per_second=20,
        status=Generation.Status.FAILED,
        error="Upstream refused the prompt.",
        deadline_at="2099-01-01T00:00Z",
    )
    Generation.objects.filter(pk=generation.pk).update(
        created_at=datetime(2026, 11, 29, 12, 0, 10, 123456, tzinfo=UTC),
        finished_at=datetime(2026, 11, 29, 12, 5, tzinfo=UTC),
    )
    expected = (
        b'{"id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427", "status": "failed", '
        b'"prompt": "a \\u201cfox\\u201d", "mode": "fast", "duration": 6, "aspect_ratio": "9:16", '
        b'"cost_cents": 120, "video_url": null, '
        b'"error": "Upstream refused the prompt.", "created_at": "2026-11-29T12:00:10.123456+00:00", '
        b'"finished_at": "2026-11-29T12:05:00+00:00", "model": "text-to-video", "image_ids": [], '
        b'"video_id": null, "audio_ids": [], "first_last_frame": false, "webhook_url": null, '
        b'"visibility": "private", "share_url": null}'
    )

    response = alice_api.get(f"/api/v1/generations/{generation.pk}")

    assert (response.status_code, response["Content-Type"], response.content) == (
        200,
        "application/json",
        expected,
    )
    assert alice_api.get("/api/v1/generations").content == b'{"results": [' + expected + b'], "next": null}'
