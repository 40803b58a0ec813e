"""An idempotency key raced by two users at once: no row lock is shared, so the database's unique
index decides, and the loser is refused after the race with nothing written (PostgreSQL)."""

import threading

import pytest
from django.db import connection, connections, transaction

from accounts.billing import ledger
from accounts.models import CreditEntry
from tests.factories import balance, make_user, wait_for_a_lock_wait


@pytest.mark.django_db(transaction=True)
def test_a_key_raced_by_another_users_entry_is_refused_after_the_race(settings):
    """Two users, one idempotency key, at the same moment: no row lock is shared, so the unique
    index decides. The loser's transaction rolls back whole and it is told of the conflict."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite runs one writer at a time, so the race cannot happen")
    alice, bob = make_user("alice", 1_000), make_user("bob", 1_000)
    holding = threading.Event()
    release = threading.Event()
    errors: list[BaseException] = []

    def bob_first() -> None:
        try:
            with transaction.atomic():
                ledger.credits_grant(user=bob, amount_cents=5, reason="first", idempotency_key="shared")
                holding.set()
                release.wait(30)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    def alice_second() -> None:
        try:
            with pytest.raises(ledger.IdempotencyConflict):
                ledger.credits_grant(user=alice, amount_cents=5, reason="second", idempotency_key="shared")
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=bob_first)
    first.start()
    assert holding.wait(30)
    second = threading.Thread(target=alice_second)
    second.start()
    wait_for_a_lock_wait()  # alice's insert waits on the unique index for bob's transaction
    release.set()
    first.join(30)
    second.join(30)
    assert errors == []
    assert (balance(alice), balance(bob)) == (1_000, 1_005)
    holders = CreditEntry.objects.filter(idempotency_key="shared").values_list("user", flat=True)
    assert list(holders) == [bob.pk]
