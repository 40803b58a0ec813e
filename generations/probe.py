"""Reading an uploaded file (CONTRACT §4b). Its kind comes from its content, never from its name or
the Content-Type the client sent.

- While the request is read, `CappedUpload` (an upload handler) looks at the file's first bytes,
  knows which kind they claim and so which size cap applies, and stops reading the moment the
  file passes it: nothing over the cap is ever written anywhere.
- Then `inspect` reads it for real: images with Pillow (verified, then decoded whole; decompression
  bombs refused before any pixel is decoded), video and audio with the ffmpeg that imageio-ffmpeg
  ships (ffprobe is not shipped), always with the demuxer the first bytes named and local files
  only, so a crafted file cannot make ffmpeg open a playlist or a URL.
- What is stored is a clean copy: images re-encoded with the orientation applied and without EXIF,
  XMP or GPS; videos and audio remuxed without their metadata (a phone's clip carries its GPS
  position too). Nothing of the original leaves for a third party.
"""

import io
import re
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload

MIB = 1024 * 1024
IMAGE_MAX_BYTES = 10 * MIB
VIDEO_MAX_BYTES = 50 * MIB
AUDIO_MAX_BYTES = 15 * MIB
IMAGE_MIN_SIDE = 300
IMAGE_MAX_SIDE = 6000
VIDEO_MIN_SECONDS = Decimal(2)
VIDEO_MAX_SECONDS = Decimal(15)
AUDIO_MAX_SECONDS = Decimal(15)
THUMBNAIL_BOX = 320
# The form fields beside the file (none today, a CSRF token on the web) fit in this much.
FORM_OVERHEAD_BYTES = 64 * 1024

ACCEPTED_TEXT = "Upload a JPEG, PNG or WebP image, an MP4 or MOV video, or an MP3, WAV or M4A sound."
NOT_ACCEPTED = f"This file is not an image, video or sound we can take. {ACCEPTED_TEXT}"
# What the first bytes say -> the cap that applies while reading. MP4, MOV and M4A share one
# container; which of them it is (and so the audio cap) is known only once ffmpeg has read it.
SNIFFED_CAPS = {
    "jpeg": IMAGE_MAX_BYTES,
    "png": IMAGE_MAX_BYTES,
    "webp": IMAGE_MAX_BYTES,
    "mov": VIDEO_MAX_BYTES,
    "mp3": AUDIO_MAX_BYTES,
    "wav": AUDIO_MAX_BYTES,
}
SNIFF_BYTES = 16


class Refused(Exception):
    """The file is not taken; `message` says why, for the person who sent it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _mib(size: int) -> str:
    return f"{size // MIB} MiB"


def too_large_message(sniffed: str) -> str:
    cap = SNIFFED_CAPS[sniffed]
    what = {IMAGE_MAX_BYTES: "Images", VIDEO_MAX_BYTES: "Videos", AUDIO_MAX_BYTES: "Sounds"}[cap]
    return f"This file is too large: {what.lower()} may be at most {_mib(cap)}."


def sniff(head: bytes) -> str | None:
    """The format the first bytes claim: a hint for the cap and the demuxer, checked later."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    # ISO base media (MP4, M4A) and QuickTime: the first box is usually `ftyp`, in older QuickTime
    # files sometimes `wide`, `free` or `moov`.
    if head[4:8] in (b"ftyp", b"wide", b"free", b"moov", b"mdat", b"skip"):
        return "mov"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


# --- Reading the request ----------------------------------------------------------------------


class DropFiles(FileUploadHandler):
    """The site-wide handler (FILE_UPLOAD_HANDLERS): a file posted anywhere but the upload
    endpoints is skipped unread, so no other URL can be made to store one."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        raise SkipFile()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        return None

    def file_complete(self, file_size: int) -> None:
        return None


class CappedUpload(FileUploadHandler):
    """One file, from the form field `file`, into a temporary file; refusals are kept in
    `refusal` for the view to answer (Django ends the parse, and the temporary file is gone)."""

    chunk_size = 64 * 1024

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.refusal: str | None = None
        self.sniffed: str | None = None
        self.target: Any = None  # not `file`: Django closes a handler's `file` on any skip
        self.size = 0
        self._head = b""

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ):
        # A body larger than the largest file plus its form is refused before a byte is read.
        if content_length > VIDEO_MAX_BYTES + FORM_OVERHEAD_BYTES:
            self.refusal = f"This file is too large: nothing over {_mib(VIDEO_MAX_BYTES)} is taken."
            from django.http import QueryDict
            from django.utils.datastructures import MultiValueDict

            return QueryDict(), MultiValueDict()
        return None

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, *args, **kwargs)
        if field_name != "file" or self.target is not None:
            self._refuse("Send one file, in the form field “file”.")
        self.target = tempfile.NamedTemporaryFile(
            prefix="seedance-upload-", dir=settings.FILE_UPLOAD_TEMP_DIR
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self.sniffed is None:
            self._head += raw_data[: SNIFF_BYTES - len(self._head)]
            if len(self._head) < SNIFF_BYTES:
                self.target.write(raw_data)
                self.size += len(raw_data)
                return None
            self._decide()
        self.size += len(raw_data)
        if self.size > SNIFFED_CAPS[self.sniffed]:
            self._refuse(too_large_message(self.sniffed))
        self.target.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile:
        if self.sniffed is None:
            self._decide()  # a file shorter than SNIFF_BYTES
        self.target.flush()
        self.target.seek(0)
        return UploadedFile(self.target, name=self.file_name, content_type=self.content_type, size=self.size)

    def _decide(self) -> None:
        self.sniffed = sniff(self._head)
        if self.sniffed is None:
            self._refuse(NOT_ACCEPTED)

    def _refuse(self, message: str) -> None:
        self.refusal = message
        self.discard()
        # Stop reading the request here: the rest of the file is never read, let alone stored.
        raise StopUpload(connection_reset=True)

    def discard(self) -> None:
        if self.target is not None:
            self.target.close()  # a NamedTemporaryFile: closing removes it


# --- Reading the file -------------------------------------------------------------------------


@dataclass
class Inspected:
    kind: str  # image | video | audio
    content_type: str
    extension: str
    width: int | None
    height: int | None
    duration_seconds: Decimal | None
    codec: str
    clean_path: Path  # the copy to store: metadata stripped
    thumbnail: bytes | None  # a small JPEG, for images and videos


def inspect(path: str, sniffed: str, workdir: Path) -> Inspected:
    """Read the file at `path` as the kind its first bytes claimed; raise Refused, or return what
    it is with a clean copy (in `workdir`) to store."""
    if sniffed in ("jpeg", "png", "webp"):
        return _image(path, workdir)
    return _media(path, sniffed, workdir)


_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_IMAGE_TYPES = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


def _image(path: str, workdir: Path) -> Inspected:
    from PIL import Image, ImageOps, UnidentifiedImageError

    # Pillow refuses (DecompressionBombError) an image over twice this many pixels as it opens it,
    # and warns over once; the warning is made an error below. Both come before any decoding.
    Image.MAX_IMAGE_PIXELS = IMAGE_MAX_SIDE * IMAGE_MAX_SIDE
    unreadable = "This image could not be read: the file looks damaged or incomplete."
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path, formats=list(_PIL_FORMATS.values())) as probe:
                fmt = probe.format or ""
                width, height = probe.size
                _check_sides(width, height)
                probe.verify()
            with Image.open(path, formats=[fmt]) as opened:
                opened.load()
                icc = opened.info.get("icc_profile")
                image = ImageOps.exif_transpose(opened)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Refused(
                f"This image has too many pixels: images may be at most {IMAGE_MAX_SIDE:,} px on each side."
            ) from None
        except UnidentifiedImageError:
            raise Refused(NOT_ACCEPTED) from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise Refused(unreadable) from None
    content_type, extension = _IMAGE_TYPES[fmt]
    # Rotated by its EXIF orientation, so the sides may have swapped.
    width, height = image.size
    _check_sides(width, height)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if fmt == "JPEG":
        clean = image.convert("RGB")
    else:
        clean = image.convert("RGBA" if has_alpha else "RGB")
    # A fresh image carries no `info` (EXIF, XMP, comments, text chunks) into the encoder; only the
    # colour profile is kept, which names a colour space, not a person or a place.
    clean = Image.frombytes(clean.mode, clean.size, clean.tobytes())
    options: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        options.update(quality=92)
    elif fmt == "WEBP":
        options.update(quality=90)
    clean_path = workdir / f"clean.{extension}"
    clean.save(clean_path, fmt, **options)
    return Inspected(
        kind="image",
        content_type=content_type,
        extension=extension,
        width=width,
        height=height,
        duration_seconds=None,
        codec=fmt.lower(),
        clean_path=clean_path,
        thumbnail=_thumbnail(clean),
    )


def _check_sides(width: int, height: int) -> None:
    if min(width, height) < IMAGE_MIN_SIDE:
        raise Refused(
            f"This image is {width} × {height} px: images must be at least {IMAGE_MIN_SIDE} px on each side."
        )
    if max(width, height) > IMAGE_MAX_SIDE:
        raise Refused(
            f"This image is {width:,} × {height:,} px: "
            f"images may be at most {IMAGE_MAX_SIDE:,} px on each side."
        )


def _thumbnail(image: Any) -> bytes:
    from PIL import Image

    small = image.copy()
    small.thumbnail((THUMBNAIL_BOX, THUMBNAIL_BOX))
    if small.mode != "RGB":
        background = Image.new("RGB", small.size, (255, 255, 255))
        background.paste(small, mask=small.getchannel("A") if "A" in small.getbands() else None)
        small = background
    out = io.BytesIO()
    small.save(out, "JPEG", quality=80)
    return out.getvalue()


# --- ffmpeg -----------------------------------------------------------------------------------

VIDEO_CODECS = {"h264", "hevc", "av1", "vp9", "mpeg4"}
AUDIO_CODECS = {"mp3": {"mp3"}, "wav": None, "m4a": {"aac", "alac"}}  # None: any PCM
_INPUT = re.compile(r"^Input #0, ([\w,]+), from", re.MULTILINE)
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_BRAND = re.compile(r"major_brand\s*:\s*(\S+)")
_STREAM = re.compile(r"Stream #0:\d+\S*: (Video|Audio): (\w+)([^\n]*)")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})[ ,\[]")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(args: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # Local files only: a crafted file cannot make ffmpeg reach for a URL or another file.
    return subprocess.run(
        [ffmpeg(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class _Streams:
    container: str
    brand: str
    duration: Decimal | None
    video: tuple[str, int, int] | None  # codec, width, height (as displayed)
    audio: str | None  # codec


def _probe(path: str, demuxer: str) -> _Streams | None:
    try:
        result = _run(["-f", demuxer, "-i", path], timeout=30)
    except subprocess.TimeoutExpired:
        return None
    text = result.stderr
    container = _INPUT.search(text)
    if container is None:
        return None
    duration = None
    if match := _DURATION.search(text):
        hours, minutes, seconds = match.groups()
        duration = Decimal(hours) * 3600 + Decimal(minutes) * 60 + Decimal(seconds)
    video = audio = None
    for kind, codec, rest in _STREAM.findall(text):
        if kind == "Video" and video is None and "(attached pic)" not in rest:
            size = _SIZE.search(rest + " ")
            width, height = (int(size[1]), int(size[2])) if size else (0, 0)
            video = (codec, width, height)
        elif kind == "Audio" and audio is None:
            audio = codec
    if video is not None and (rotation := _ROTATION.search(text)) and round(float(rotation[1])) % 180:
        video = (video[0], video[2], video[1])  # a phone's portrait clip, stored sideways
    brand = _BRAND.search(text)
    return _Streams(container[1], brand[1] if brand else "", duration, video, audio)


def _seconds(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.1'))} s"


def _media(path: str, sniffed: str, workdir: Path) -> Inspected:
    streams = _probe(path, sniffed)
    if streams is None or (streams.video is None and streams.audio is None):
        raise Refused(NOT_ACCEPTED if streams is None else "This file has no picture or sound in it.")
    if sniffed == "mov" and streams.video is not None:
        return _video(path, streams, workdir)
    if streams.audio is None:
        raise Refused(NOT_ACCEPTED)
    return _audio(path, sniffed, streams, workdir)


def _video(path: str, streams: _Streams, workdir: Path) -> Inspected:
    codec, width, height = streams.video or ("", 0, 0)
    if codec not in VIDEO_CODECS:
        raise Refused(
            f"This video is encoded as {codec}, which we cannot take: "
            "upload an H.264 or HEVC video (what phones and cameras record)."
        )
    duration = streams.duration
    if duration is None or not VIDEO_MIN_SECONDS <= duration <= VIDEO_MAX_SECONDS:
        said = f"is {_seconds(duration)} long" if duration is not None else "has no length we can read"
        raise Refused(f"This video {said}: videos must be 2 to 15 seconds long. Trim it and upload it again.")
    quicktime = streams.brand.startswith("qt")
    content_type, extension = ("video/quicktime", "mov") if quicktime else ("video/mp4", "mp4")
    clean_path = workdir / f"clean.{extension}"
    _remux(path, "mov", clean_path, "mov" if quicktime else "mp4", ["-map", "0:v:0", "-map", "0:a:0?"])
    _check_size(clean_path, VIDEO_MAX_BYTES, "Videos")
    thumb = workdir / "thumb.jpg"
    box = THUMBNAIL_BOX
    made = _run(
        [
            "-v", "error", "-y", "-f", "mov", "-i", str(clean_path), "-frames:v", "1",
            "-vf", f"scale={box}:{box}:force_original_aspect_ratio=decrease",
            "-f", "image2", "-c:v", "mjpeg", "-q:v", "5", str(thumb),
        ]
    )  # fmt: skip
    if made.returncode != 0 or not thumb.exists():
        raise Refused("This video could not be read: the file looks damaged or incomplete.")
    return Inspected(
        kind="video",
        content_type=content_type,
        extension=extension,
        width=width or None,
        height=height or None,
        duration_seconds=duration,
        codec=codec,
        clean_path=clean_path,
        thumbnail=thumb.read_bytes(),
    )


def _audio(path: str, sniffed: str, streams: _Streams, workdir: Path) -> Inspected:
    kind = "m4a" if sniffed == "mov" else sniffed
    codec = streams.audio or ""
    allowed = AUDIO_CODECS[kind]
    if (allowed is not None and codec not in allowed) or (allowed is None and not codec.startswith("pcm_")):
        raise Refused(f"This sound is encoded as {codec}, which we cannot take. {ACCEPTED_TEXT}")
    duration = streams.duration
    if duration is None or duration > AUDIO_MAX_SECONDS or duration <= 0:
        said = f"is {_seconds(duration)} long" if duration is not None else "has no length we can read"
        raise Refused(
            f"This sound {said}: audio may be at most 15 seconds long. Trim it and upload it again."
        )
    content_type, extension, muxer = {
        "mp3": ("audio/mpeg", "mp3", "mp3"),
        "wav": ("audio/wav", "wav", "wav"),
        "m4a": ("audio/mp4", "m4a", "ipod"),
    }[kind]
    clean_path = workdir / f"clean.{extension}"
    _remux(path, sniffed, clean_path, muxer, ["-map", "0:a:0"])
    _check_size(clean_path, AUDIO_MAX_BYTES, "Sounds")
    return Inspected(
        kind="audio",
        content_type=content_type,
        extension=extension,
        width=None,
        height=None,
        duration_seconds=duration,
        codec=codec,
        clean_path=clean_path,
        thumbnail=None,
    )


def _remux(source: str, demuxer: str, target: Path, muxer: str, maps: list[str]) -> None:
    """The same streams in a fresh container without the original's metadata (GPS, device,
    names): stream copy, so nothing is re-encoded and it takes milliseconds."""
    extra = ["-movflags", "+faststart"] if muxer in ("mp4", "mov", "ipod") else []
    result = _run(
        [
            "-v", "error", "-y", "-f", demuxer, "-i", source, *maps, "-c", "copy",
            "-map_metadata", "-1", "-map_chapters", "-1", *extra, "-f", muxer, str(target),
        ]
    )  # fmt: skip
    if result.returncode != 0 or not target.exists():
        raise Refused("This file could not be read: it looks damaged or incomplete.")


def _check_size(path: Path, cap: int, what: str) -> None:
    if path.stat().st_size > cap:
        raise Refused(f"This file is too large: {what.lower()} may be at most {_mib(cap)}.")
