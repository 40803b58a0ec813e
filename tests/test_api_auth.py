import base64
import json

import pytest

from accounts.services import api_token_create, api_token_revoke
from tests.factories import ApiClient

pytestmark = pytest.mark.django_db


def assert_401(response):
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]
    assert "fields" not in body["error"]


def test_missing_token_is_401():
    assert_401(ApiClient(None).get("/api/v1/account"))


def test_wrong_token_is_401(alice):
    assert_401(ApiClient("sds_not-a-real-token").get("/api/v1/account"))
    assert_401(ApiClient("garbage").get("/api/v1/account"))


def test_revoked_token_is_401(alice):
    token, plaintext = api_token_create(user=alice, name="old")
    assert ApiClient(plaintext).get("/api/v1/account").status_code == 200
    api_token_revoke(token=token)
    assert_401(ApiClient(plaintext).get("/api/v1/account"))


def test_inactive_users_token_is_401(alice):
    _, plaintext = api_token_create(user=alice, name="t")
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert_401(ApiClient(plaintext).get("/api/v1/account"))


def test_account_shows_username_balance_spend_limit_and_webhook_secret(alice_api):
    response = alice_api.get("/api/v1/account")
    assert response.status_code == 200
    body = response.json()
    secret = body.pop("webhook_secret")
    assert body == {
        "username": "alice",
        "balance_cents": 10_000,
        "monthly_spend_limit_cents": None,
        "spent_this_month_cents": 0,
    }
    # Standard Webhooks' form: "whsec_" and the padded standard base64 of at least 24 random bytes.
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert alice_api.get("/api/v1/account").json()["webhook_secret"] == secret  # made once, kept


def test_wrong_method_gets_the_error_shape(alice_api):
    response = alice_api.post("/api/v1/account", {})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_pricing_needs_no_auth_and_matches_the_contract():
    response = ApiClient(None).get("/api/v1/pricing")
    assert response.status_code == 200
    assert response.json() == {
        "currency": "usd",
        "cents_per_second": {"std": 24, "fast": 20},
        "duration": {"min": 4, "max": 15, "default": 5},
        "aspect_ratios": ["21:9", "16:9", "9:16", "4:3", "1:1", "3:4"],
        "default_aspect_ratio": "16:9",
        "default_mode": "std",
        "models": {
            "text-to-video": {"cents_per_second": {"std": 24, "fast": 20}},
            "image-to-video": {"cents_per_second": {"std": 24, "fast": 20}},
            "omni-reference": {"cents_per_second": {"std": 16.8, "fast": 14}},
        },
    }
    # Exactly as CONTRACT §4b writes them: 14, not 14.0.
    assert b'"omni-reference": {"cents_per_second": {"std": 16.8, "fast": 14}}' in response.content


def test_an_unknown_api_path_is_404_in_the_error_shape(alice_api):
    response = alice_api.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_500_handler_answers_the_api_in_its_shape_and_pages_in_html(rf):
    from seedance_site.views import server_error

    api = server_error(rf.get("/api/v1/generations"))
    assert api.status_code == 500
    assert json.loads(api.content)["error"]["code"] == "server_error"
    page = server_error(rf.get("/gallery/"))
    assert page.status_code == 500
    assert b"Something went wrong" in page.content and b"Traceback" not in page.content


def test_a_logged_in_session_cannot_act_on_the_api(alice, settings):
    """Only a Bearer token authenticates: a page on another site that makes the browser post with
    its session cookie gets 401, and nothing is made."""
    from django.test import Client

    from generations.models import Generation

    settings.SHORTAPI_KEY = "configured"
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get("/accounts/").status_code == 200  # the session works for the pages
    assert_401(browser.get("/api/v1/account"))
    assert_401(browser.post("/api/v1/generations", {"prompt": "x"}, content_type="application/json"))
    assert_401(browser.post("/api/v1/checkout", {"amount_cents": 1000}, content_type="application/json"))
    assert not Generation.objects.exists()


def test_a_method_a_path_lacks_is_405_with_allow_in_the_error_shape(alice_api):
    for method, path, allowed in [
        ("post", "/api/v1/account", "GET, PATCH"),
        ("get", "/api/v1/generations/00000000-0000-0000-0000-000000000000/cancel", "POST"),
        ("delete", "/api/v1/generations", "GET, POST"),
        ("put", "/api/v1/generations/00000000-0000-0000-0000-000000000000", "GET"),
        ("get", "/api/v1/checkout", "POST"),
        ("post", "/api/v1/pricing", "GET"),
    ]:
        response = getattr(alice_api.client, method)(path, headers=alice_api.headers)
        assert response.status_code == 405, (method, path)
        assert response["Allow"] == allowed
        error = response.json()["error"]
        assert error["code"] == "method_not_allowed" and error["message"]


@pytest.mark.parametrize(
    ("path", "headers", "field"),
    [
        ("/api/v1/generations?limit=abc", {}, "limit"),
        ("/api/v1/generations?limit=5.0", {}, "limit"),
        ("/api/v1/generations?limit=%2B5", {}, "limit"),
        ("/api/v1/generations?status=done", {}, "status"),
    ],
)
def test_the_frameworks_own_validation_errors_are_400_in_the_error_shape(alice_api, path, headers, field):
    response = alice_api.get(path, headers=headers)
    assert response.status_code == 400  # never 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert list(error["fields"]) == [field] and error["message"] == error["fields"][field][0]
    assert "Input should" not in error["message"]  # said for people, not pydantic's words


def test_a_token_sent_without_bearer_is_401_and_never_logged(alice, settings, caplog):
    _, plaintext = api_token_create(user=alice, name="t")
    settings.DEBUG = True  # where a framework would log the header it could not read
    from django.test import Client

    response = Client().get("/api/v1/account", headers={"Authorization": plaintext})
    assert_401(response)
    assert plaintext not in caplog.text
    assert ApiClient(plaintext).get("/api/v1/account").status_code == 200
