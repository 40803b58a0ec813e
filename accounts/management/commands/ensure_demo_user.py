from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.billing.ledger import credits_grant
from accounts.billing.selectors import balance_for_user
from accounts.models import User


class Command(BaseCommand):
    help = "Make sure the demo login (demo/demo) exists with its demo credits. Safe to run again."

    def handle(self, *args, **options) -> None:
        # A made-up address, so marked confirmed: nobody can open a link sent to it.
        user, created = User.objects.get_or_create(
            username="demo", defaults={"email": "demo@example.com", "email_verified_at": timezone.now()}
        )
        if created:
            user.set_password("demo")
            user.save(update_fields=["password"])
        # A fixed key: the demo credits are given once, however often `make run` starts.
        credits_grant(
            user=user,
            amount_cents=settings.DEMO_CREDITS,
            reason="Demo credits",
            idempotency_key="demo:initial-credits",
        )
        balance = balance_for_user(user=user)
        self.stdout.write(f"demo user ready: log in as demo/demo ({balance} credits)")
