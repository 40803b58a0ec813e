"""The ledger's own guards (accounts.billing.ledger): a charge, refund, top-up, take-back or restore
moves credits in one direction only, so a wrong sign in a caller can never turn a charge into a
gift. Each test kills a mutant the rest of the suite let through (tests/MUTATION.md)."""

import pytest

from accounts.billing.ledger import (
    IdempotencyConflict,
    InsufficientCredits,
    credits_charge,
    credits_grant,
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


# --- idempotency keys -----------------------------------------------------------------------------


def charge(user, amount: int, key: str):
    return credits_charge(
        user_id=user.pk, amount_cents=amount, description="x", idempotency_key=key, reference="r"
    )


def test_a_repeated_key_returns_the_first_entry_marked_replayed_and_moves_nothing(alice):
    first = charge(alice, 300, "k-1")
    again = charge(alice, 300, "k-1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.pk == first.pk
    assert credits_for_user(user=alice).balance_cents == 9_700


def test_a_key_used_for_another_amount_is_refused(alice):
    charge(alice, 300, "k-2")
    with pytest.raises(IdempotencyConflict, match="'k-2' was used for another change"):
        charge(alice, 301, "k-2")
    assert credits_for_user(user=alice).balance_cents == 9_700


def test_a_key_used_by_another_user_is_refused(alice, bob):
    charge(alice, 300, "k-3")
    with pytest.raises(IdempotencyConflict):
        charge(bob, 300, "k-3")
    assert credits_for_user(user=bob).balance_cents == 10_000


# --- the balance and the debt -----------------------------------------------------------------------


def test_a_grant_of_nothing_is_refused(alice):
    with pytest.raises(ValueError) as caught:
        credits_grant(user=alice, amount_cents=0, reason="nothing")
    assert str(caught.value) == "A ledger entry moves at least one credit."


def test_a_grant_and_a_take_back_by_hand_are_recorded_as_such(alice):
    given = credits_grant(user=alice, amount_cents=50, reason="goodwill", created_by="ops")
    taken = credits_grant(user=alice, amount_cents=-20, reason="oops", created_by="ops")
    assert (given.kind, taken.kind) == (CreditEntry.Kind.GRANT, CreditEntry.Kind.ADJUSTMENT)
    assert (given.created_by, given.description) == ("ops", "goodwill")
    assert given.idempotency_key.startswith("grant:") and given.idempotency_key != taken.idempotency_key
    assert credits_for_user(user=alice).balance_cents == 10_030


def test_a_charge_of_the_whole_balance_is_allowed_and_one_more_is_not(alice):
    charge(alice, 10_000, "all")
    assert credits_for_user(user=alice).balance_cents == 0
    with pytest.raises(InsufficientCredits):
        charge(alice, 1, "one-more")


def test_a_long_description_is_cut_to_fit(alice):
    entry = credits_grant(user=alice, amount_cents=1, reason="x" * 400)
    assert CreditEntry.objects.get(pk=entry.pk).description == "x" * 300


def test_the_first_movement_of_a_new_user_makes_their_account(db):
    from accounts.models import User

    dave = User.objects.create_user(username="dave", password="pw-davedave")
    entry = credits_grant(user=dave, amount_cents=5, reason="welcome")
    assert entry.account.owner_id == dave.pk
    assert credits_for_user(user=dave).balance_cents == 5


def test_a_movement_for_a_user_who_does_not_exist_is_refused(db):
    from accounts.models import User

    with pytest.raises(User.DoesNotExist):
        credits_refund(
            user_id=987_654, amount_cents=5, description="x", idempotency_key="ghost", reference="r"
        )
    assert not CreditEntry.objects.filter(idempotency_key="ghost").exists()


def test_a_take_back_over_the_balance_empties_it_and_records_the_rest_as_owed(alice):
    entry = credits_take_back(
        user_id=alice.pk, amount_cents=10_300, description="x", idempotency_key="tb", reference="r"
    )
    account = credits_for_user(user=alice)
    assert (account.balance_cents, account.owed_cents) == (0, 300)
    assert (entry.amount_cents, entry.owed_cents, entry.balance_after, entry.owed_after) == (
        -10_300,
        300,
        0,
        300,
    )


def test_credits_arriving_pay_what_is_owed_first(alice):
    credits_take_back(
        user_id=alice.pk, amount_cents=10_300, description="x", idempotency_key="tb", reference="r"
    )
    part = credits_refund(
        user_id=alice.pk, amount_cents=100, description="x", idempotency_key="r1", reference="r"
    )
    assert (part.owed_cents, part.balance_after, part.owed_after) == (-100, 0, 200)
    rest = credits_topup(
        user_id=alice.pk, amount_cents=500, description="x", idempotency_key="t1", reference="r"
    )
    assert (rest.owed_cents, rest.balance_after, rest.owed_after) == (-200, 300, 0)
    account = credits_for_user(user=alice)
    assert (account.balance_cents, account.owed_cents) == (300, 0)


def test_a_charge_never_goes_into_debt(alice):
    with pytest.raises(InsufficientCredits):
        charge(alice, 10_001, "over")
    assert credits_for_user(user=alice).owed_cents == 0


def test_a_grant_made_by_the_system_names_nobody_as_its_maker(alice):
    entry = credits_grant(user=alice, amount_cents=5, reason="signup")
    stored = CreditEntry.objects.get(pk=entry.pk)
    assert (stored.created_by, stored.reference) == ("", "")
    held = charge(alice, 5, "held")
    assert CreditEntry.objects.get(pk=held.pk).created_by == ""


def test_a_grant_of_one_credit_is_a_grant_and_a_take_back_of_one_an_adjustment(alice):
    assert credits_grant(user=alice, amount_cents=1, reason="one").kind == CreditEntry.Kind.GRANT
    assert credits_grant(user=alice, amount_cents=-1, reason="one back").kind == CreditEntry.Kind.ADJUSTMENT
