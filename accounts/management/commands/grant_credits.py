from django.core.management.base import BaseCommand, CommandError

from accounts.billing.ledger import InsufficientCredits, credits_grant
from accounts.models import User


class Command(BaseCommand):
    help = "Add credits to a user's balance (negative CENTS takes them back). Prints the new balance."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("cents", type=int)
        parser.add_argument("--reason", required=True, help="Why: shown in the user's credit history.")

    def handle(self, *args, username: str, cents: int, reason: str, **options) -> None:
        if cents == 0:
            raise CommandError("CENTS must not be zero.")
        if not reason.strip():
            raise CommandError("--reason must not be empty.")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            entry = credits_grant(
                user=user, amount_cents=cents, reason=reason.strip(), created_by="grant_credits"
            )
        except InsufficientCredits as exc:
            raise CommandError(
                f"Cannot take back {-cents} credits: {username} has only {exc.balance_cents}."
            ) from None
        self.stdout.write(str(entry.balance_after))
