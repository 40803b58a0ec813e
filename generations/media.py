"""Signed, expiring links to stored videos (CONTRACT §4 `video_url`): a plain GET works
without a session for VIDEO_URL_MAX_AGE_SECONDS, and the link names one generation."""

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect

from generations.models import Generation
from generations.services import generation_id_from_video_token


def video_file(request: HttpRequest, token: str) -> HttpResponse:
    generation_id = generation_id_from_video_token(token)
    if generation_id is None:
        raise Http404("This video link is not valid or has expired.")
    generation = Generation.objects.filter(pk=generation_id, status=Generation.Status.SUCCEEDED).first()
    if generation is None or not generation.video:
        raise Http404("No such video.")
    storage = default_storage
    if not hasattr(storage, "path"):
        # Object storage: hand out the storage's own (signed) URL instead of proxying bytes.
        return HttpResponseRedirect(storage.url(generation.video.name))
    try:
        handle = storage.open(generation.video.name, "rb")
    except FileNotFoundError:
        raise Http404("No such video.") from None
    response = FileResponse(handle, content_type="video/mp4", filename=f"seedance-{generation.pk}.mp4")
    response["Content-Disposition"] = response["Content-Disposition"].replace("attachment", "inline")
    response["Cache-Control"] = "private, max-age=3600"
    response["Accept-Ranges"] = "none"
    return response
