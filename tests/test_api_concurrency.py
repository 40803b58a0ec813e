"""Submissions racing each other, with real threads (and real row locks on PostgreSQL)."""

import pytest

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditEntry
from accounts.services import api_token_create
from generations.models import Generation
from tests.factories import ApiClient, balance, make_user, race

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def upstream_key(settings):
    settings.SHORTAPI_KEY = "configured"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100


def test_eight_double_clicks_with_one_idempotency_key_make_one_generation():
    user = make_user("alice", 10_000)
    _, token = api_token_create(user=user, name="t")

    def submit(i: int) -> int:
        response = ApiClient(token).post(
            "/api/v1/generations", {"prompt": "once"}, headers={"Idempotency-Key": "click"}
        )
        return response.status_code

    statuses = race(8, submit)
    assert sorted(statuses) == [200] * 7 + [201]
    assert Generation.objects.count() == 1
    assert CreditEntry.objects.filter(kind="charge").count() == 1
    user.refresh_from_db()
    assert balance(user) == 10_000 - 120
    assert audit_mismatches() == []


def test_sixteen_submissions_racing_for_a_small_balance_hold_only_what_it_covers():
    user = make_user("bob", 500)  # four 5 s std videos at 120
    _, token = api_token_create(user=user, name="t")

    def submit(i: int) -> int:
        return ApiClient(token).post("/api/v1/generations", {"prompt": f"race {i}"}).status_code

    statuses = race(16, submit)
    assert sorted(statuses) == [201] * 4 + [402] * 12
    assert Generation.objects.count() == 4
    user.refresh_from_db()
    assert balance(user) == 500 - 4 * 120
    assert audit_mismatches() == []
