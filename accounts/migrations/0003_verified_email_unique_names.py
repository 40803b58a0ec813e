# Names and email addresses become unique whatever their case, as database constraints. Rows made
# before could collide (the admin and createsuperuser compared exact spelling only): the oldest
# account keeps the name or address, and each later one is changed and named in the output, for
# operators to tell its owner.

import django.db.models.functions.text
from django.db import migrations, models
from django.db.models.functions import Lower


def settle_existing_accounts(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    # Accounts from before email confirmation existed were let in (and given any sign-up
    # credits) under the old rule; asking them now would only confuse.
    User.objects.filter(email_verified_at__isnull=True).update(email_verified_at=models.F("date_joined"))

    seen: set[str] = set()
    for user in User.objects.annotate(folded=Lower("username")).order_by("pk").iterator():
        if user.folded not in seen:
            seen.add(user.folded)
            continue
        suffix = f"-{user.pk}"
        renamed = user.username[: 150 - len(suffix)] + suffix
        print(f"\n  accounts: user {user.pk} renamed {user.username!r} -> {renamed!r} (name taken in another case)")
        User.objects.filter(pk=user.pk).update(username=renamed)
        seen.add(renamed.lower())

    seen.clear()
    for user in User.objects.exclude(email="").annotate(folded=Lower("email")).order_by("pk").iterator():
        if user.folded not in seen:
            seen.add(user.folded)
            continue
        print(f"\n  accounts: user {user.pk} ({user.username}) lost email {user.email!r}: an older account has it")
        User.objects.filter(pk=user.pk).update(email="")


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0002_stripeevent_topup'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.AddField(
            model_name='user',
            name='email_verified_at',
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name='user',
            name='session_epoch',
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(settle_existing_accounts, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='user',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('username'), name='user_username_unique_ci', violation_error_message='A user with that username already exists (in any capitalisation).'),
        ),
        migrations.AddConstraint(
            model_name='user',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('email'), condition=models.Q(('email', ''), _negated=True), name='user_email_unique_ci', violation_error_message='Another account already uses this email address.'),
        ),
    ]
