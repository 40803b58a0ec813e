"""One user's submissions queue on their user row (generations.services.generation_create), so two at
once cannot both read the active count (or an idempotency key) as free. PostgreSQL only, with real
threads: SQLite runs one writer at a time, so the race cannot happen there. Kills the "row lock on
submit dropped" mutant of issue #11 (tests/MUTATION.md)."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from accounts.billing.selectors import credits_for_user
from generations.models import Generation
from generations.services import TooManyActive, generation_create

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only(settings) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time: this race cannot happen there")
    settings.SHORTAPI_KEY = "configured"


def submit(user, key: str | None = None) -> tuple[Generation, bool]:
    return generation_create(
        user=user, prompt="a heron", mode="std", duration=5, aspect_ratio="16:9", idempotency_key=key
    )


def until_a_session_waits_for_a_lock(timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            # Inside a transaction PostgreSQL keeps serving its first snapshot of the statistics.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            assert time.monotonic() < deadline, "the second submission never waited for a lock"
            time.sleep(0.02)


def second_submission_during_first(user, *, key: str | None = None) -> list[object]:
    """Submit in this thread, and while its transaction is still open, submit again from another
    thread; return what the second one returned or raised."""
    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(submit(user, key))
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=second)
    with transaction.atomic():
        submit(user, key)
        thread.start()
        # The second one is blocked on a lock of ours: with the user-row lock, before it counts.
        until_a_session_waits_for_a_lock()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome


def test_a_second_submission_during_the_first_counts_the_first_as_active(alice, settings):
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 1
    [outcome] = second_submission_during_first(alice)
    assert isinstance(outcome, TooManyActive)
    assert Generation.objects.filter(user=alice).count() == 1
    cost = Generation.objects.get(user=alice).cost_cents
    assert credits_for_user(user=alice).balance_cents == 10_000 - cost


def test_a_second_submission_with_the_same_key_during_the_first_returns_the_first(alice):
    [outcome] = second_submission_during_first(alice, key="retry-1")
    generation, new = outcome
    assert new is False
    assert Generation.objects.filter(user=alice).count() == 1
    assert generation.pk == Generation.objects.get(user=alice).pk
