from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import TemplateView

from accounts import api as accounts_api
from generations import api as generations_api
from seedance_site import views

api_v1 = [
    path("pricing", generations_api.pricing, name="api_pricing"),
    path("account", accounts_api.account, name="api_account"),
]

urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include(api_v1)),
    path("healthz", views.healthz, name="healthz"),
    path("admin/django-rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
