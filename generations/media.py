"""Signed, expiring links to stored videos (CONTRACT §4 `video_url`): a plain GET works
without a session for VIDEO_URL_MAX_AGE_SECONDS, and the link names one generation."""

from django.core.files.storage import FileSystemStorage, default_storage, storages
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
    response = serve_stored(generation.video.name, content_type="video/mp4")
    if isinstance(response, FileResponse):
        response["Content-Disposition"] = f'inline; filename="seedance-{generation.pk}.mp4"'
    return response


def serve_stored(name: str, *, content_type: str) -> HttpResponse:
    """Stream a stored file from a local disk, or send the browser to object storage's own
    signed URL (S3 and friends) rather than proxying the bytes through a web process."""
    if not isinstance(storages["default"], FileSystemStorage):
        return HttpResponseRedirect(default_storage.url(name))
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("No such file.") from None
    response = FileResponse(handle, content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response
