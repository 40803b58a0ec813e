from django.urls import path, re_path

from generations import upload_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("generate/", views.generate, name="generate"),
    path("generations/<uuid:generation_id>/", views.generation_detail, name="generation_detail"),
    path("generations/<uuid:generation_id>/status/", views.generation_status, name="generation_status"),
    path("generations/<uuid:generation_id>/poster.jpg", views.generation_poster, name="generation_poster"),
    path("generations/<uuid:generation_id>/share/", views.generation_share, name="generation_share"),
    path("generations/<uuid:generation_id>/delete/", views.generation_remove, name="generation_delete"),
    path(
        "generations/<uuid:generation_id>/continue/",
        upload_views.generation_continue,
        name="generation_continue",
    ),
    path("uploads/new/", upload_views.upload_new, name="upload_new"),
    path("uploads/<uuid:upload_id>/thumb.jpg", upload_views.upload_thumbnail, name="upload_thumbnail"),
    path("uploads/<uuid:upload_id>/file", upload_views.upload_file, name="upload_file"),
    path("uploads/<uuid:upload_id>/delete/", upload_views.upload_remove, name="upload_delete"),
    # What ShortAPI fetches a generation's inputs by: a signed token, then the file's own extension.
    re_path(
        r"^inputs/(?P<token>[0-9a-f-]{36}:[0-9A-Za-z]+:[\w-]+)\.(?P<extension>[a-z0-9]{2,4})$",
        upload_views.input_file,
        name="input_file",
    ),
    path("generations/<uuid:generation_id>/cancel/", views.generation_cancel_view, name="generation_cancel"),
    path("generations/<uuid:generation_id>/tile/", views.generation_tile, name="generation_tile"),
    path("generations/watch/", views.generations_watch, name="generations_watch"),
    path("gallery/", views.gallery, name="gallery"),
    path("explore/", views.explore, name="explore"),
    path("v/<slug:slug>/", views.shared_video, name="shared_video"),
]
