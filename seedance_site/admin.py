"""The operators' admin site: Django's, with the portal's login limit on its login page, and the
named permissions that guard the operator pages beside it."""

from collections.abc import Callable

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

View = Callable[..., HttpResponse]


class AdminSite(admin.AdminSite):
    site_header = "Seedance Studio operations"
    site_title = "Seedance Studio operations"
    # The app list beside every page takes a quarter of a laptop's width from the lists operators
    # read most; the home page and the breadcrumbs lead everywhere it does.
    enable_nav_sidebar = False

    @property
    def login_form(self) -> type:
        # Imported late: the admin site is built before the apps' models are ready.
        from accounts.forms import AdminLoginForm

        return AdminLoginForm

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # What the server lacks is said here, to operators, in operator words: users' pages only
        # say that a thing is not available.
        from django.contrib import messages

        for note in setup_notes():
            messages.warning(request, note)
        return super().index(request, extra_context)

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from accounts.forms import answer_429_if_limited

        return answer_429_if_limited(super().login(request, extra_context))


def setup_notes() -> list[str]:
    """What an operator must set for every part of the portal to work (see the README)."""
    from django.conf import settings

    from accounts.billing.stripe_client import missing_settings

    notes = []
    if missing := missing_settings():
        notes.append(
            f"Buying credits is off: set {' and '.join(missing)} (README, “Configuration”). "
            "Users see only that buying is not available; grant credits meanwhile with "
            "“manage.py grant_credits”."
        )
    if not settings.SHORTAPI_KEY:
        notes.append("Making videos is off: set SHORTAPI_KEY (README, “Configuration”).")
    return notes


# Named permissions (superusers have every one). Being staff is not enough for either: the overview
# shows revenue and margin, and the queues can empty, delete, requeue and stop jobs.
OVERVIEW_PERMISSION = "generations.view_overview"
QUEUES_PERMISSION = "generations.manage_queues"


def local_time(field: str, description: str) -> Callable[[object, object], str]:
    """A list column showing a time in the reader's own zone (static/js/localtime.js), sortable."""
    from generations.templatetags.when import when

    @admin.display(description=description, ordering=field)
    def column(model_admin: object, obj: object) -> str:
        return when(getattr(obj, field)) or "—"

    return column


def operator_view(permission: str) -> Callable[[View], View]:
    """Staff only (others go to the admin login), and then 403 unless they hold `permission`."""

    def decorate(view: View) -> View:
        return staff_member_required(permission_required(permission, raise_exception=True)(view))

    return decorate


def queue_urlpatterns() -> list[URLPattern]:
    """django-rq's dashboard, every view of it (its JSON stats too) behind QUEUES_PERMISSION."""
    from django_rq.urls import get_admin_urlpatterns, get_api_urlpatterns

    guard = operator_view(QUEUES_PERMISSION)
    return [
        URLPattern(p.pattern, guard(p.callback), p.default_args, p.name)
        for p in get_api_urlpatterns() + get_admin_urlpatterns()
    ]
