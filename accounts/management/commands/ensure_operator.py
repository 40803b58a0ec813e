from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import User


class Command(BaseCommand):
    help = (
        "Development only: make sure the local operator login (admin/admin, a superuser) exists. "
        "Safe to run again. In production make operators with `manage.py createsuperuser` (README)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="admin")

    def handle(self, *args, username: str, password: str, **options) -> None:
        if not settings.DEBUG:
            # A login whose password is printed in the README has no place on a real server.
            raise CommandError(
                "ensure_operator makes a login with a known password, for development only "
                "(DJANGO_DEBUG=1). In production run `manage.py createsuperuser`."
            )
        user = User.objects.filter(username__iexact=username).first()
        if user is None:
            # A made-up address, so marked confirmed: nobody can open a link sent to it.
            user = User.objects.create_superuser(
                username=username, email=f"{username}@example.com", password=password
            )
            user.email_verified_at = timezone.now()
            user.save(update_fields=["email_verified_at"])
        elif not (user.is_staff and user.is_superuser and user.is_active):
            raise CommandError(
                f"A user named {user.username!r} exists and is not an operator; "
                "choose another name with --username."
            )
        self.stdout.write(f"operator ready: log in at /admin/ as {user.username}/{password}")
