"""Signed, expiring links to stored videos (CONTRACT §4 `video_url`): a plain GET works
without a session for VIDEO_URL_MAX_AGE_SECONDS, and the link names one generation."""

import re
from collections.abc import Iterator

from django.core.files.storage import FileSystemStorage, default_storage, storages
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    StreamingHttpResponse,
)

from generations.models import Generation
from generations.services import generation_id_from_video_token


def video_file(request: HttpRequest, token: str) -> HttpResponse:
    read = generation_id_from_video_token(token)
    if read is None:
        raise Http404("This video link is not valid or has expired.")
    generation_id, share_slug = read
    found = Generation.objects.visible().filter(pk=generation_id, status=Generation.Status.SUCCEEDED)
    if share_slug is not None:
        # A public link works only while the video is shared under the slug it was made for.
        found = found.filter(shared=True, share_slug=share_slug)
    generation = found.first()
    if generation is None or not generation.video:
        raise Http404("No such video.")
    response = serve_stored(
        generation.video.name, content_type="video/mp4", range_header=request.headers.get("Range")
    )
    if response.status_code in (200, 206):
        response["Content-Disposition"] = f'inline; filename="seedance-{generation.pk}.mp4"'
    return response


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
# Longer numbers name bytes far past any stored file (10**18 is an exabyte), and Python refuses to
# read integers of over 4,300 digits: either way such a range cannot be satisfied.
_MAX_DIGITS = 18
CHUNK = 256 * 1024


def serve_stored(name: str, *, content_type: str, range_header: str | None = None) -> HttpResponse:
    """Stream a stored file from a local disk, or send the browser to object storage's own
    signed URL (S3 and friends) rather than proxying the bytes through a web process.

    One byte range is honoured (206), because Safari on iPhones plays a video only from a server
    that answers ranges, and every browser needs them to seek."""
    if not isinstance(storages["default"], FileSystemStorage):
        return HttpResponseRedirect(default_storage.url(name))
    try:
        handle = default_storage.open(name, "rb")
    except FileNotFoundError:
        raise Http404("No such file.") from None
    size = default_storage.size(name)
    match = _RANGE.fullmatch((range_header or "").strip())
    if match and (len(match[1]) > _MAX_DIGITS or len(match[2]) > _MAX_DIGITS):
        handle.close()
        return _unsatisfiable(size)
    if match and (match[1] or match[2]):
        if match[1]:
            start, end = int(match[1]), int(match[2]) if match[2] else size - 1
        else:
            start, end = max(0, size - int(match[2])), size - 1
        if start >= size or end < start:
            handle.close()
            return _unsatisfiable(size)
        end = min(end, size - 1)
        handle.seek(start)
        response = StreamingHttpResponse(
            _read(handle, end - start + 1), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(handle, content_type=content_type)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _unsatisfiable(size: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{size}"
    return response


def _read(handle, length: int) -> Iterator[bytes]:
    try:
        while length > 0:
            chunk = handle.read(min(CHUNK, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()
