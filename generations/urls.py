from django.urls import path

from generations import views

urlpatterns = [
    path("", views.home, name="home"),
    path("generate/", views.generate, name="generate"),
    path("generations/<uuid:generation_id>/", views.generation_detail, name="generation_detail"),
    path("generations/<uuid:generation_id>/status/", views.generation_status, name="generation_status"),
    path("generations/<uuid:generation_id>/poster.jpg", views.generation_poster, name="generation_poster"),
    path("generations/<uuid:generation_id>/share/", views.generation_share, name="generation_share"),
    path("generations/<uuid:generation_id>/delete/", views.generation_remove, name="generation_delete"),
    path("gallery/", views.gallery, name="gallery"),
    path("explore/", views.explore, name="explore"),
    path("v/<slug:slug>/", views.shared_video, name="shared_video"),
]
