from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from seedance_site.middleware import start_idle_clock

        # Session bookkeeping, not business logic: a new session starts its idle clock at login.
        user_logged_in.connect(start_idle_clock, dispatch_uid="seedance_site.start_idle_clock")
