"""The ledger's own guards (accounts.billing.ledger): a charge, refund, top-up, take-back or restore
moves credits in one direction only, so a wrong sign in a caller can never turn a charge into a
gift. Each test kills a mutant the rest of the suite let through (tests/MUTATION.md)."""

import pytest

from accounts.billing.ledger import (
    InsufficientCredits,
    credits_charge,
    credits_refund,
    credits_restore,
    credits_take_back,
    credits_topup,
)
from accounts.billing.selectors import credits_for_user
from accounts.models import CreditEntry

pytestmark = pytest.mark.django_db

MOVES = {
    "charge": (credits_charge, "A charge takes at least one credit."),
    "refund": (credits_refund, "A refund returns at least one credit."),
    "topup": (credits_topup, "A top-up adds at least one credit."),
    "take_back": (credits_take_back, "A take-back removes at least one credit."),
    "restore": (credits_restore, "A restore gives back at least one credit."),
}


def entries(user) -> int:
    return CreditEntry.objects.filter(user=user).count()


def test_a_negative_charge_is_refused_and_grants_nothing(alice):
    before = entries(alice)
    with pytest.raises(ValueError, match="A charge takes at least one credit"):
        credits_charge(
            user_id=alice.pk, amount_cents=-500, description="x", idempotency_key="neg", reference="r"
        )
    assert credits_for_user(user=alice).balance_cents == 10_000
    assert entries(alice) == before


@pytest.mark.parametrize("amount", [0, -1])
@pytest.mark.parametrize("move", sorted(MOVES))
def test_a_move_of_no_or_negative_credits_is_refused_with_its_own_message(alice, move, amount):
    service, message = MOVES[move]
    before = entries(alice)
    with pytest.raises(ValueError) as caught:
        service(
            user_id=alice.pk,
            amount_cents=amount,
            description="x",
            idempotency_key=f"k{amount}",
            reference="r",
        )
    assert str(caught.value) == message
    assert credits_for_user(user=alice).balance_cents == 10_000
    assert entries(alice) == before


SIGNS = {"charge": -1, "refund": 1, "topup": 1, "take_back": -1, "restore": 1}
KINDS = {
    "charge": CreditEntry.Kind.CHARGE,
    "refund": CreditEntry.Kind.REFUND,
    "topup": CreditEntry.Kind.TOPUP,
    "take_back": CreditEntry.Kind.TAKE_BACK,
    "restore": CreditEntry.Kind.RESTORE,
}


@pytest.mark.parametrize("move", sorted(MOVES))
def test_a_move_of_one_credit_is_written_whole_in_its_own_direction(alice, move):
    service, _ = MOVES[move]
    entry = service(
        user_id=alice.pk,
        amount_cents=1,
        description="one credit",
        idempotency_key=f"one:{move}",
        reference="r:1",
    )
    stored = CreditEntry.objects.get(pk=entry.pk)
    sign = SIGNS[move]
    assert (stored.user_id, stored.account.owner_id) == (alice.pk, alice.pk)
    assert (stored.amount_cents, stored.kind) == (sign, KINDS[move])
    assert (stored.description, stored.reference, stored.idempotency_key) == (
        "one credit",
        "r:1",
        f"one:{move}",
    )
    assert stored.balance_after == 10_000 + sign == credits_for_user(user=alice).balance_cents
    assert entry.replayed is False


def test_a_charge_over_the_balance_says_what_it_needs_and_writes_nothing(alice):
    before = entries(alice)
    with pytest.raises(InsufficientCredits) as caught:
        credits_charge(
            user_id=alice.pk, amount_cents=10_001, description="x", idempotency_key="big", reference="r"
        )
    assert (caught.value.needed_cents, caught.value.balance_cents) == (10_001, 10_000)
    assert str(caught.value) == "This needs 10001 credits; the balance is 10000."
    assert credits_for_user(user=alice).balance_cents == 10_000
    assert entries(alice) == before
