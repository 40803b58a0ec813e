"""Every user's balance moves from the User row to a CreditAccount of their own, and every ledger
entry names that account. Reversible: going back copies each balance to the User row again."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def move_balances(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    CreditAccount = apps.get_model("accounts", "CreditAccount")
    CreditEntry = apps.get_model("accounts", "CreditEntry")
    batch = []
    for user_id, balance in User.objects.values_list("id", "balance_cents").iterator(chunk_size=2000):
        batch.append(CreditAccount(owner_id=user_id, balance_cents=balance, owed_cents=0))
        if len(batch) >= 2000:
            CreditAccount.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    CreditAccount.objects.bulk_create(batch, ignore_conflicts=True)
    CreditEntry.objects.filter(account__isnull=True).update(
        account_id=Subquery(CreditAccount.objects.filter(owner_id=OuterRef("user_id")).values("id")[:1])
    )


def move_balances_back(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    CreditAccount = apps.get_model("accounts", "CreditAccount")
    User.objects.update(
        balance_cents=Subquery(
            CreditAccount.objects.filter(owner_id=OuterRef("pk")).values("balance_cents")[:1]
        )
    )
    # A user with no account had no balance.
    User.objects.filter(balance_cents__isnull=True).update(balance_cents=0)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0005_creditaccount"),
    ]

    operations = [
        migrations.RunPython(move_balances, move_balances_back),
    ]
