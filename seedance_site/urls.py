from django.contrib import admin
from django.urls import include, path

from generations import admin_views, media, webhooks
from seedance_site import api, views
from seedance_site.admin import queue_urlpatterns

# One router per app; the paths, schemas and the document come from their modules.
api.api.add_router("", "generations.api.router")
api.api.add_router("", "generations.uploads_api.router")
api.api.add_router("", "accounts.api.router")
api.api.add_router("", "accounts.billing.api.router")

urlpatterns = [
    path("accounts/", include("accounts.urls")),
    path("api/v1/", api.urls()),
    path("healthz", views.healthz, name="healthz"),
    path("webhooks/shortapi/<str:token>/", webhooks.shortapi_callback, name="shortapi_callback"),
    path("videos/<str:token>.mp4", media.video_file, name="video_file"),
    path("admin/overview/", admin_views.overview, name="admin_overview"),
    path("admin/django-rq/", include((queue_urlpatterns(), "django_rq"))),
    path("admin/", admin.site.urls),
    path("", include("accounts.billing.urls")),
    path("", include("generations.urls")),
]

# No /media/ route in any mode, DEBUG included: stored videos and posters are reached only through
# the views above that check who may see them (signed links, owner or shared).

handler404 = "seedance_site.views.page_not_found"
handler500 = "seedance_site.views.server_error"
