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

    @property
    def login_form(self) -> type:
        # Imported late: the admin site is built before the apps' models are ready.
        from accounts.forms import AdminLoginForm

        return AdminLoginForm

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from accounts.forms import answer_429_if_limited

        return answer_429_if_limited(super().login(request, extra_context))


# Named permissions (superusers have every one). Being staff is not enough for either: the overview
# shows revenue and margin, and the queues can empty, delete, requeue and stop jobs.
OVERVIEW_PERMISSION = "generations.view_overview"
QUEUES_PERMISSION = "generations.manage_queues"


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
