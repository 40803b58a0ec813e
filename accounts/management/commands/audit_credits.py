from django.core.management.base import BaseCommand, CommandError

from accounts.billing.audit import audit_mismatches


class Command(BaseCommand):
    help = "Check that every balance equals its ledger and every generation is charged/refunded once."

    def handle(self, *args, **options) -> None:
        problems = audit_mismatches()
        if problems:
            for problem in problems:
                self.stdout.write(problem)
            raise CommandError(f"{len(problems)} mismatch(es) found.")
        self.stdout.write("OK: every balance matches its ledger; every generation is settled once.")
