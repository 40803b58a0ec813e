"""The balance's move off the User row, run on a database holding balances (and back again)."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditAccount, CreditEntry

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("accounts", "0004_account_settings_email_notices")]


def migrate_to(targets):
    """Migrate the test database to `targets`; return the models as they were then."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_existing_balances_move_to_credit_accounts_and_back():
    old = migrate_to(BEFORE)
    try:
        old_user, old_entry = old.get_model("accounts", "User"), old.get_model("accounts", "CreditEntry")
        alice = old_user.objects.create(username="alice", balance_cents=700)
        old_user.objects.create(username="bob", balance_cents=0)
        for key, amount, after in (("g", 1000, 1000), ("c", -300, 700)):
            old_entry.objects.create(
                user=alice,
                amount_cents=amount,
                kind="grant" if amount > 0 else "charge",
                description="x",
                idempotency_key=key,
                balance_after=after,
            )

        call_command("migrate", "accounts", verbosity=0)

        accounts = CreditAccount.objects.values_list("owner__username", "balance_cents", "owed_cents")
        assert sorted(accounts) == [("alice", 700, 0), ("bob", 0, 0)]
        assert set(CreditEntry.objects.values_list("account__owner__username", flat=True)) == {"alice"}
        assert audit_mismatches() == []

        back = migrate_to(BEFORE)
        balances = back.get_model("accounts", "User").objects.values_list("username", "balance_cents")
        assert dict(balances) == {"alice": 700, "bob": 0}
    finally:
        call_command("migrate", verbosity=0)


def test_videos_shared_before_sharing_had_three_states_stay_listed_on_explore():
    from datetime import timedelta

    from django.utils import timezone

    from generations.models import Generation

    executor = MigrationExecutor(connection)
    others = [leaf for leaf in executor.loader.graph.leaf_nodes() if leaf[0] != "generations"]
    old = migrate_to([*others, ("generations", "0007_upstream_refunded_long_result_url")])
    try:
        user = old.get_model("accounts", "User").objects.create(username="alice")
        old_generation = old.get_model("generations", "Generation")
        common = {
            "user": user,
            "prompt": "x",
            "mode": "std",
            "duration": 5,
            "aspect_ratio": "16:9",
            "cost_cents": 120,
            "cents_per_second": 24,
            "deadline_at": timezone.now() + timedelta(minutes=30),
            "status": "succeeded",
        }
        shared = old_generation.objects.create(shared=True, share_slug="abc", **common)
        private = old_generation.objects.create(**common)

        call_command("migrate", "generations", verbosity=0)

        assert Generation.objects.get(pk=shared.pk).visibility == "listed"
        assert Generation.objects.get(pk=private.pk).visibility == "private"
    finally:
        call_command("migrate", verbosity=0)
