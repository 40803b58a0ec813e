"""The balance leaves the User row: CreditAccount holds it now (moved there by 0006)."""

from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_move_balances'),
    ]

    operations = [
        migrations.AlterField(
            model_name='creditentry',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='accounts.creditaccount'),
        ),
        migrations.RemoveConstraint(
            model_name='user',
            name='user_balance_not_negative',
        ),
        migrations.RemoveField(
            model_name='user',
            name='balance_cents',
        ),
    ]
