"""What one API submit asks the database: each query is CPU on both sides, and a submit's CPU is
what bounds the submit rate (issue 16; bench/submit_cpu.py measures it)."""

import pytest

from accounts.models import EmailNotice
from accounts.preferences import account_set_email_preferences
from generations.models import Generation
from tests.factories import ApiClient


@pytest.fixture(autouse=True)
def upstream_configured(settings) -> None:
    settings.SHORTAPI_KEY = "configured"


def test_a_text_to_video_submit_makes_ten_queries(alice_api: ApiClient, django_assert_num_queries) -> None:
    alice_api.get("/api/v1/account")  # stamps the token's last use (once a minute): not counted below
    # The token; the user's settings (spend limit and low-balance mark in one read); the savepoint
    # the test's transaction puts around the submit's own; the user's row lock; the active count;
    # the generation; the credit account's lock, its guarded update and the ledger entry; the
    # savepoint's release. Not: a second settings read, nor reading back the inputs just written.
    with django_assert_num_queries(10):
        response = alice_api.post("/api/v1/generations", {"prompt": "A red fox", "duration": 4})
    assert response.status_code == 201
    body = response.json()
    assert (body["image_ids"], body["video_id"], body["audio_ids"]) == ([], None, [])
    assert Generation.objects.get(pk=body["id"]).inputs.count() == 0


def test_a_submit_reads_the_low_balance_mark_with_the_spend_limit(
    alice, alice_api: ApiClient, django_assert_num_queries
) -> None:
    account_set_email_preferences(user=alice, email_on_finish=False, low_balance_email_cents=9_950)
    alice_api.get("/api/v1/account")
    # The same ten, plus the notice the crossing makes (10,000 → 9,904 credits, below 9,950):
    # get_or_create's look-up, then its insert within a savepoint (four statements).
    with django_assert_num_queries(14):
        response = alice_api.post("/api/v1/generations", {"prompt": "A red fox", "duration": 4})
    assert response.status_code == 201
    assert EmailNotice.objects.get().kind == EmailNotice.Kind.BALANCE_LOW
