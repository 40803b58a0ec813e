"""Web views for inputs (CONTRACT §4b): the studio's upload endpoint, the owner's previews, the
links the provider fetches inputs by, and a finished video's last frame as a new upload."""

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from generations import probe
from generations.media import serve_stored
from generations.models import Generation, Upload
from generations.pricing import ASPECT_RATIOS, MODES
from generations.selectors import generation_for_user
from generations.uploads import (
    NoFileSent,
    UploadingTooFast,
    UploadRefused,
    extension_of,
    upload_delete,
    upload_for_user,
    upload_from_request,
    upload_id_from_input_token,
    upload_last_frame,
    upload_visible_to,
)


def upload_item(upload: Upload) -> dict:
    """What the studio shows of an upload (a JSON object for its script, and its templates)."""
    if upload.kind == Upload.Kind.AUDIO:
        detail = f"{upload.duration_seconds:.1f} s sound"
    elif upload.kind == Upload.Kind.VIDEO:
        detail = f"{upload.duration_seconds:.1f} s video · {upload.width} × {upload.height}"
    else:
        detail = f"{upload.width} × {upload.height}"
    return {
        "id": str(upload.pk),
        "kind": upload.kind,
        "name": upload.original_name or f"{upload.kind}.{extension_of(upload)}",
        "detail": detail,
        "duration_seconds": float(upload.duration_seconds) if upload.duration_seconds is not None else None,
        "thumb_url": reverse("upload_thumbnail", args=[upload.pk]) if upload.thumbnail else None,
        "file_url": reverse("upload_file", args=[upload.pk]) if upload.file else None,
        "delete_url": reverse("upload_delete", args=[upload.pk]),
    }


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@csrf_exempt  # checked below, once the capped handler is in place (Django's documented pattern)
@require_POST
def upload_new(request: HttpRequest) -> HttpResponse:
    """The studio's uploads: its script posts one file and gets JSON back; without scripting the
    generate form posts here (with its fields) and comes back to the studio with the file chosen."""
    handler = probe.CappedUpload(request)
    request.upload_handlers = [handler]
    try:
        return _upload_new(request, handler)
    finally:
        handler.discard()


@csrf_protect
def _upload_new(request: HttpRequest, handler: probe.CappedUpload) -> HttpResponse:
    json = _wants_json(request)
    if not request.user.is_authenticated:
        if json:
            return JsonResponse({"error": {"message": "Log in to upload files."}}, status=401)
        return redirect(f"{reverse('login')}?next={reverse('generate')}")
    try:
        upload = upload_from_request(request=request, user=request.user, handler=handler)
    except (UploadRefused, NoFileSent, UploadingTooFast) as exc:
        status = 429 if isinstance(exc, UploadingTooFast) else 400
        if json:
            return JsonResponse({"error": {"message": exc.message}}, status=status)
        messages.error(request, exc.message)
        return redirect(_back_to_studio(request, None))
    if json:
        return JsonResponse({"upload": upload_item(upload)}, status=201)
    messages.success(request, f"“{upload_item(upload)['name']}” is uploaded and chosen below.")
    return redirect(_back_to_studio(request, upload))


def _back_to_studio(request: HttpRequest, upload: Upload | None) -> str:
    """The generate page again, with what the form held (as far as it was read) and the new file."""
    posted = request.POST
    params: list[tuple[str, str]] = []
    for name in ("prompt", "mode", "duration", "aspect_ratio", "first_last_frame"):
        if posted.get(name):
            params.append((name, posted[name][:2000]))
    for name in ("image_ids", "video_id", "audio_ids"):
        params += [(name, value) for value in posted.getlist(name)[:12]]
    if upload is not None:
        role = {"image": "image_ids", "video": "video_id", "audio": "audio_ids"}[upload.kind]
        if role == "video_id":
            params = [p for p in params if p[0] != "video_id"]
        params.append((role, str(upload.pk)))
    return reverse("generate") + ("?" + urlencode(params) if params else "") + "#inputs"


@login_required
@require_POST
def upload_remove(request: HttpRequest, upload_id: uuid.UUID) -> HttpResponse:
    upload = upload_for_user(user=request.user, upload_id=upload_id)
    upload_delete(upload=upload)
    if _wants_json(request):
        return JsonResponse({"deleted": str(upload_id)})
    messages.success(request, "The upload was deleted.")
    return redirect(reverse("generate") + "#inputs")


def upload_thumbnail(request: HttpRequest, upload_id: uuid.UUID) -> HttpResponse:
    upload = upload_visible_to(user=request.user, upload_id=upload_id)
    if not upload.thumbnail:
        raise Http404("This upload has no picture.")
    response = serve_stored(upload.thumbnail.name, content_type="image/jpeg")
    if isinstance(response, FileResponse):
        response["Cache-Control"] = "private, max-age=3600"
    return response


def upload_file(request: HttpRequest, upload_id: uuid.UUID) -> HttpResponse:
    upload = upload_visible_to(user=request.user, upload_id=upload_id)
    if not upload.file:
        raise Http404("This upload's file was removed.")
    return serve_stored(
        upload.file.name, content_type=upload.content_type, range_header=request.headers.get("Range")
    )


def input_file(request: HttpRequest, token: str, extension: str) -> HttpResponse:
    """The link ShortAPI fetches an input by (CONTRACT §4b): no session, the signed token is the key,
    and it expires INPUT_URL_MAX_AGE_SECONDS after the generation was made."""
    upload_id = upload_id_from_input_token(token)
    if upload_id is None:
        raise Http404("This link is not valid or has expired.")
    upload = Upload.objects.filter(pk=upload_id).exclude(file="").first()
    if upload is None or extension_of(upload) != extension:
        raise Http404("No such file.")
    response = serve_stored(
        upload.file.name, content_type=upload.content_type, range_header=request.headers.get("Range")
    )
    if response.status_code in (200, 206):
        response["Content-Disposition"] = f'inline; filename="input.{extension}"'
    return response


@login_required
@require_POST
def generation_continue(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    """Continue from the last frame: the video's last frame becomes an image upload, and the studio
    opens in image-to-video with it (nothing is spent until the person presses Generate)."""
    generation = generation_for_user(user=request.user, generation_id=generation_id)
    if generation.status != Generation.Status.SUCCEEDED or not generation.video:
        messages.error(request, "Only a finished video can be continued.")
        return redirect("generation_detail", generation_id=generation.pk)
    try:
        frame = upload_last_frame(generation=generation)
    except UploadRefused as exc:
        messages.error(request, f"The last frame could not be taken: {exc.message}")
        return redirect("generation_detail", generation_id=generation.pk)
    messages.success(request, "The video's last frame is your first image. Describe what happens next.")
    params = {
        "prompt": generation.prompt,
        "mode": generation.mode if generation.mode in MODES else "std",
        "duration": generation.duration,
        "aspect_ratio": generation.aspect_ratio if generation.aspect_ratio in ASPECT_RATIOS else "16:9",
        "image_ids": str(frame.pk),
    }
    return redirect(reverse("generate") + "?" + urlencode(params) + "#inputs")
