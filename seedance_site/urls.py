from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from accounts import api as accounts_api
from generations import admin_views, media, webhooks
from generations import api as generations_api
from seedance_site import views

api_v1 = [
    path("pricing", generations_api.pricing, name="api_pricing"),
    path("account", accounts_api.account, name="api_account"),
    path("generations", generations_api.generations, name="api_generations"),
    path("generations/<str:generation_id>", generations_api.generation_detail, name="api_generation"),
    path("", include("seedance_site.openapi")),  # openapi.json (name api_openapi)
]

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("api/v1/", include(api_v1)),
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/shortapi/<str:token>/", webhooks.shortapi_callback, name="shortapi_callback"),
    path("videos/<str:token>.mp4", media.video_file, name="video_file"),
    path("admin/overview/", admin_views.overview, name="admin_overview"),
    path("admin/django-rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("", include("accounts.billing_urls")),
    path("", include("generations.urls")),
]

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

handler404 = "seedance_site.views.page_not_found"
handler500 = "seedance_site.views.server_error"
