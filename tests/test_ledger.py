import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.billing.ledger import (
    IdempotencyConflict,
    InsufficientCredits,
    credits_charge,
    credits_grant,
    credits_refund,
)
from accounts.models import CreditAccount, CreditEntry, User
from tests.factories import balance, make_user


def ledger_sum(user: User) -> int:
    return CreditEntry.objects.filter(user=user).aggregate(total=Sum("amount_cents"))["total"] or 0


def test_it_grants_and_records_balance_after(carol):
    entry = credits_grant(user=carol, amount_cents=500, reason="welcome")
    carol.refresh_from_db()
    assert balance(carol) == 500
    assert entry.balance_after == 500
    assert entry.kind == "grant"


def test_it_charges_and_refunds_with_references(alice):
    charge = credits_charge(
        user_id=alice.pk,
        amount_cents=120,
        description="video",
        idempotency_key="c1",
        reference="generation:x",
    )
    refund = credits_refund(
        user_id=alice.pk, amount_cents=120, description="back", idempotency_key="r1", reference="generation:x"
    )
    alice.refresh_from_db()
    assert (charge.amount_cents, charge.balance_after) == (-120, 9_880)
    assert (refund.amount_cents, refund.balance_after) == (120, 10_000)
    assert balance(alice) == ledger_sum(alice) == 10_000


def test_it_refuses_a_charge_larger_than_the_balance_and_writes_nothing(carol):
    credits_grant(user=carol, amount_cents=100, reason="a little")
    before = CreditEntry.objects.count()
    with pytest.raises(InsufficientCredits) as excinfo:
        credits_charge(user_id=carol.pk, amount_cents=101, description="x", idempotency_key="k", reference="")
    assert excinfo.value.balance_cents == 100
    carol.refresh_from_db()
    assert balance(carol) == 100
    assert CreditEntry.objects.count() == before


def test_it_changes_nothing_when_an_idempotency_key_repeats(alice):
    first = credits_charge(
        user_id=alice.pk, amount_cents=50, description="x", idempotency_key="same", reference=""
    )
    again = credits_charge(
        user_id=alice.pk, amount_cents=50, description="x", idempotency_key="same", reference=""
    )
    alice.refresh_from_db()
    assert first.pk == again.pk
    assert balance(alice) == 9_950


def test_a_charge_promised_a_new_key_still_cannot_write_a_second_entry_with_it(alice):
    credits_charge(user_id=alice.pk, amount_cents=50, description="x", idempotency_key="k", reference="")
    entries = CreditEntry.objects.filter(user=alice).count()
    with pytest.raises(IntegrityError), transaction.atomic():
        credits_charge(
            user_id=alice.pk,
            amount_cents=50,
            description="x",
            idempotency_key="k",
            reference="",
            new_key=True,
        )
    assert balance(alice) == 9_950
    assert CreditEntry.objects.filter(user=alice).count() == entries


def test_it_rejects_a_reused_key_for_a_different_change(alice):
    credits_charge(user_id=alice.pk, amount_cents=50, description="x", idempotency_key="k", reference="")
    with pytest.raises(IdempotencyConflict):
        credits_charge(user_id=alice.pk, amount_cents=60, description="x", idempotency_key="k", reference="")


def test_take_back_cannot_go_below_zero(carol):
    credits_grant(user=carol, amount_cents=30, reason="x")
    with pytest.raises(InsufficientCredits):
        credits_grant(user=carol, amount_cents=-31, reason="too much")
    entry = credits_grant(user=carol, amount_cents=-30, reason="all of it")
    assert entry.kind == "adjustment"
    assert entry.balance_after == 0


@pytest.mark.parametrize(
    "change",
    [
        {"balance_cents": -1},
        {"owed_cents": -1},
        {"owed_cents": 1},  # a debt beside a positive balance: arriving credits pay debts first
    ],
    ids=["negative-balance", "negative-debt", "debt-and-balance"],
)
def test_the_database_refuses_a_balance_the_ledger_could_never_make(alice, change):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        CreditAccount.objects.filter(owner=alice).update(**change)


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_charging_one_balance_never_overspend():
    user = make_user("alice", 1_000)  # affords exactly 8 charges of 120
    barrier = threading.Barrier(16)
    outcomes: list[str] = []
    lock = threading.Lock()

    def charge(i: int) -> None:
        try:
            barrier.wait()
            credits_charge(
                user_id=user.pk,
                amount_cents=120,
                description="race",
                idempotency_key=f"race-{i}",
                reference="",
            )
            result = "ok"
        except InsufficientCredits:
            result = "short"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=charge, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    user.refresh_from_db()
    assert outcomes.count("ok") == 8
    assert outcomes.count("short") == 8
    assert balance(user) == 1_000 - 8 * 120 == ledger_sum(user)
    assert min(CreditEntry.objects.filter(user=user).values_list("balance_after", flat=True)) >= 0


@pytest.mark.django_db(transaction=True)
def test_sixteen_threads_with_one_idempotency_key_charge_once():
    user = make_user("bob", 1_000)
    barrier = threading.Barrier(16)

    def charge() -> None:
        try:
            barrier.wait()
            credits_charge(
                user_id=user.pk, amount_cents=100, description="dup", idempotency_key="one", reference=""
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=charge) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    user.refresh_from_db()
    assert balance(user) == 900 == ledger_sum(user)
    assert CreditEntry.objects.filter(idempotency_key="one").count() == 1
    assert connection.vendor in {"postgresql", "sqlite"}


operations = st.lists(
    st.tuples(
        st.sampled_from(["grant", "charge", "refund"]),
        st.integers(min_value=1, max_value=500),
        st.integers(min_value=0, max_value=6),  # small key space: repeats are common
    ),
    max_size=30,
)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_property_balance_always_equals_ledger_and_repeats_change_nothing(ops):
    user = User.objects.create_user(username=f"prop{User.objects.count()}", password="x")
    used: dict[str, int] = {}
    for kind, amount, key_no in ops:
        key = f"{user.pk}:{kind}:{key_no}"
        before_balance = balance(user)
        before_count = CreditEntry.objects.filter(user=user).count()
        # A key is bound to its first amount: replays use that amount.
        amount = used.setdefault(key, amount)
        repeat = CreditEntry.objects.filter(idempotency_key=key).exists()
        try:
            if kind == "grant":
                credits_grant(user=user, amount_cents=amount, reason="p", idempotency_key=key)
            elif kind == "charge":
                credits_charge(
                    user_id=user.pk, amount_cents=amount, description="p", idempotency_key=key, reference=""
                )
            else:
                credits_refund(
                    user_id=user.pk, amount_cents=amount, description="p", idempotency_key=key, reference=""
                )
        except InsufficientCredits:
            assert kind == "charge" and amount > before_balance and not repeat
        after = balance(user)
        assert after == ledger_sum(user) >= 0
        if repeat:
            assert after == before_balance
            assert CreditEntry.objects.filter(user=user).count() == before_count
