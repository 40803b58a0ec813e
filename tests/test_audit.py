"""`audit_credits` catches every kind of corruption, each injected behind the services' back with raw
SQL (as a bad migration, a manual fix or a bug would), and stays quiet on healthy books."""

import uuid

import pytest
from django.db import connection

from accounts.billing.audit import audit_mismatches
from accounts.billing.ledger import credits_grant
from accounts.billing.models import CreditAccount, CreditEntry, TopUp
from generations.models import Generation
from generations.services import generation_create, generation_fail
from tests.factories import make_user, manage

pytestmark = pytest.mark.django_db


def sql(statement: str, *params: object) -> int:
    with connection.cursor() as cursor:
        cursor.execute(statement, [db_value(p) for p in params])
        return cursor.rowcount


def db_value(value: object) -> object:
    """A UUID as the database stores it (SQLite: 32 hex digits; PostgreSQL: a uuid)."""
    if isinstance(value, uuid.UUID):
        return value.hex if connection.vendor == "sqlite" else str(value)
    return value


@pytest.fixture
def books(settings):
    """Healthy books with a bit of everything: charges, a refund, a paid top-up taken back in part
    (some of it owed), an unpaid top-up."""
    settings.SHORTAPI_KEY = "configured"
    alice, bob = make_user("alice", 1000), make_user("bob", 500)
    succeeded, _ = generation_create(user=alice, prompt="a", mode="std", duration=5, aspect_ratio="16:9")
    failed, _ = generation_create(user=alice, prompt="b", mode="std", duration=5, aspect_ratio="16:9")
    generation_fail(generation_id=failed.pk, error="x", failure_class="upstream_failed")
    paid = TopUp.objects.create(user=bob, amount_cents=800, stripe_session_id="cs_paid")
    unpaid = TopUp.objects.create(user=bob, amount_cents=600, stripe_session_id="cs_unpaid")
    from accounts.billing.topups import topup_dispute_open, topup_fulfil

    topup_fulfil(
        session={"id": "cs_paid", "payment_status": "paid", "amount_total": 800, "payment_intent": "pi_1"}
    )
    credits_grant(user=bob, amount_cents=-1000, reason="spent")
    topup_dispute_open(dispute={"id": "dp_1", "object": "dispute", "amount": 800, "payment_intent": "pi_1"})
    assert audit_mismatches() == []
    return {
        "alice": alice,
        "bob": bob,
        "succeeded": succeeded,
        "failed": failed,
        "paid": paid,
        "unpaid": unpaid,
    }


def test_healthy_books_pass(books):
    assert audit_mismatches() == []
    assert CreditAccount.objects.get(owner=books["bob"]).owed_cents == 500


def test_a_balance_that_disagrees_with_its_ledger_is_caught(books):
    sql(
        "UPDATE accounts_creditaccount SET balance_cents = balance_cents + 1 WHERE owner_id = %s",
        books["alice"].pk,
    )
    assert audit_mismatches() == ["user alice: balance 881 != ledger sum 880"]


def test_a_debt_that_disagrees_with_its_ledger_is_caught(books):
    sql("UPDATE accounts_creditaccount SET owed_cents = 0 WHERE owner_id = %s", books["bob"].pk)
    assert audit_mismatches() == ["user bob: owes 0 != ledger debt 500"]


def test_a_refund_paid_to_another_user_is_caught(books):
    bob = books["bob"]
    account = CreditAccount.objects.get(owner=bob)
    sql(
        "UPDATE accounts_creditentry SET user_id = %s, account_id = %s WHERE kind = 'refund'",
        bob.pk,
        account.pk,
    )
    problems = audit_mismatches()
    assert f"generation {books['failed'].pk}: ledger entries for bob, but it is alice's" in problems
    assert any(p.startswith("user alice: balance") for p in problems)


def test_an_entry_moving_another_users_account_is_caught(books):
    alice_account = CreditAccount.objects.get(owner=books["alice"])
    entry = CreditEntry.objects.filter(user=books["bob"], kind="grant").first()
    sql("UPDATE accounts_creditentry SET account_id = %s WHERE id = %s", alice_account.pk, entry.pk)
    assert f"ledger entry {entry.pk} is for bob but moves the account of alice" in audit_mismatches()


def test_a_generation_charged_twice_or_refunded_without_failing_is_caught(books):
    succeeded = books["succeeded"]
    sql("UPDATE generations_generation SET status = 'succeeded' WHERE id = %s", books["failed"].pk)
    sql("UPDATE generations_generation SET cost_cents = 100 WHERE id = %s", succeeded.pk)
    problems = audit_mismatches()
    assert f"generation {books['failed'].pk} (succeeded): 1 refund entries, expected 0" in problems
    assert f"generation {succeeded.pk}: charged 120, cost is 100" in problems


def test_a_paid_topup_never_credited_is_caught(books):
    sql("UPDATE accounts_topup SET state = 'paid' WHERE id = %s", books["unpaid"].pk)
    assert audit_mismatches() == [f"top-up {books['unpaid'].pk} (paid): credited 0 times, expected once"]


def test_an_unpaid_topup_that_was_credited_is_caught(books):
    paid = books["paid"]
    sql("UPDATE accounts_topup SET state = 'expired' WHERE id = %s", paid.pk)
    assert f"top-up {paid.pk} (expired): credited 1 times, but never paid" in audit_mismatches()


def test_a_topup_credited_twice_is_caught(books):
    paid = books["paid"]
    entry = CreditEntry.objects.get(kind="topup", reference=f"topup:{paid.pk}")
    sql(
        "INSERT INTO accounts_creditentry (account_id, user_id, amount_cents, owed_cents, kind, description, "
        "reference, idempotency_key, balance_after, owed_after, created_by, created_at) "
        "SELECT account_id, user_id, amount_cents, 0, kind, description, reference, 'again', 0, 0, '', "
        "created_at FROM accounts_creditentry WHERE id = %s",
        entry.pk,
    )
    assert f"top-up {paid.pk} (disputed): credited 2 times, expected once" in audit_mismatches()


def test_take_backs_that_disagree_with_stripe_are_caught(books):
    paid = books["paid"]
    sql("UPDATE accounts_topup SET disputed_cents = 300 WHERE id = %s", paid.pk)
    assert audit_mismatches() == [
        f"top-up {paid.pk} (disputed): 800 credits taken back, but Stripe refunded 0 and disputed 300"
    ]


def test_a_shortfall_that_disagrees_with_the_debt_taken_is_caught(books):
    paid = books["paid"]
    sql("UPDATE accounts_topup SET shortfall_cents = 0 WHERE id = %s", paid.pk)
    assert audit_mismatches() == [
        f"top-up {paid.pk} (disputed): 500 of its take-backs became owed, it records 0"
    ]


def test_entries_naming_what_does_not_exist_or_cannot_be_theirs_are_caught(books):
    entry = CreditEntry.objects.filter(user=books["alice"], kind="grant").first()
    sql("UPDATE accounts_creditentry SET reference = 'topup:999999' WHERE id = %s", entry.pk)
    grant = CreditEntry.objects.filter(user=books["bob"], kind="grant").first()
    sql(
        "UPDATE accounts_creditentry SET reference = %s WHERE id = %s",
        f"generation:{books['succeeded'].pk}",
        grant.pk,
    )
    problems = audit_mismatches()
    assert "ledger entries name topup:999999, which does not exist" in problems
    assert (
        f"generation {books['succeeded'].pk}: entries of kinds a generation never has: ['grant']" in problems
    )


@pytest.mark.django_db(transaction=True)
def test_the_command_lists_injected_corruption_and_exits_1(settings):
    settings.SHORTAPI_KEY = "configured"
    alice = make_user("alice", 1000)
    generation, _ = generation_create(user=alice, prompt="a", mode="std", duration=5, aspect_ratio="16:9")
    sql("UPDATE generations_generation SET status = 'failed' WHERE id = %s", generation.pk)

    result = manage("audit_credits")

    assert result.returncode == 1
    assert f"generation {generation.pk} (failed): 0 refund entries, expected 1" in result.stdout
    assert Generation.objects.count() == 1
