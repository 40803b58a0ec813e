"""The ledger's guards at its edges: an amount that moves nothing or the wrong way, a user who does
not exist, a key raced by another user's entry. Each is refused and leaves the books as they were."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction

from accounts.billing import ledger
from accounts.models import CreditAccount, CreditEntry
from tests.factories import balance, make_user, owed, wait_for_a_lock_wait

SERVICES = [
    ledger.credits_charge,
    ledger.credits_refund,
    ledger.credits_topup,
    ledger.credits_take_back,
    ledger.credits_restore,
]


def books(user) -> tuple[int, int, int]:
    return balance(user), owed(user), CreditEntry.objects.filter(user=user).count()


@pytest.mark.parametrize("service", SERVICES, ids=lambda service: service.__name__)
@pytest.mark.parametrize("amount", [0, -1, -500])
def test_a_ledger_service_refuses_an_amount_that_is_not_positive_and_writes_nothing(alice, service, amount):
    # A negative charge would grant credits; a negative refund or top-up would take them.
    before = books(alice)
    with pytest.raises(ValueError, match="at least one credit"):
        service(
            user_id=alice.pk, amount_cents=amount, description="x", idempotency_key="k-guard", reference="r"
        )
    assert books(alice) == before
    assert not CreditEntry.objects.filter(idempotency_key="k-guard").exists()


def test_a_grant_of_nothing_is_refused(alice):
    before = books(alice)
    with pytest.raises(ValueError, match="at least one credit"):
        ledger.credits_grant(user=alice, amount_cents=0, reason="nothing")
    assert books(alice) == before


def test_credits_for_a_user_who_does_not_exist_are_refused_and_make_no_account(db):
    user_model = get_user_model()
    missing = user_model(pk=987_654, username="ghost")
    with pytest.raises(user_model.DoesNotExist):
        ledger.credits_grant(user=missing, amount_cents=100, reason="to nobody")
    assert not CreditAccount.objects.filter(owner_id=987_654).exists()
    assert not CreditEntry.objects.exists()


def test_a_grant_takes_back_credits_but_never_into_debt(alice):
    with pytest.raises(ledger.InsufficientCredits):
        ledger.credits_grant(user=alice, amount_cents=-10_001, reason="too much")
    entry = ledger.credits_grant(user=alice, amount_cents=-10_000, reason="all of it")
    assert (entry.kind, entry.balance_after, entry.owed_after) == ("adjustment", 0, 0)
    assert (balance(alice), owed(alice)) == (0, 0)


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
