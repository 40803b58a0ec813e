"""The monthly spend limit (CONTRACT §4d, §5b): charges less refunds in the calendar month (UTC),
read from the ledger; a submit past it is 402 `spend_limit_reached`, after 429 and before
`insufficient_credits`, leaving nothing behind; checked under the submit lock."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client

from accounts.billing.audit import audit_mismatches
from accounts.models import AccountSettings, CreditEntry
from accounts.preferences import account_set_spend_limit
from accounts.services import api_token_create
from accounts.spending import spent_this_month_cents
from generations.models import Generation
from tests.factories import ApiClient, api_for, balance, make_user, race

pytestmark = pytest.mark.django_db

FOX = {"prompt": "A red fox in fresh snow"}  # 5 s std: $1.20


@pytest.fixture(autouse=True)
def upstream(settings):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"  # jobs are only queued
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content
    return response.json()["error"]


def test_reaching_the_limit_exactly_is_allowed_and_one_cent_past_it_is_not(alice, alice_api):
    assert alice_api.patch("/api/v1/account", {"monthly_spend_limit_cents": 240}).status_code == 200
    assert alice_api.post("/api/v1/generations", FOX).status_code == 201
    assert alice_api.post("/api/v1/generations", FOX).status_code == 201  # 240 of 240
    account = alice_api.get("/api/v1/account").json()
    assert (account["monthly_spend_limit_cents"], account["spent_this_month_cents"]) == (240, 240)

    entries = CreditEntry.objects.count()
    response = alice_api.post("/api/v1/generations", FOX, headers={"Idempotency-Key": "third"})
    error = error_of(response, 402)
    assert error["code"] == "spend_limit_reached"
    assert error["message"] == (
        "This video costs $1.20; you have spent $2.40 of your $2.40 monthly limit this month. "
        "Raise the limit on your account page."
    )
    # Nothing held or stored, and the key is not used up.
    assert (Generation.objects.count(), CreditEntry.objects.count()) == (2, entries)
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - 240
    account_set_spend_limit(user=alice, limit_cents=241)
    assert alice_api.post("/api/v1/generations", FOX, headers={"Idempotency-Key": "third"}).status_code == 402
    account_set_spend_limit(user=alice, limit_cents=360)
    assert alice_api.post("/api/v1/generations", FOX, headers={"Idempotency-Key": "third"}).status_code == 201
    assert audit_mismatches() == []


def test_refunds_give_the_room_back(alice, alice_api):
    account_set_spend_limit(user=alice, limit_cents=120)
    first = alice_api.post("/api/v1/generations", FOX).json()
    assert error_of(alice_api.post("/api/v1/generations", FOX), 402)["code"] == "spend_limit_reached"
    assert alice_api.post(f"/api/v1/generations/{first['id']}/cancel").status_code == 200
    assert spent_this_month_cents(user_id=alice.pk) == 0
    assert alice_api.post("/api/v1/generations", FOX).status_code == 201


def test_the_order_is_429_then_the_spend_limit_then_the_balance(settings, alice, carol):
    carol_api = api_for(carol)  # no credits at all
    account_set_spend_limit(user=carol, limit_cents=100)
    assert error_of(carol_api.post("/api/v1/generations", FOX), 402)["code"] == "spend_limit_reached"
    account_set_spend_limit(user=carol, limit_cents=None)
    assert error_of(carol_api.post("/api/v1/generations", FOX), 402)["code"] == "insufficient_credits"
    account_set_spend_limit(user=carol, limit_cents=100)
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 1
    Generation.objects.create(
        user=carol,
        prompt="x",
        mode="std",
        duration=5,
        aspect_ratio="16:9",
        cost_cents=0,
        cents_per_second=24,
        deadline_at=datetime(2099, 1, 1, tzinfo=UTC),
    )
    assert error_of(carol_api.post("/api/v1/generations", FOX), 429)["code"] == "rate_limited"
    # And 400 before all of them.
    assert error_of(carol_api.post("/api/v1/generations", {"prompt": ""}), 400)["code"] == "invalid_request"


def test_a_limit_of_zero_stops_every_video(alice, alice_api):
    account_set_spend_limit(user=alice, limit_cents=0)
    assert error_of(alice_api.post("/api/v1/generations", FOX), 402)["code"] == "spend_limit_reached"


def test_each_charge_and_refund_counts_in_the_month_it_happens(alice):
    api = api_for(alice)
    account_set_spend_limit(user=alice, limit_cents=240)
    with time_machine.travel(datetime(2027, 1, 31, 23, 59, 30, tzinfo=UTC), tick=False):
        held = api.post("/api/v1/generations", FOX).json()
        assert api.post("/api/v1/generations", FOX).status_code == 201
        assert error_of(api.post("/api/v1/generations", FOX), 402)["code"] == "spend_limit_reached"
        assert api.get("/api/v1/account").json()["spent_this_month_cents"] == 240
    with time_machine.travel(datetime(2027, 1, 31, 23, 59, 59, 999999, tzinfo=UTC), tick=False):
        assert error_of(api.post("/api/v1/generations", FOX), 402)["code"] == "spend_limit_reached"
    with time_machine.travel(datetime(2027, 2, 1, 0, 0, 0, tzinfo=UTC), tick=False):
        # A new month (UTC): January's spending no longer counts.
        assert api.get("/api/v1/account").json()["spent_this_month_cents"] == 0
        # January's video refunded in February: the refund counts in February.
        assert api.post(f"/api/v1/generations/{held['id']}/cancel").status_code == 200
        assert api.get("/api/v1/account").json()["spent_this_month_cents"] == -120
        for _ in range(3):
            assert api.post("/api/v1/generations", FOX).status_code == 201
        assert api.get("/api/v1/account").json()["spent_this_month_cents"] == 240
        assert error_of(api.post("/api/v1/generations", FOX), 402)["code"] == "spend_limit_reached"
    with time_machine.travel(datetime(2027, 12, 31, 23, 0, tzinfo=UTC), tick=False):
        assert spent_this_month_cents(user_id=alice.pk) == 0
        assert api.post("/api/v1/generations", FOX).status_code == 201
    with time_machine.travel(datetime(2028, 1, 1, 0, 0, tzinfo=UTC) - timedelta(microseconds=1), tick=False):
        assert spent_this_month_cents(user_id=alice.pk) == 120
    with time_machine.travel(datetime(2028, 1, 1, tzinfo=UTC), tick=False):
        assert spent_this_month_cents(user_id=alice.pk) == 0


@pytest.mark.parametrize(
    "value", [-1, "100", 1.5, True, 2**63], ids=["negative", "string", "float", "boolean", "too-big"]
)
def test_patch_refuses_a_limit_that_is_not_whole_cents_from_zero(alice, alice_api, value):
    error = error_of(alice_api.patch("/api/v1/account", {"monthly_spend_limit_cents": value}), 400)
    assert error["code"] == "invalid_request" and list(error["fields"]) == ["monthly_spend_limit_cents"]
    assert not AccountSettings.objects.filter(monthly_spend_limit_cents__isnull=False).exists()


def test_patch_sets_and_removes_the_limit_and_answers_the_account(alice, alice_api):
    response = alice_api.patch("/api/v1/account", {"monthly_spend_limit_cents": 5000, "unknown": 1})
    assert response.status_code == 200
    body = response.json()
    assert (body["username"], body["monthly_spend_limit_cents"], body["spent_this_month_cents"]) == (
        "alice",
        5000,
        0,
    )
    assert body["webhook_secret"].startswith("whsec_")
    # Left out: unchanged. Null: no limit.
    assert alice_api.patch("/api/v1/account", {}).json()["monthly_spend_limit_cents"] == 5000
    assert (
        alice_api.patch("/api/v1/account", {"monthly_spend_limit_cents": None}).json()[
            "monthly_spend_limit_cents"
        ]
        is None
    )
    assert error_of(alice_api.patch("/api/v1/account", [1]), 400)["code"] == "invalid_request"
    assert ApiClient(None).patch("/api/v1/account", {"monthly_spend_limit_cents": 1}).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_eight_submissions_racing_a_spend_limit_hold_only_what_it_allows():
    """Eight threads at once, each with room for one more under a limit of three videos: the row lock
    makes each read the month's spending only after the one before has committed its charge."""
    user = make_user("bob", 100_000)
    account_set_spend_limit(user=user, limit_cents=360)
    _, token = api_token_create(user=user, name="t")

    def submit(i: int) -> int:
        response = ApiClient(token).post("/api/v1/generations", {"prompt": f"race {i}"})
        assert response.status_code in (201, 402), response.content
        if response.status_code == 402:
            assert response.json()["error"]["code"] == "spend_limit_reached"
        return response.status_code

    statuses = race(8, submit)
    assert sorted(statuses) == [201] * 3 + [402] * 5
    assert Generation.objects.count() == 3
    assert spent_this_month_cents(user_id=user.pk) == 360
    user.refresh_from_db()
    assert balance(user) == 100_000 - 360
    assert audit_mismatches() == []


def test_the_account_page_sets_the_limit_and_the_generate_page_says_when_it_is_reached(alice):
    client = Client()
    client.force_login(alice)
    page = client.get("/accounts/").content.decode()
    assert "Monthly spend limit" in page and "Spent in" in page

    for bad in ("-5", "12.345", "lots"):
        assert client.post("/accounts/spend-limit/", {"limit": bad}).status_code == 400
    assert not AccountSettings.objects.filter(monthly_spend_limit_cents__isnull=False).exists()
    assert client.post("/accounts/spend-limit/", {"limit": "2.40"}).status_code == 302
    assert AccountSettings.objects.get(user=alice).monthly_spend_limit_cents == 240

    form = {"prompt": "A fox", "mode": "std", "duration": "5", "aspect_ratio": "16:9"}
    for key in ("k1", "k2"):
        assert client.post("/generate/", {**form, "idempotency_key": key}).status_code == 302
    response = client.post("/generate/", {**form, "idempotency_key": "k3"})
    assert response.status_code == 200
    assert "past your monthly spend limit of $2.40" in response.content.decode()
    assert Generation.objects.count() == 2
    page = client.get("/accounts/").content.decode()
    assert "limit reached" in page and "$2.40</strong> of $2.40" in page

    assert client.post("/accounts/spend-limit/", {"limit": ""}).status_code == 302
    assert AccountSettings.objects.get(user=alice).monthly_spend_limit_cents is None
