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


def test_a_movement_for_a_user_who_does_not_exist_names_the_id(db):
    from accounts.models import User

    with pytest.raises(User.DoesNotExist) as caught:
        credits_grant(user=User(pk=987_655), amount_cents=5, reason="ghost")
    assert str(caught.value) == "No user with id 987655."


def test_one_credit_arriving_while_something_is_owed_pays_the_debt_not_the_balance(alice):
    """The smallest arrival goes the way of every other: to what is owed first (`amount > 0`)."""
    credits_take_back(
        user_id=alice.pk, amount_cents=10_002, description="x", idempotency_key="tb1", reference="r"
    )
    entry = credits_refund(
        user_id=alice.pk, amount_cents=1, description="x", idempotency_key="one", reference="r"
    )
    assert (entry.owed_cents, entry.balance_after, entry.owed_after) == (-1, 0, 1)
    account = credits_for_user(user=alice)
    assert (account.balance_cents, account.owed_cents) == (0, 1)


def test_a_twin_that_commits_while_we_wait_for_the_lock_is_returned_not_repeated(alice):
    """The same change sent twice at once (a redelivered event handled by two workers): both pass the
    unlocked look-up, one takes the account's lock and writes the entry. The other, once it has the
    lock, must look again and return that entry. The twin is made to land exactly in that gap: run
    just before the second call opens its transaction (the SAVEPOINT), as a committed twin would be
    seen by a call that waited for its lock."""
    from django.db import connection

    twin = {}

    def twin_lands_before_our_transaction(execute, sql, params, many, context):
        if not twin and sql.startswith("SAVEPOINT"):
            twin["entry"] = None  # once only (the twin's own statements pass through here too)
            twin["entry"] = credits_refund(
                user_id=alice.pk, amount_cents=7, description="twin", idempotency_key="twin", reference="r"
            )
        return execute(sql, params, many, context)

    with connection.execute_wrapper(twin_lands_before_our_transaction):
        ours = credits_refund(
            user_id=alice.pk, amount_cents=7, description="ours", idempotency_key="twin", reference="r"
        )
    assert twin["entry"] is not None and twin["entry"].replayed is False
    assert (ours.pk, ours.replayed, ours.description) == (twin["entry"].pk, True, "twin")
    assert credits_for_user(user=alice).balance_cents == 10_007
    assert CreditEntry.objects.filter(idempotency_key="twin").count() == 1


def test_two_first_movements_of_a_new_user_at_once_both_land_on_one_account(db):
    """A new user's first two movements at once (a grant and a refund, say): both find no account, and
    both insert one. The second insert must give way (ON CONFLICT DO NOTHING) and lock the first's
    row, not fail. The first movement is made to land just before the second's insert."""
    from django.db import connection

    from accounts.models import User

    erin = User.objects.create_user(username="erin", password="pw-erinerin")
    first = {}

    def first_lands_before_our_insert(execute, sql, params, many, context):
        if not first and sql.startswith("INSERT") and "creditaccount" in sql:
            first["entry"] = None  # once only (the first movement's own insert passes through here)
            first["entry"] = credits_grant(user=erin, amount_cents=3, reason="first")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(first_lands_before_our_insert):
        second = credits_grant(user=erin, amount_cents=4, reason="second")
    assert first["entry"] is not None
    assert second.account_id == first["entry"].account_id
    assert (second.balance_after, credits_for_user(user=erin).balance_cents) == (7, 7)
