"""A local stand-in for the ShortAPI HTTP API, speaking exactly what the portal speaks (CONTRACT section 6).

It checks the Bearer key, validates ``args`` as the provider documents them, moves each job through its
statuses over a configurable time, POSTs the ``callback_url`` once when a job ends, and serves a real,
playable H.264 MP4 of the requested duration and aspect ratio. Pure stdlib plus ``imageio_ffmpeg`` (for the
ffmpeg binary), ``requests`` (for callbacks and inputs) and Pillow (for pictures); it never imports Django, so
tests can use it anywhere.

Three models, as the provider documents them: ``text-to-video`` (the clip shows the prompt on
screen), ``image-to-video`` (``image_urls``, optional ``audio_urls`` and ``is_first_last_frame``: the
first picture slowly zoomed, or the first and last frame cross-faded) and ``omni-reference``
(``video_url``, optional ``image_urls`` and ``audio_urls``: the reference video re-tinted). Every input
URL is fetched over HTTP when the job is made, as the provider does; one that cannot be fetched, or is
not what its field says, fails the job (status 3) with an ``error`` naming the field. A sound among the
inputs is the clip's sound track; otherwise a tone. Renders are cached by what they are made from, so
repeated jobs cost nothing.

Endpoints
---------
``POST /api/v1/job/create``           create a job (Bearer key)
``GET  /api/v1/job/query?id=<id>``    query a job (Bearer key)
``GET  /files/<job_id>.mp4``          the result video (no auth, like the provider's signed links)
``GET  /_sim/jobs``                   control: every job with its args, status and call counts (loopback only)
``GET  /_sim/stats``                  control: totals
``POST /_sim/jobs/<job_id>/finish``   control: finish a job now, body optional ``{"status": 2|3}``
``POST /_sim/reset``                  control: forget jobs and counters (the MP4 cache stays)

Statuses: 0 during the first 10% of the job's time, then 1, then 2 once its time has elapsed (3 for a
failed job). Status is computed from the wall clock (``time.time()``) whenever it is read, and a background
thread finishes due jobs every 50 ms so callbacks go out without anybody polling.

Query answers echo the job's ``model`` and normalised ``args`` beside ``status`` (and ``result`` or
``error``), which lets the portal check that a job id handed to it by a callback is its own job;
``Simulator(echo_request=False)`` (or setting ``sim.echo_request``) leaves them out, as the real
provider may.

Callback: when a job reaches status 2 or 3 and it has a ``callback_url``, one POST (never retried, 5 s
timeout, failures counted in ``callbacks_failed``) with the JSON body
``{"job_id": ..., "status": 2|3, "code": 0}``.

Misbehaviour on demand: put markers anywhere in the prompt. Several may be combined. An unknown
``[sim:...]`` marker is refused at create time (code 400), so a typo cannot silently test nothing.

``[sim:fail]``              the job ends with status 3, ``error`` "Content moderation rejected the prompt"
``[sim:create-error]``      create answers HTTP 200 ``{"code": 1001, "message": "Insufficient ..."}``; no job
``[sim:create-500xN]``      the first N create calls carrying this exact prompt answer HTTP 500 (plain text)
``[sim:create-429xN]``      ... answer HTTP 429 (JSON ``{"code": 429, ...}``, ``Retry-After: 1``); no job made
``[sim:create-502xN]``      ... answer HTTP 502 (a gateway that could not reach the service); no job made
``[sim:create-503xN]``      ... answer HTTP 503 (the service is unavailable); no job made
``[sim:create-504]``        the job IS registered, then create answers HTTP 504 (a gateway gave up waiting)
``[sim:create-reset]``      the job IS registered, then the connection is reset (TCP RST) with no answer
``[sim:create-malformed]``  create answers HTTP 200 with a truncated, non-JSON body. The job IS registered
                            (it progresses and calls back) -- an unknown outcome, like a lost answer
``[sim:create-timeout]``    the job IS registered, but the answer is delayed by ``create_delay`` seconds
``[sim:query-429xN]``       the first N queries of the job answer HTTP 429
``[sim:query-500xN]``       the first N queries of the job answer HTTP 500 (plain text)
``[sim:query-nonjson-xN]``  the first N queries of the job answer HTTP 200 with a non-JSON body
``[sim:query-timeout-xN]``  the first N queries of the job are delayed by ``query_delay`` seconds
``[sim:no-callback]``       never POST the callback
``[sim:never]``             the job stays at status 1 forever (until finished through ``/_sim``)
``[sim:status-N]``          once the job's time is up it reports status N (undocumented: 7, 70000, ...)
                            forever; no callback
``[sim:video-404]``         the result URL answers 404
``[sim:video-big]``         the result URL streams ``big_bytes`` (default 64 MiB) of junk as ``video/mp4``
``[sim:video-html]``        the result URL answers ``text/html`` ``<html>nope</html>``
``[sim:video-loopback]``    the result URL names host 127.0.0.2 (same port): loopback, not the trusted host
``[sim:video-slow]``        the result video trickles out over ``slow_seconds``
``[sim:long-url]``          the result URL carries a signature query string, making it over 2,000 characters
``[sim:seconds=N]``         this job takes N seconds (float allowed) instead of ``job_seconds``

Query faults combine in the order written: ``[sim:query-500x1][sim:query-429x2]`` gives 500, 429, 429, then
normal answers; create faults likewise. Create faults are counted per prompt text (every create call
carrying the same prompt counts), query faults per job.

Python API::

    with Simulator(api_key="test-key", job_seconds=0.5, cache_dir=path) as sim:   # starts; stops on exit
        requests.post(sim.url + "/api/v1/job/create", ...)
        sim.jobs, sim.stats(), sim.finish(job_id, status=2), sim.reset()

``Simulator(...).start()`` also returns the simulator (and may be used in a ``with`` too);
``serve_forever()`` blocks until ``stop()`` or KeyboardInterrupt. Only loopback hosts are accepted, so no
URL the simulator produces ever points off the machine.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import hmac
import ipaddress
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

MODEL = "bytedance/seedance-2.0/text-to-video"
IMAGE_MODEL = "bytedance/seedance-2.0/image-to-video"
OMNI_MODEL = "bytedance/seedance-2.0/omni-reference"
MODELS = (MODEL, IMAGE_MODEL, OMNI_MODEL)
MODES = ("std", "fast")
PRICE_PER_SECOND = {"std": Decimal("0.24"), "fast": Decimal("0.20")}
OMNI_PRICE_PER_SECOND = {"std": Decimal("0.168"), "fast": Decimal("0.14")}
MAX_IMAGES, MAX_AUDIOS, MAX_INPUT_FILES = 9, 3, 12
INPUT_MAX_BYTES = 64 * 1024 * 1024
INPUT_TIMEOUT = (5.0, 30.0)
DURATION_MIN, DURATION_MAX, DEFAULT_DURATION = 4, 15, 5
# Small frames keep generation near-instant; only the shape has to match the request.
FRAME_SIZES = {
    "21:9": (336, 144),
    "16:9": (320, 180),
    "9:16": (180, 320),
    "4:3": (240, 180),
    "1:1": (240, 240),
    "3:4": (180, 240),
}
DEFAULT_MODE, DEFAULT_ASPECT_RATIO = "std", "16:9"
FAIL_MESSAGE = "Content moderation rejected the prompt"
QUEUED_FRACTION = 0.1
TICK_SECONDS = 0.05
MAX_BODY_BYTES = 1024 * 1024
CHUNK_BYTES = 64 * 1024

_MARKER_RE = re.compile(r"\[sim:([^\]]*)\]")
_FAULT_RE = re.compile(r"(create|query)-(429|500|502|503|nonjson-|timeout-)x(\d+)")
CREATE_FAULTS = ("429", "500", "502", "503")
QUERY_FAULTS = ("429", "500", "nonjson", "timeout")
_STATUS_RE = re.compile(r"status-(\d{1,12})")
LONG_URL_SIGNATURE_CHARS = 2100
_VIDEO_MARKERS = {
    "video-404": "404",
    "video-big": "big",
    "video-html": "html",
    "video-loopback": "loopback",
    "video-slow": "slow",
}


class InvalidRequest(Exception):
    """A create call the provider would refuse with HTTP 200 and code 400."""


class InputProblem(Exception):
    """An input URL that cannot be used: the job fails, as the provider's would."""


def _check_input(path: Path, kind: str) -> None:
    """That a fetched input is what its field says: a picture Pillow reads, a video or sound ffmpeg reads."""
    if kind == "image":
        from PIL import Image

        try:
            with Image.open(path) as image:
                image.verify()
        except Exception:  # noqa: BLE001 - anything Pillow cannot read is simply not a picture
            raise InputProblem("the file is not a picture") from None
        return
    probe = subprocess.run(
        [_ffmpeg(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", "-i", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    wanted = "Video:" if kind == "video" else "Audio:"
    if wanted not in probe.stderr:
        raise InputProblem(f"the file is not {'a video' if kind == 'video' else 'a sound'}")


def _frame_for_image(path: Path) -> tuple[int, int]:
    """The frame size whose shape is nearest the picture's (a first/last-frame job takes its shape)."""
    from PIL import Image

    with Image.open(path) as image:
        ratio = image.width / image.height
    return min(FRAME_SIZES.values(), key=lambda size: abs(size[0] / size[1] - ratio))


@dataclass(frozen=True)
class Markers:
    fail: bool = False
    create_error: bool = False
    create_faults: tuple[str, ...] = ()  # one entry per misbehaving call: "429" | "500" | "502" | "503"
    create_malformed: bool = False
    create_timeout: bool = False
    create_504: bool = False
    create_reset: bool = False
    query_faults: tuple[str, ...] = ()  # "429" | "500" | "nonjson" | "timeout"
    no_callback: bool = False
    never: bool = False
    odd_status: int | None = None  # reported forever once the job's time is up
    video: str | None = None  # "404" | "big" | "html" | "loopback" | "slow"
    long_url: bool = False
    seconds: float | None = None


def parse_markers(prompt: str) -> Markers:
    """Read the ``[sim:...]`` markers of a prompt; raise InvalidRequest for one it does not know."""
    flags: dict[str, Any] = {}
    create_faults: list[str] = []
    query_faults: list[str] = []
    simple = {
        "fail": "fail",
        "create-error": "create_error",
        "create-malformed": "create_malformed",
        "create-timeout": "create_timeout",
        "create-504": "create_504",
        "create-reset": "create_reset",
        "no-callback": "no_callback",
        "never": "never",
        "long-url": "long_url",
    }
    for raw in _MARKER_RE.findall(prompt):
        marker = raw.strip().lower()
        fault = _FAULT_RE.fullmatch(marker)
        status = _STATUS_RE.fullmatch(marker)
        if marker in simple:
            flags[simple[marker]] = True
        elif status:
            flags["odd_status"] = int(status.group(1))
        elif marker in _VIDEO_MARKERS:
            flags["video"] = _VIDEO_MARKERS[marker]
        elif fault:
            stage, kind, count = fault.groups()
            kind = kind.rstrip("-")
            if kind not in (CREATE_FAULTS if stage == "create" else QUERY_FAULTS):
                raise InvalidRequest(f"unknown simulator marker [sim:{raw}]")
            (create_faults if stage == "create" else query_faults).extend([kind] * int(count))
        elif marker.startswith("seconds="):
            flags["seconds"] = _parse_seconds(raw, marker.removeprefix("seconds="))
        else:
            raise InvalidRequest(f"unknown simulator marker [sim:{raw}]")
    return Markers(create_faults=tuple(create_faults), query_faults=tuple(query_faults), **flags)


def _parse_seconds(raw: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 10**7:
        raise InvalidRequest(f"simulator marker [sim:{raw}] needs a number of seconds")
    return seconds


@dataclass(frozen=True)
class InputFile:
    """One input URL of a job: the field it came in (``image_urls[0]``), and what it must be."""

    field: str
    url: str
    kind: str  # image | video | audio


def validate_create(payload: Any) -> tuple[dict[str, Any], str | None]:
    """Return (normalised args, callback_url) or raise InvalidRequest naming the field."""
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    model = payload.get("model")
    if model not in MODELS:
        raise InvalidRequest("model must be one of: " + ", ".join(f'"{m}"' for m in MODELS))
    args = payload.get("args")
    if not isinstance(args, dict):
        raise InvalidRequest("args must be a JSON object")
    prompt = args.get("prompt")
    if prompt is None:
        raise InvalidRequest("args.prompt is required")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidRequest("args.prompt must be a non-empty string")
    mode = _or_default(args.get("mode"), DEFAULT_MODE)
    if mode not in MODES:
        raise InvalidRequest("args.mode must be one of: std, fast")
    duration = _or_default(args.get("duration"), DEFAULT_DURATION)
    # bool is an int subclass in Python, but not an integer in JSON.
    if type(duration) is not int or not DURATION_MIN <= duration <= DURATION_MAX:
        raise InvalidRequest(f"args.duration must be an integer from {DURATION_MIN} to {DURATION_MAX}")
    aspect_ratio = _or_default(args.get("aspect_ratio"), DEFAULT_ASPECT_RATIO)
    if aspect_ratio not in FRAME_SIZES:
        raise InvalidRequest("args.aspect_ratio must be one of: " + ", ".join(FRAME_SIZES))
    callback_url = payload.get("callback_url")
    if callback_url is not None and not (
        isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
    ):
        raise InvalidRequest("callback_url must be an http(s) URL")
    normalised = {"prompt": prompt, "mode": mode, "duration": duration, "aspect_ratio": aspect_ratio}
    if model == IMAGE_MODEL:
        normalised.update(_image_args(args))
    elif model == OMNI_MODEL:
        normalised.update(_omni_args(args))
    return normalised, callback_url


def _urls(args: dict[str, Any], name: str, *, most: int, required: bool = False) -> list[str]:
    value = args.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or (required and not value):
        raise InvalidRequest(f"args.{name} must be a {'non-empty ' if required else ''}list of URLs")
    if len(value) > most:
        raise InvalidRequest(f"args.{name} takes at most {most} URLs")
    for index, url in enumerate(value):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"args.{name}[{index}] must be an http(s) URL")
    return list(value)


def _image_args(args: dict[str, Any]) -> dict[str, Any]:
    images = _urls(args, "image_urls", most=MAX_IMAGES, required=True)
    audios = _urls(args, "audio_urls", most=MAX_AUDIOS)
    first_last = _or_default(args.get("is_first_last_frame"), False)
    if not isinstance(first_last, bool):
        raise InvalidRequest("args.is_first_last_frame must be a boolean")
    if len(images) + len(audios) > MAX_INPUT_FILES:
        raise InvalidRequest(f"at most {MAX_INPUT_FILES} input files in all")
    if first_last and (len(images) > 2 or audios):
        raise InvalidRequest("is_first_last_frame takes 1 or 2 images and no audio")
    extra: dict[str, Any] = {"image_urls": images, "is_first_last_frame": first_last}
    if audios:
        extra["audio_urls"] = audios
    return extra


def _omni_args(args: dict[str, Any]) -> dict[str, Any]:
    video = args.get("video_url")
    if not isinstance(video, str) or not video.startswith(("http://", "https://")):
        raise InvalidRequest("args.video_url is required: an http(s) URL")
    images = _urls(args, "image_urls", most=MAX_IMAGES)
    audios = _urls(args, "audio_urls", most=MAX_AUDIOS)
    if 1 + len(images) + len(audios) > MAX_INPUT_FILES:
        raise InvalidRequest(f"at most {MAX_INPUT_FILES} input files in all")
    extra: dict[str, Any] = {"video_url": video}
    if images:
        extra["image_urls"] = images
    if audios:
        extra["audio_urls"] = audios
    return extra


def input_files(args: dict[str, Any]) -> list[InputFile]:
    """The URLs a job's normalised args name, in the order the render uses them."""
    files = [InputFile("video_url", args["video_url"], "video")] if args.get("video_url") else []
    files += [InputFile(f"image_urls[{i}]", url, "image") for i, url in enumerate(args.get("image_urls", []))]
    files += [InputFile(f"audio_urls[{i}]", url, "audio") for i, url in enumerate(args.get("audio_urls", []))]
    return files


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def price(mode: str, duration: int, model: str = MODEL) -> str:
    """What the provider charges, as its create answer says it. Omni-reference is charged on the input
    video's seconds too, which the simulator learns only once it has fetched it: at create time the
    answer covers the output seconds."""
    rate = OMNI_PRICE_PER_SECOND[mode] if model == OMNI_MODEL else PRICE_PER_SECOND[mode]
    return str((rate * duration).quantize(Decimal("0.001" if model == OMNI_MODEL else "0.01")))


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    job_id: str
    args: dict[str, Any]
    callback_url: str | None
    markers: Markers
    created_at: float
    seconds: float
    final_status: int | None = None  # 2 or 3 once finished; never 7, so /_sim can still finish those
    finished_at: float | None = None
    error: str | None = None
    query_calls: int = 0
    # "none" (no URL) | "skipped" | "waiting" | "pending" | "sent" | "failed"
    callback: str = "waiting"
    callbacks_sent: int = 0
    model: str = MODEL
    inputs: list[InputFile] = field(default_factory=list)
    # The fetched inputs, in the order of `inputs`: their local copies (content-addressed).
    fetched: list[Path] = field(default_factory=list)
    # Set once every input is fetched and checked (or the job failed trying): until then the job
    # cannot succeed, whatever the clock says.
    prepared: threading.Event = field(default_factory=threading.Event)

    @property
    def ready(self) -> bool:
        return not self.inputs or self.prepared.is_set()

    @property
    def due_at(self) -> float:
        return self.created_at + self.seconds

    @property
    def status(self) -> int:
        return self.status_at(time.time())

    def status_at(self, now: float) -> int:
        if self.final_status is not None:
            return self.final_status
        if now - self.created_at < self.seconds * QUEUED_FRACTION:
            return 0
        if self.markers.never or now < self.due_at or not self.ready:
            return 1
        if self.markers.odd_status is not None:
            return self.markers.odd_status
        return self.terminal_status

    @property
    def terminal_status(self) -> int:
        return 3 if self.markers.fail else 2

    @property
    def finishes_by_itself(self) -> bool:
        return not (self.markers.never or self.markers.odd_status is not None)

    def updated_at(self, now: float) -> float:
        status = self.status_at(now)
        if status == 0:
            return self.created_at
        if status == 1:
            return self.created_at + self.seconds * QUEUED_FRACTION
        return self.finished_at or self.due_at


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    junk_bytes: int | None = None
    trickle_seconds: float = 0.0
    reset: bool = False  # no answer: reset the connection


def _json_reply(payload: Any, status: int = 200, **headers: str) -> _Reply:
    return _Reply(status, json.dumps(payload, separators=(",", ":")).encode(), headers=headers)


def _text_reply(text: str, status: int, content_type: str = "text/plain; charset=utf-8") -> _Reply:
    return _Reply(status, text.encode(), content_type=content_type)


def _too_many() -> _Reply:
    return _json_reply({"code": 429, "message": "Too many requests, slow down"}, 429, **{"Retry-After": "1"})


def _server_error(status: int = 500) -> _Reply:
    return _text_reply(HTTPStatus(status).phrase, status)


def _loopback_bind_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or address.version != 4 or not address.is_loopback:
        raise ValueError(f"the simulator only serves on an IPv4 loopback address, not {host!r}")
    return host


@functools.cache
def h264_encoder(ffmpeg: str) -> str:
    """libx264 when the bundled ffmpeg has it; OpenH264 also yields H.264 that browsers play in MP4."""
    listing = subprocess.run(
        [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    )
    names = {line.split()[1] for line in listing.stdout.splitlines() if len(line.split()) > 1}
    for encoder in ("libx264", "libopenh264"):
        if encoder in names:
            return encoder
    raise RuntimeError(f"{ffmpeg} has no H.264 encoder (libx264 or libopenh264)")


FPS = 12


def _ffmpeg() -> str:
    import imageio_ffmpeg  # deferred: only needed once a video is actually made or an input checked

    return imageio_ffmpeg.get_ffmpeg_exe()


@dataclass(frozen=True)
class Render:
    """What one clip is made from: enough to render it, and (as `key`) to find it rendered already."""

    duration: int
    width: int
    height: int
    model: str = MODEL
    prompt: str | None = None  # shown on screen (text-to-video), or None for the test pattern
    images: tuple[Path, ...] = ()
    video: Path | None = None
    audio: Path | None = None
    first_last_frame: bool = False

    @property
    def key(self) -> str:
        if self.model == MODEL and self.prompt is None:
            return f"{self.duration}s-{self.width}x{self.height}"  # the plain test pattern, as before
        parts = [self.model, self.duration, self.width, self.height, self.prompt, self.first_last_frame]
        parts += [p.name for p in (*self.images, self.video, self.audio) if p is not None]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


class VideoCache:
    """Real MP4s, made on first use and shared across processes: one per Render.key (so one per
    duration and aspect ratio for plain clips, one per prompt or set of inputs otherwise)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def path(self, duration: int, aspect_ratio: str) -> Path:
        width, height = FRAME_SIZES[aspect_ratio]
        return self.render(Render(duration, width, height))

    def render(self, spec: Render) -> Path:
        target = self.directory / f"seedance-{spec.key}.mp4"
        if target.exists():
            return target
        with self._lock_for(spec.key):
            if not target.exists():
                self._render(target, spec)
        return target

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _render(self, target: Path, spec: Render) -> None:
        ffmpeg = _ffmpeg()
        encoder = h264_encoder(ffmpeg)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Render under a private name and rename: another thread or process never sees half a file.
        fd, temp_name = tempfile.mkstemp(prefix=target.stem + ".", suffix=".part", dir=self.directory)
        os.close(fd)
        workdir = Path(tempfile.mkdtemp(prefix="render-", dir=self.directory))
        try:
            video_inputs, video_filter = _picture(spec, workdir)
            d = spec.duration
            if spec.audio is not None:
                sound = ["-stream_loop", "-1", "-i", str(spec.audio)]
            else:
                sound = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={d}"]
            audio_index = video_inputs.count("-i")
            command = [
                ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *video_inputs, *sound,
                "-filter_complex", f"{video_filter},format=yuv420p[v]",
                "-map", "[v]", "-map", f"{audio_index}:a:0",
                "-t", str(d), "-r", str(FPS),
                "-c:v", encoder, *(["-preset", "veryfast"] if encoder == "libx264" else []),
                "-c:a", "aac", "-b:a", "32k", "-ar", "22050",
                "-movflags", "+faststart", "-f", "mp4", temp_name,
            ]  # fmt: skip
            subprocess.run(command, capture_output=True, check=True, timeout=120)
            os.replace(temp_name, target)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)


def _picture(spec: Render, workdir: Path) -> tuple[list[str], str]:
    """The video inputs of ffmpeg's command line and the filter that makes the picture, ending in [v]'s
    source: what each model shows of its inputs."""
    w, h, d = spec.width, spec.height, spec.duration
    frames = d * FPS
    if spec.model == OMNI_MODEL and spec.video is not None:
        # The reference video, looped to length and re-tinted: visibly the input, visibly changed.
        tint = f"scale={w}:{h}:force_original_aspect_ratio=increase,crop={w}:{h},fps={FPS},hue=h=150:s=1.6"
        return ["-stream_loop", "-1", "-i", str(spec.video)], f"[0:v]{tint}"
    if spec.images and spec.first_last_frame and len(spec.images) > 1:
        first, last = (
            _fit(image, w, h, workdir / f"frame{i}.png") for i, image in enumerate(spec.images[:2])
        )
        inputs = ["-loop", "1", "-framerate", str(FPS), "-t", str(d + 1), "-i", str(first)]
        inputs += ["-loop", "1", "-framerate", str(FPS), "-t", str(d + 1), "-i", str(last)]
        # Held half a second at each end, cross-faded in between: the first frame opens, the last ends.
        return inputs, f"[0:v][1:v]xfade=transition=fade:duration={max(d - 1, 1)}:offset=0.5"
    if spec.images:
        # The first picture, slowly zoomed in on its centre (rendered twice as large, then scaled).
        big = _fit(spec.images[0], w * 2, h * 2, workdir / "frame0.png")
        zoom = (
            f"zoompan=z='1+0.3*on/{frames}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)':d=1:s={w}x{h}:fps={FPS}"
        )
        return ["-loop", "1", "-framerate", str(FPS), "-t", str(d), "-i", str(big)], f"[0:v]{zoom}"
    if spec.prompt is not None:
        card = _prompt_card(spec.prompt, w * 2, h * 2, workdir / "card.png")
        drift = (
            f"zoompan=z='1+0.08*on/{frames}':x='iw/2-(iw/zoom/2)':y='ih/2-(ih/zoom/2)'"
            f":d=1:s={w}x{h}:fps={FPS}"
        )
        return ["-loop", "1", "-framerate", str(FPS), "-t", str(d), "-i", str(card)], f"[0:v]{drift}"
    return ["-f", "lavfi", "-i", f"testsrc2=size={w}x{h}:rate={FPS}:duration={d}"], "[0:v]null"


def _fit(source: Path, width: int, height: int, target: Path) -> Path:
    """The picture cropped to fill the frame (centred), as a PNG ffmpeg reads quickly."""
    from PIL import Image, ImageOps

    with Image.open(source) as image:
        image.draft("RGB", (width * 2, height * 2))  # JPEGs decode small: a 6000 px photo costs little
        ImageOps.fit(ImageOps.exif_transpose(image).convert("RGB"), (width, height)).save(target)
    return target


def _prompt_card(prompt: str, width: int, height: int, target: Path) -> Path:
    """The prompt on screen, so a demo shows what was asked for (Pillow's own font: no system fonts)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):  # a quiet diagonal-ish gradient behind the words
        shade = int(28 + 40 * y / height)
        draw.line([(0, y), (width, y)], fill=(shade // 2, shade // 2 + 6, shade + 24))
    text = _MARKER_RE.sub("", prompt).strip() or prompt.strip()
    size = max(12, min(width, height) // 11)
    font = ImageFont.load_default(size=size)
    margin = width // 14
    lines: list[str] = []
    for word in text.split():
        if lines and draw.textlength(lines[-1] + " " + word, font=font) <= width - 2 * margin:
            lines[-1] += " " + word
        else:
            lines.append(word)
    most = max(1, (height - 2 * margin) // int(size * 1.3) - 1)
    if len(lines) > most:
        lines = lines[:most]
        lines[-1] = lines[-1].rstrip(".,;:") + " …"
    y = margin
    for line in lines:
        draw.text((margin, y), line, font=font, fill=(240, 242, 248))
        y += int(size * 1.3)
    small = ImageFont.load_default(size=max(10, size * 2 // 3))
    draw.text((margin, height - margin - size), "Seedance simulator", font=small, fill=(150, 170, 230))
    image.save(target)
    return target


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Joining handler threads on close would wait on idle keep-alive connections; stop() closes them instead.
    block_on_close = False
    # A burst of hundreds of creates must queue in the kernel, not be refused.
    request_queue_size = 1024
    simulator: Simulator

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        self.simulator = simulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self.connections_lock:
            live = list(self.connections)
        for connection in live:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return  # a client hanging up is business as usual
        traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, so a poller is not a new connection per query
    server_version = "ShortAPISimulator/1.0"
    timeout = 60  # an idle keep-alive connection gives its thread back after this
    # Headers and body go out in two writes; with Nagle on, keep-alive clients stall on delayed ACKs (~40 ms).
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.simulator.verbose:
            super().log_message(format, *args)

    def _dispatch(self, method: str) -> None:
        try:
            body = self._read_body()
            if body is None:
                reply = _json_reply({"code": 413, "message": "request body too large"}, 413)
                self.close_connection = True
            else:
                reply = self._reply(method, body)
            self._send(reply, head_only=method == "HEAD")
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _reply(self, method: str, body: bytes) -> _Reply:
        try:
            return self.server.simulator.handle(
                method, self.path, dict(self.headers.items()), body, self.client_address[0]
            )
        except Exception:  # noqa: BLE001 - a simulator bug must show, yet still get an answer
            traceback.print_exc()
            return _server_error()

    def _read_body(self) -> bytes | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, reply: _Reply, head_only: bool) -> None:
        if reply.reset:
            # SO_LINGER 0 makes close() send a TCP RST: the client sees its request cut off
            # after sending it, with no status line at all.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.wfile.close()
            self.connection.close()
            return
        if reply.file is not None:
            with reply.file.open("rb") as video:
                size = os.fstat(video.fileno()).st_size
                self._send_head(reply, size)
                if head_only:
                    return
                if reply.trickle_seconds:
                    pieces = 20
                    step = max(1, size // pieces)
                    while chunk := video.read(step):
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(reply.trickle_seconds / pieces)
                else:
                    shutil.copyfileobj(video, self.wfile, CHUNK_BYTES)
            return
        if reply.junk_bytes is not None:
            self._send_head(reply, reply.junk_bytes)
            if not head_only:
                self._send_junk(reply.junk_bytes)
            return
        self._send_head(reply, len(reply.body))
        if not head_only:
            self.wfile.write(reply.body)

    def _send_head(self, reply: _Reply, length: int) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(length))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_junk(self, length: int) -> None:
        block = _junk_block()
        remaining = length
        while remaining > 0:
            piece = block[: min(remaining, len(block))]
            self.wfile.write(piece)
            remaining -= len(piece)


@functools.cache
def _junk_block() -> bytes:
    return os.urandom(CHUNK_BYTES)


class Simulator:
    """The ShortAPI simulator: an HTTP server plus a ticker thread and a small callback pool."""

    def __init__(
        self,
        *,
        api_key: str = "sim-key",
        job_seconds: float = 20.0,
        cache_dir: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        create_delay: float = 10.0,
        query_delay: float = 10.0,
        big_bytes: int = 64 * 1024 * 1024,
        slow_seconds: float = 5.0,
        callback_timeout: float = 5.0,
        callback_workers: int = 16,
        echo_request: bool = True,
        prompt_on_screen: bool = True,
        verbose: bool = False,
        latency: float = 0.0,
    ) -> None:
        self.api_key = api_key
        # Seconds every API call and video download waits before it is answered (a distant provider).
        self.latency = float(latency)
        self._in_flight = 0
        self._peak_in_flight = 0
        self.job_seconds = float(job_seconds)
        self.host = _loopback_bind_host(host)
        self.port = port
        self.create_delay = create_delay
        self.query_delay = query_delay
        self.big_bytes = big_bytes
        self.slow_seconds = slow_seconds
        self.callback_timeout = callback_timeout
        self.callback_workers = callback_workers
        # Off, query answers carry no model and args, as the real provider's need not.
        self.echo_request = echo_request
        # Text-to-video clips show their prompt (one render per prompt); off, every clip of one length and
        # shape is the same test pattern, rendered once (benchmarks make hundreds of distinct prompts).
        self.prompt_on_screen = prompt_on_screen
        self.verbose = verbose
        directory = (
            Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "shortapi-simulator"
        )
        self.videos = VideoCache(directory)
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._due: list[tuple[float, str]] = []  # heap of (due_at, job_id): the ticker never scans every job
        self._counts: Counter[str] = Counter()
        self._prompt_calls: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._pool = ThreadPoolExecutor(self.callback_workers, thread_name_prefix="sim-callback")
        self._threads = [
            threading.Thread(target=self._server.serve_forever, args=(0.05,), name="sim-http", daemon=True),
            threading.Thread(target=self._tick_forever, name="sim-ticker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        if self._server is None or self._stopped:
            return
        self._stopped = True
        self._stopping.set()  # also wakes handlers sleeping through a simulated timeout
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        for thread in self._threads:
            thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def serve_forever(self) -> None:
        self.start()
        try:
            while not self._stopping.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return f"http://{self.host}:{self.port}"

    # -- control -------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        with self._lock:
            names = (
                "create_calls",
                "query_calls",
                "video_downloads",
                "callbacks_sent",
                "callbacks_failed",
                "input_fetches",
                "input_fetches_failed",
            )
            totals = {name: self._counts[name] for name in names}
            totals["jobs"] = len(self.jobs)
            totals["peak_concurrent_calls"] = self._peak_in_flight
        return totals

    def finish(self, job_id: str, status: int = 2) -> bool:
        """Finish a job now and send its callback; False when it had already finished. KeyError if unknown."""
        if status not in (2, 3):
            raise ValueError("status must be 2 or 3")
        with self._lock:
            job = self.jobs[job_id]
            if job.final_status is not None:
                return False
            self._finish_locked(job, status, time.time())
        return True

    def reset(self) -> None:
        with self._lock:
            self.jobs.clear()
            self._due.clear()
            self._counts.clear()
            self._prompt_calls.clear()
            self._peak_in_flight = self._in_flight

    def job_summaries(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [self._summary(job, now) for job in self.jobs.values()]

    def _summary(self, job: Job, now: float) -> dict[str, Any]:
        return {
            "job_id": job.job_id,
            "model": job.model,
            "args": job.args,
            "inputs": [{"field": f.field, "url": f.url, "kind": f.kind} for f in job.inputs],
            "inputs_fetched": len(job.fetched),
            "status": job.status_at(now),
            "callback_url": job.callback_url,
            "created_at": _iso(job.created_at),
            "finished_at": _iso(job.finished_at),
            "seconds": job.seconds,
            "error": job.error,
            "create_calls": self._prompt_calls[job.args["prompt"]],
            "query_calls": job.query_calls,
            "callback": job.callback,
            "callbacks_sent": job.callbacks_sent,
        }

    # -- job life ------------------------------------------------------------------------------------------

    def _tick_forever(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            now = time.time()
            with self._lock:
                while self._due and self._due[0][0] <= now:
                    _, job_id = heapq.heappop(self._due)
                    self._settle_locked(self.jobs.get(job_id), now)

    def _settle_locked(self, job: Job | None, now: float) -> None:
        if job is None or job.final_status is not None or not job.finishes_by_itself or now < job.due_at:
            return
        if not job.ready:
            # Its inputs are still being fetched: look again shortly (a failed fetch finishes it at once).
            heapq.heappush(self._due, (now + TICK_SECONDS, job.job_id))
            return
        self._finish_locked(job, job.terminal_status, max(job.due_at, now if job.inputs else job.due_at))

    def _finish_locked(self, job: Job, status: int, finished_at: float, error: str | None = None) -> None:
        # Runs exactly once per job (callers check final_status under the lock): hence one callback at most.
        job.final_status = status
        job.finished_at = finished_at
        if status == 3:
            job.error = error or FAIL_MESSAGE
        if job.callback == "waiting" and self._pool is not None and not self._stopping.is_set():
            job.callback = "pending"
            self._pool.submit(self._send_callback, job, status)

    def _send_callback(self, job: Job, status: int) -> None:
        body = {"job_id": job.job_id, "status": status, "code": 0}
        try:
            response = requests.post(job.callback_url or "", json=body, timeout=self.callback_timeout)
            delivered = response.ok
            response.close()
        except requests.RequestException:
            delivered = False
        with self._lock:
            job.callback = "sent" if delivered else "failed"
            job.callbacks_sent += 1 if delivered else 0
            self._counts["callbacks_sent" if delivered else "callbacks_failed"] += 1

    # -- HTTP ----------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes, client: str) -> _Reply:
        parts = urlsplit(path)
        route = parts.path.rstrip("/") or "/"
        if route.startswith(("/api/", "/files/")):
            return self._upstream_call(method, route, parts, headers, body)
        if route.startswith("/_sim/"):
            if not ipaddress.ip_address(client).is_loopback:
                return _json_reply({"code": 403, "message": "control API is loopback only"}, 403)
            return self._control(method, route.removeprefix("/_sim/"), body)
        return _json_reply({"code": 404, "message": "not found"}, 404)

    def _upstream_call(
        self, method: str, route: str, parts: Any, headers: dict[str, str], body: bytes
    ) -> _Reply:
        """A call the real provider would answer from across the internet: it waits `latency`
        seconds first (the round trips of a distant API), and counts how many are in progress at
        once (`peak_concurrent_calls`: whether a worker overlaps its calls or makes them in series)."""
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            if self.latency > 0:
                self._stopping.wait(self.latency)
            return self._route_upstream(method, route, parts, headers, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _route_upstream(
        self, method: str, route: str, parts: Any, headers: dict[str, str], body: bytes
    ) -> _Reply:
        if route == "/api/v1/job/create":
            return self._create(headers, body) if method == "POST" else self._not_allowed()
        if route == "/api/v1/job/query":
            return self._query(headers, parse_qs(parts.query)) if method == "GET" else self._not_allowed()
        if route.startswith("/files/"):
            return (
                self._video(route.removeprefix("/files/"))
                if method in ("GET", "HEAD")
                else self._not_allowed()
            )
        return _json_reply({"code": 404, "message": "not found"}, 404)

    @staticmethod
    def _not_allowed() -> _Reply:
        return _json_reply({"code": 405, "message": "method not allowed"}, 405)

    def _authorized(self, headers: dict[str, str]) -> bool:
        given = {name.lower(): value for name, value in headers.items()}.get("authorization", "")
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )

    def _create(self, headers: dict[str, str], body: bytes) -> _Reply:
        with self._lock:
            self._counts["create_calls"] += 1
        if not self._authorized(headers):
            return _json_reply({"code": 401, "message": "Invalid API key"}, 401)
        try:
            payload = json.loads(body)
        except ValueError:
            return _json_reply({"code": 400, "message": "request body must be JSON"}, 400)
        try:
            markers, prompt = self._create_markers(payload)
            fault = self._create_fault(markers, prompt)
            if fault is not None:
                return fault
            args, callback_url = validate_create(payload)
        except InvalidRequest as invalid:
            return _json_reply({"code": 400, "message": str(invalid)})
        if markers.create_error:
            return _json_reply({"code": 1001, "message": "Insufficient balance in provider account"})
        job = self._register(args, callback_url, markers, model=payload["model"])
        amount = price(args["mode"], args["duration"], payload["model"])
        answer = {"code": 0, "data": {"amount": amount, "job_id": job.job_id}}
        if markers.create_malformed:
            # A truncated body, as a proxy cut off mid-answer would leave it.
            return _Reply(200, json.dumps(answer).encode()[:-9])
        if markers.create_timeout:
            self._stopping.wait(self.create_delay)
        if markers.create_504:
            return _server_error(504)
        if markers.create_reset:
            return _Reply(0, reset=True)
        return _json_reply(answer)

    @staticmethod
    def _create_markers(payload: Any) -> tuple[Markers, str | None]:
        args = payload.get("args") if isinstance(payload, dict) else None
        prompt = args.get("prompt") if isinstance(args, dict) else None
        if not isinstance(prompt, str):
            return Markers(), None
        return parse_markers(prompt), prompt

    def _create_fault(self, markers: Markers, prompt: str | None) -> _Reply | None:
        if prompt is None:
            return None
        with self._lock:
            self._prompt_calls[prompt] += 1
            call = self._prompt_calls[prompt]
        if call > len(markers.create_faults):
            return None
        fault = markers.create_faults[call - 1]
        return _too_many() if fault == "429" else _server_error(int(fault))

    def _register(
        self, args: dict[str, Any], callback_url: str | None, markers: Markers, *, model: str = MODEL
    ) -> Job:
        seconds = markers.seconds if markers.seconds is not None else self.job_seconds
        job = Job(
            job_id="sim_" + os.urandom(12).hex(),
            args=args,
            callback_url=callback_url,
            markers=markers,
            created_at=time.time(),
            seconds=seconds,
            callback="none" if not callback_url else "skipped" if markers.no_callback else "waiting",
            model=model,
            inputs=input_files(args),
        )
        with self._lock:
            self.jobs[job.job_id] = job
            if job.finishes_by_itself:
                heapq.heappush(self._due, (job.due_at, job.job_id))
        if job.inputs and self._pool is not None:
            self._pool.submit(self._prepare, job)
        return job

    # -- inputs ------------------------------------------------------------------------------------------

    def _prepare(self, job: Job) -> None:
        """Fetch and check every input of a job, as the provider does before it starts; the first that
        fails ends the job (status 3) with an error naming its field."""
        fetched: list[Path] = []
        problem = None
        for item in job.inputs:
            try:
                fetched.append(self._fetch_input(item))
            except InputProblem as exc:
                problem = f"Could not use {item.field}: {exc}"
                break
        with self._lock:
            self._counts["input_fetches"] += len(fetched)
            if problem is not None:
                self._counts["input_fetches_failed"] += 1
            job.fetched = fetched
            if problem is not None and job.final_status is None:
                self._finish_locked(job, 3, time.time(), error=problem)
            job.prepared.set()

    def _fetch_input(self, item: InputFile) -> Path:
        try:
            response = requests.get(item.url, timeout=INPUT_TIMEOUT, stream=True)
        except requests.RequestException as exc:
            raise InputProblem(f"the URL could not be fetched ({exc.__class__.__name__})") from None
        with response:
            if response.status_code != 200:
                raise InputProblem(f"the URL answered HTTP {response.status_code}")
            digest = hashlib.sha256()
            directory = self.videos.directory / "inputs"
            directory.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix="input.", suffix=".part", dir=directory)
            size = 0
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_content(CHUNK_BYTES):
                        size += len(chunk)
                        if size > INPUT_MAX_BYTES:
                            raise InputProblem(f"the file is over {INPUT_MAX_BYTES // (1024 * 1024)} MiB")
                        digest.update(chunk)
                        out.write(chunk)
                target = directory / digest.hexdigest()
                _check_input(Path(temp_name), item.kind)
                os.replace(temp_name, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp_name)
        return target

    def _render_for(self, job: Job) -> Render:
        width, height = FRAME_SIZES[job.args["aspect_ratio"]]
        duration = job.args["duration"]
        if job.model == MODEL:
            prompt = job.args["prompt"] if self.prompt_on_screen else None
            return Render(duration, width, height, prompt=prompt)
        job.prepared.wait(INPUT_TIMEOUT[1] * len(job.inputs) + 5)
        by_kind: dict[str, list[Path]] = {"image": [], "video": [], "audio": []}
        for item, path in zip(job.inputs, job.fetched, strict=False):
            by_kind[item.kind].append(path)
        first_last = bool(job.args.get("is_first_last_frame"))
        if first_last and by_kind["image"]:
            width, height = _frame_for_image(by_kind["image"][0])  # the frames set the shape
        return Render(
            duration,
            width,
            height,
            model=job.model,
            images=tuple(by_kind["image"]),
            video=by_kind["video"][0] if by_kind["video"] else None,
            audio=by_kind["audio"][0] if by_kind["audio"] else None,
            first_last_frame=first_last,
        )

    def _query(self, headers: dict[str, str], query: dict[str, list[str]]) -> _Reply:
        with self._lock:
            self._counts["query_calls"] += 1
        if not self._authorized(headers):
            return _json_reply({"code": 401, "message": "Invalid API key"}, 401)
        job_id = (query.get("id") or [""])[0]
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return _json_reply({"code": 404, "message": "job not found"})
            job.query_calls += 1
            faults = job.markers.query_faults
            fault = faults[job.query_calls - 1] if job.query_calls <= len(faults) else None
        if fault == "429":
            return _too_many()
        if fault == "500":
            return _server_error()
        if fault == "nonjson":
            return _text_reply("<html><body>502 Bad Gateway</body></html>", 200, "text/html")
        if fault == "timeout":
            self._stopping.wait(self.query_delay)
        now = time.time()
        with self._lock:
            self._settle_locked(job, now)
            data = self._job_data(job, now)
        return _json_reply({"code": 0, "data": data})

    def _job_data(self, job: Job, now: float) -> dict[str, Any]:
        status = job.status_at(now)
        data: dict[str, Any] = {
            "job_id": job.job_id,
            "status": status,
            "created_at": _iso(job.created_at),
            "updated_at": _iso(job.updated_at(now)),
        }
        if self.echo_request:
            # So a client can check that a job id it was handed is the job it asked for; the real
            # provider's answer may not carry these (shortapi-notes.md).
            data["model"] = job.model
            data["args"] = dict(job.args)
        if job.finished_at is not None:
            data["finished_at"] = _iso(job.finished_at)
        if status == 2:
            data["result"] = {"videos": [{"url": self._video_url(job)}]}
        if status == 3:
            data["error"] = job.error
            data["refunded"] = True
        return data

    def _video_url(self, job: Job) -> str:
        host = "127.0.0.2" if job.markers.video == "loopback" else self.host
        url = f"http://{host}:{self.port}/files/{job.job_id}.mp4"
        if job.markers.long_url:
            # Like a provider's signed storage link: long, and only the path matters to us.
            url += "?signature=" + "s" * LONG_URL_SIGNATURE_CHARS
        return url

    def _video(self, name: str) -> _Reply:
        job_id = name.removesuffix(".mp4")
        with self._lock:
            self._counts["video_downloads"] += 1
            job = self.jobs.get(job_id)
            ready = job is not None and name.endswith(".mp4") and job.status_at(time.time()) == 2
        if not ready or job is None or job.markers.video == "404":
            return _text_reply("Not Found", 404)
        if job.markers.video == "html":
            return _text_reply("<html>nope</html>", 200, "text/html; charset=utf-8")
        if job.markers.video == "big":
            return _Reply(200, content_type="video/mp4", junk_bytes=self.big_bytes)
        path = self.videos.render(self._render_for(job))
        trickle = self.slow_seconds if job.markers.video == "slow" else 0.0
        return _Reply(200, content_type="video/mp4", file=path, trickle_seconds=trickle)

    def _control(self, method: str, route: str, body: bytes) -> _Reply:
        if route == "jobs" and method == "GET":
            return _json_reply({"jobs": self.job_summaries()})
        if route == "stats" and method == "GET":
            return _json_reply(self.stats())
        if route == "reset" and method == "POST":
            self.reset()
            return _json_reply({"ok": True})
        finish = re.fullmatch(r"jobs/([^/]+)/finish", route)
        if finish and method == "POST":
            return self._control_finish(finish.group(1), body)
        return _json_reply({"code": 404, "message": "not found"}, 404)

    def _control_finish(self, job_id: str, body: bytes) -> _Reply:
        try:
            options = json.loads(body) if body.strip() else {}
            status = options.get("status", 2) if isinstance(options, dict) else None
        except ValueError:
            status = None
        if status not in (2, 3) or isinstance(status, bool):
            return _json_reply({"code": 400, "message": "status must be 2 or 3"}, 400)
        try:
            finished = self.finish(job_id, status)
        except KeyError:
            return _json_reply({"code": 404, "message": "job not found"}, 404)
        now = time.time()
        with self._lock:
            summary = self._summary(self.jobs[job_id], now) if job_id in self.jobs else None
        return _json_reply({"finished": finished, "job": summary})
