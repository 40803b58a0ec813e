from django.core.management.base import BaseCommand

from generations.jobs import reconcile


class Command(BaseCommand):
    help = "Resume or fail (and refund) generations stuck past their deadline or lost by a worker."

    def handle(self, *args, **options) -> None:
        for line in reconcile():
            self.stdout.write(line)
