"""Uploads: a user's own images, videos and sounds, the inputs of image-to-video and omni-reference
(CONTRACT §4b). Writes (`upload_create`, `upload_delete`, `uploads_sweep`), reads (`..._for_user`),
the inputs of one generation (`Inputs`), and the signed links the provider fetches them by.

Who keeps what, and for how long:
- An upload nobody has used is deleted outright, row and files: by its owner, or by the sweeper
  once it has lain unused for UPLOAD_UNUSED_DAYS.
- An upload a generation used is only marked deleted (gone from "Your uploads", 404 in the API,
  refused as an input): the generation's record of its inputs names the row, and its file stays
  while any generation that used it is not deleted, because the video page, the gallery and the
  admin show what a video was made from. Once all of those are deleted, the sweeper removes the
  file; the row, with its kind, size and length, stays for the audit.
"""

import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from generations import probe
from generations.models import Generation, GenerationInput, Upload
from generations.pricing import IMAGE_TO_VIDEO, OMNI_REFERENCE, TEXT_TO_VIDEO, input_seconds
from seedance_site.ratelimits import over_user_limit

logger = logging.getLogger(__name__)

INPUT_SALT = "generations.input-url"
MAX_NAME = 200


class UploadRefused(Exception):
    """The file is not taken (CONTRACT §4b: 400 `invalid_upload`); nothing was kept."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NoFileSent(Exception):
    """The request carried no file in the field `file` (400 `invalid_upload`, naming `file`)."""

    message = "Send the file as multipart/form-data, in the form field “file”."


class UploadingTooFast(Exception):
    message = "You are uploading files too fast. Wait a while, then try again."


# --- Writes -----------------------------------------------------------------------------------


def upload_from_request(
    *, request: HttpRequest, user: User, handler: probe.CappedUpload | None = None
) -> Upload:
    """Read the one file of a multipart request and keep it, or raise UploadRefused, NoFileSent or
    UploadingTooFast, leaving nothing behind. The capped handler must be in place before anything
    reads the request's body: pass the one installed already (a view that checks CSRF first), or
    none, and one is installed here."""
    if handler is None:
        handler = probe.CappedUpload(request)
        request.upload_handlers = [handler]
    try:
        try:
            uploaded = request.FILES.get("file")
        except MultiPartParserError:
            raise NoFileSent() from None
        if handler.refusal:
            raise UploadRefused(handler.refusal)
        if uploaded is None or handler.sniffed is None or handler.target is None:
            raise NoFileSent()
        # Counted once the request is read, and only for a file that is there to keep.
        if over_user_limit(request, group="upload", rate=settings.UPLOAD_RATE_LIMIT):
            raise UploadingTooFast()
        return upload_create(
            user=user, path=handler.target.name, sniffed=handler.sniffed, original_name=uploaded.name or ""
        )
    finally:
        handler.discard()


def upload_create(*, user: User, path: str, sniffed: str, original_name: str = "") -> Upload:
    """Inspect the file at `path` (read as the format `sniffed` from its first bytes) and store
    a clean copy of it; raise UploadRefused when it is not taken."""
    workdir = Path(tempfile.mkdtemp(prefix="seedance-probe-", dir=settings.FILE_UPLOAD_TEMP_DIR))
    stored: list[str] = []
    try:
        try:
            inspected = probe.inspect(path, sniffed, workdir)
        except probe.Refused as exc:
            raise UploadRefused(exc.message) from None
        upload_id = uuid.uuid4()
        now = timezone.now()
        base = f"uploads/{now:%Y/%m}/{upload_id}"
        with inspected.clean_path.open("rb") as clean:
            stored.append(default_storage.save(f"{base}.{inspected.extension}", File(clean)))
        if inspected.thumbnail:
            stored.append(default_storage.save(f"{base}-thumb.jpg", ContentFile(inspected.thumbnail)))
        upload = Upload.objects.create(
            id=upload_id,
            user=user,
            kind=inspected.kind,
            content_type=inspected.content_type,
            size_bytes=inspected.clean_path.stat().st_size,
            width=inspected.width,
            height=inspected.height,
            duration_seconds=inspected.duration_seconds,
            codec=inspected.codec[:40],
            original_name=original_name[:MAX_NAME],
            file=stored[0],
            thumbnail=stored[1] if len(stored) > 1 else "",
            created_at=now,
        )
    except BaseException:
        _delete_files(stored)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    logger.info("upload %s: %s %s, %s bytes, for %s", upload.pk, upload.kind, upload.content_type,
                upload.size_bytes, user.username)  # fmt: skip
    return upload


def upload_from_file(*, user: User, path: str, original_name: str) -> Upload:
    """Keep a file we made ourselves (a video's last frame) as an upload, checked like any other."""
    with open(path, "rb") as source:
        sniffed = probe.sniff(source.read(probe.SNIFF_BYTES))
    if sniffed is None:
        raise UploadRefused(probe.NOT_ACCEPTED)
    return upload_create(user=user, path=path, sniffed=sniffed, original_name=original_name)


def upload_last_frame(*, generation: Generation) -> Upload:
    """The last frame of a finished video, as an image upload of its owner's (Continue from the last
    frame). A frame under the 300 px an input needs (the simulator's small videos) is scaled up."""
    from PIL import Image

    workdir = Path(tempfile.mkdtemp(prefix="seedance-frame-", dir=settings.FILE_UPLOAD_TEMP_DIR))
    try:
        video = workdir / "video.mp4"
        with default_storage.open(generation.video.name, "rb") as stored, video.open("wb") as out:
            shutil.copyfileobj(stored, out, 1024 * 1024)
        frame = workdir / "frame.png"
        # Seek near the end and keep overwriting one picture: what is left is the last frame.
        result = probe._run(
            [
                "-v",
                "error",
                "-y",
                "-sseof",
                "-1",
                "-i",
                str(video),
                "-update",
                "1",
                "-f",
                "image2",
                str(frame),
            ]
        )
        if result.returncode != 0 or not frame.exists():
            raise UploadRefused("The video's last frame could not be read.")
        with Image.open(frame) as image:
            short = min(image.size)
            if short < probe.IMAGE_MIN_SIDE:
                scale = probe.IMAGE_MIN_SIDE / short
                size = (round(image.width * scale), round(image.height * scale))
                image.resize(size, Image.Resampling.LANCZOS).save(frame)
        name = f"last-frame-{str(generation.pk)[:8]}.png"
        return upload_from_file(user=generation.user, path=str(frame), original_name=name)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.exception("could not delete stored upload file %s", name)


def upload_delete(*, upload: Upload) -> bool:
    """Delete an upload for its owner (or the sweeper). True when the row went too; False when a
    generation used it, so it is only marked deleted (see the module's docstring)."""
    with transaction.atomic():
        row = Upload.objects.select_for_update().filter(pk=upload.pk, deleted_at__isnull=True).first()
        if row is None:
            return False
        if GenerationInput.objects.filter(upload=row).exists():
            Upload.objects.filter(pk=row.pk).update(deleted_at=timezone.now())
            return False
        names = [name for name in (row.file.name, row.thumbnail.name) if name]
        row.delete()
        # Only once the delete is committed: a rolled-back one keeps its files.
        transaction.on_commit(lambda: _delete_files(names))
    return True


def uploads_sweep(*, limit: int = 200) -> list[str]:
    """Remove uploads unused for UPLOAD_UNUSED_DAYS, and the files of deleted uploads that no
    visible generation shows any more. One line per upload touched; `limit` bounds each run."""
    lines: list[str] = []
    cutoff = timezone.now() - timedelta(days=settings.UPLOAD_UNUSED_DAYS)
    stale = (
        Upload.objects.live()
        .annotate(last_touch=Coalesce("last_used_at", "created_at"))
        .filter(last_touch__lt=cutoff)
        .only("id")[:limit]
    )
    for upload in stale:
        gone = upload_delete(upload=upload)
        lines.append(f"upload {upload.pk} unused for {settings.UPLOAD_UNUSED_DAYS} days: " +
                     ("deleted" if gone else "marked deleted"))  # fmt: skip
    shown = GenerationInput.objects.filter(upload=OuterRef("pk"), generation__deleted_at__isnull=True)
    orphaned = Upload.objects.filter(deleted_at__isnull=False).exclude(file="").filter(~Exists(shown))
    for upload in orphaned.only("id", "file", "thumbnail")[:limit]:
        names = [name for name in (upload.file.name, upload.thumbnail.name) if name]
        # Only a row still without a visible generation: the claim and the check are one statement.
        if (
            Upload.objects.filter(pk=upload.pk)
            .exclude(file="")
            .filter(~Exists(shown))
            .update(file="", thumbnail="")
        ):
            _delete_files(names)
            lines.append(f"upload {upload.pk}: file removed (no visible generation shows it)")
    return lines


# --- Reads ------------------------------------------------------------------------------------


def upload_for_user(*, user: User, upload_id: object) -> Upload:
    """The user's own upload (not deleted), or 404: another user's looks like none."""
    try:
        return Upload.objects.live().get(pk=upload_id, user=user)
    except (Upload.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such upload.") from None


def uploads_for_user(*, user: User) -> "list[Upload]":
    return list(Upload.objects.live().filter(user=user).order_by("-created_at", "-id")[:60])


def upload_visible_to(*, user: User | AnonymousUser, upload_id: object) -> Upload:
    """For the files and thumbnails our own pages show: the owner (deleted uploads too, while a
    generation still shows them), or an operator who may view uploads; 404 for anybody else."""
    if not user.is_authenticated:
        raise Http404("No such upload.")
    visible = Q() if user.has_perm("generations.view_upload") else Q(user=user)
    try:
        return Upload.objects.filter(visible).get(pk=upload_id)
    except (Upload.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such upload.") from None


# --- One generation's inputs ----------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What a generation is made from, checked by GenerationForm (CONTRACT §4b)."""

    images: tuple[Upload, ...] = ()
    video: Upload | None = None
    audios: tuple[Upload, ...] = ()
    first_last_frame: bool = False

    @property
    def model(self) -> str:
        if self.video is not None:
            return OMNI_REFERENCE
        return IMAGE_TO_VIDEO if self.images else TEXT_TO_VIDEO

    @property
    def input_seconds(self) -> int:
        return input_seconds(self.video.duration_seconds) if self.video is not None else 0

    def slots(self) -> Iterator[tuple[str, int, Upload]]:
        for position, image in enumerate(self.images):
            yield GenerationInput.Role.IMAGE, position, image
        if self.video is not None:
            yield GenerationInput.Role.VIDEO, 0, self.video
        for position, audio in enumerate(self.audios):
            yield GenerationInput.Role.AUDIO, position, audio

    @property
    def count(self) -> int:
        return len(self.images) + (self.video is not None) + len(self.audios)


NO_INPUTS = Inputs()


def inputs_record(*, generation: Generation, inputs: Inputs) -> None:
    """Write which uploads the generation uses, and note them as used (inside its transaction).

    The rows written are all the inputs a new generation has, so they become its prefetched
    `inputs`, as prefetch_related would have set them: the answer that lists them (image_ids,
    video_id, audio_ids) needs no query to read back what was just written."""
    rows = GenerationInput.objects.bulk_create(
        GenerationInput(generation=generation, upload=upload, role=role, position=position)
        for role, position, upload in inputs.slots()
    )
    prefetched = generation.inputs.all()
    prefetched._result_cache, prefetched._prefetch_done = rows, True
    generation._prefetched_objects_cache = {"inputs": prefetched}
    ids = {upload.pk for _, _, upload in inputs.slots()}
    if ids:
        Upload.objects.filter(pk__in=ids).update(last_used_at=timezone.now())


# --- Links the provider fetches inputs by -------------------------------------------------------


class _SignerAt(signing.TimestampSigner):
    """A timestamp signer whose time is given: a generation's input links are the same whenever
    they are built (at submit, or when a callback's job is checked against the request), and
    expire INPUT_URL_MAX_AGE_SECONDS after the generation was made."""

    def __init__(self, at: datetime, **kwargs: object) -> None:
        self._at = int(at.timestamp())
        super().__init__(**kwargs)  # type: ignore[arg-type]

    def timestamp(self) -> str:
        return signing.b62_encode(self._at)


def extension_of(upload: Upload) -> str:
    return Path(upload.file.name).suffix.lstrip(".").lower() or "bin"


def input_url(upload: Upload, *, generation: Generation) -> str:
    """The absolute, unguessable link ShortAPI fetches this input by, for this generation."""
    token = _SignerAt(generation.created_at, salt=INPUT_SALT).sign(str(upload.pk))
    path = reverse("input_file", kwargs={"token": token, "extension": extension_of(upload)})
    return f"{settings.SITE_URL}{path}"


def upload_id_from_input_token(token: str) -> str | None:
    try:
        return signing.TimestampSigner(salt=INPUT_SALT).unsign(
            token, max_age=settings.INPUT_URL_MAX_AGE_SECONDS
        )
    except signing.BadSignature:
        return None


def generation_input_urls(generation: Generation) -> dict[str, list[str]]:
    """A generation's inputs as links, by role, in order."""
    urls: dict[str, list[str]] = {"image": [], "video": [], "audio": []}
    for item in generation.inputs.select_related("upload").order_by("role", "position"):
        urls[item.role].append(input_url(item.upload, generation=generation))
    return urls
