"""The balance gets a table of its own (CreditAccount), with room for debts; the ledger learns
what it owes. Existing balances move in 0006; the User column goes in 0007 (three migrations, so
that no schema change shares a transaction with the rows the data migration writes)."""

import django.db.models.deletion
import django.db.models.expressions
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_account_settings_email_notices'),
    ]

    operations = [
        migrations.CreateModel(
            name='CreditAccount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('balance_cents', models.BigIntegerField(default=0)),
                ('owed_cents', models.BigIntegerField(default=0)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name='creditentry',
            name='credit_credit_is_positive',
        ),
        migrations.AddField(
            model_name='creditentry',
            name='owed_after',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='creditentry',
            name='owed_cents',
            field=models.BigIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name='creditentry',
            name='kind',
            field=models.CharField(choices=[('grant', 'Grant'), ('topup', 'Top-up'), ('charge', 'Charge'), ('refund', 'Refund'), ('adjustment', 'Adjustment'), ('take_back', 'Taken back'), ('restore', 'Given back')], max_length=16),
        ),
        migrations.AddField(
            model_name='creditaccount',
            name='owner',
            field=models.OneToOneField(on_delete=django.db.models.deletion.PROTECT, related_name='credit_account', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='creditentry',
            name='account',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='accounts.creditaccount'),
        ),
        migrations.AddConstraint(
            model_name='creditentry',
            constraint=models.CheckConstraint(condition=models.Q(('owed_after__gte', 0)), name='credit_owed_after_not_negative'),
        ),
        migrations.AddConstraint(
            model_name='creditentry',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind__in', ['charge', 'adjustment']), _negated=True), ('owed_cents', 0), _connector='OR'), name='credit_charge_never_owes'),
        ),
        migrations.AddConstraint(
            model_name='creditentry',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind__in', ['refund', 'topup', 'grant', 'restore']), _negated=True), models.Q(('amount_cents__gt', 0), ('owed_cents__lte', 0), ('owed_cents__gte', django.db.models.expressions.CombinedExpression(models.F('amount_cents'), '*', models.Value(-1)))), _connector='OR'), name='credit_credit_pays_debt_within_value'),
        ),
        migrations.AddConstraint(
            model_name='creditentry',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'take_back'), _negated=True), models.Q(('amount_cents__lt', 0), ('owed_cents__gte', 0), ('owed_cents__lte', django.db.models.expressions.CombinedExpression(models.F('amount_cents'), '*', models.Value(-1)))), _connector='OR'), name='credit_take_back_owes_within_value'),
        ),
        migrations.AddConstraint(
            model_name='creditaccount',
            constraint=models.CheckConstraint(condition=models.Q(('balance_cents__gte', 0)), name='credit_account_balance_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='creditaccount',
            constraint=models.CheckConstraint(condition=models.Q(('owed_cents__gte', 0)), name='credit_account_owed_gte_0'),
        ),
        migrations.AddConstraint(
            model_name='creditaccount',
            constraint=models.CheckConstraint(condition=models.Q(('balance_cents', 0), ('owed_cents', 0), _connector='OR'), name='credit_account_debt_paid_first'),
        ),
    ]
