"""A local stand-in for the ShortAPI HTTP API, speaking exactly what the portal speaks (CONTRACT section 6).

It checks the Bearer key, validates ``args`` as the provider documents them, moves each job through its
statuses over a configurable time, POSTs the ``callback_url`` once when a job ends, and serves a real,
playable H.264 MP4 of the requested duration and aspect ratio. Pure stdlib plus ``imageio_ffmpeg`` (for the
ffmpeg binary) and ``requests`` (for callbacks); it never imports Django, so tests can use it anywhere.

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
``[sim:create-malformed]``  create answers HTTP 200 with a truncated, non-JSON body. The job IS registered
                            (it progresses and calls back) -- an unknown outcome, like a lost answer
``[sim:create-timeout]``    the job IS registered, but the answer is delayed by ``create_delay`` seconds
``[sim:query-429xN]``       the first N queries of the job answer HTTP 429
``[sim:query-500xN]``       the first N queries of the job answer HTTP 500 (plain text)
``[sim:query-nonjson-xN]``  the first N queries of the job answer HTTP 200 with a non-JSON body
``[sim:query-timeout-xN]``  the first N queries of the job are delayed by ``query_delay`` seconds
``[sim:no-callback]``       never POST the callback
``[sim:never]``             the job stays at status 1 forever (until finished through ``/_sim``)
``[sim:status-7]``          once the job's time is up it reports status 7 (undocumented) forever; no callback
``[sim:video-404]``         the result URL answers 404
``[sim:video-big]``         the result URL streams ``big_bytes`` (default 64 MiB) of junk as ``video/mp4``
``[sim:video-html]``        the result URL answers ``text/html`` ``<html>nope</html>``
``[sim:video-loopback]``    the result URL names host 127.0.0.2 (same port): loopback, not the trusted host
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
import heapq
import hmac
import ipaddress
import json
import os
import re
import shutil
import socket
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

MODEL = "bytedance/seedance-2.0/text-to-video"
MODES = ("std", "fast")
PRICE_PER_SECOND = {"std": Decimal("0.24"), "fast": Decimal("0.20")}
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
_FAULT_RE = re.compile(r"(create|query)-(429|500|nonjson-|timeout-)x(\d+)")
_VIDEO_MARKERS = {
    "video-404": "404",
    "video-big": "big",
    "video-html": "html",
    "video-loopback": "loopback",
    "video-slow": "slow",
}


class InvalidRequest(Exception):
    """A create call the provider would refuse with HTTP 200 and code 400."""


@dataclass(frozen=True)
class Markers:
    fail: bool = False
    create_error: bool = False
    create_faults: tuple[str, ...] = ()  # one entry per misbehaving call: "429" | "500"
    create_malformed: bool = False
    create_timeout: bool = False
    query_faults: tuple[str, ...] = ()  # "429" | "500" | "nonjson" | "timeout"
    no_callback: bool = False
    never: bool = False
    status_7: bool = False
    video: str | None = None  # "404" | "big" | "html" | "loopback" | "slow"
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
        "no-callback": "no_callback",
        "never": "never",
        "status-7": "status_7",
    }
    for raw in _MARKER_RE.findall(prompt):
        marker = raw.strip().lower()
        fault = _FAULT_RE.fullmatch(marker)
        if marker in simple:
            flags[simple[marker]] = True
        elif marker in _VIDEO_MARKERS:
            flags["video"] = _VIDEO_MARKERS[marker]
        elif fault:
            stage, kind, count = fault.groups()
            kind = kind.rstrip("-")
            if stage == "create" and kind not in ("429", "500"):
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


def validate_create(payload: Any) -> tuple[dict[str, Any], str | None]:
    """Return (normalised args, callback_url) or raise InvalidRequest naming the field."""
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    if payload.get("model") != MODEL:
        raise InvalidRequest(f'model must be "{MODEL}"')
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
    return normalised, callback_url


def _or_default(value: Any, default: Any) -> Any:
    return default if value is None else value


def price(mode: str, duration: int) -> str:
    return str((PRICE_PER_SECOND[mode] * duration).quantize(Decimal("0.01")))


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
        if self.markers.never or now < self.due_at:
            return 1
        if self.markers.status_7:
            return 7
        return self.terminal_status

    @property
    def terminal_status(self) -> int:
        return 3 if self.markers.fail else 2

    @property
    def finishes_by_itself(self) -> bool:
        return not (self.markers.never or self.markers.status_7)

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


def _json_reply(payload: Any, status: int = 200, **headers: str) -> _Reply:
    return _Reply(status, json.dumps(payload, separators=(",", ":")).encode(), headers=headers)


def _text_reply(text: str, status: int, content_type: str = "text/plain; charset=utf-8") -> _Reply:
    return _Reply(status, text.encode(), content_type=content_type)


def _too_many() -> _Reply:
    return _json_reply({"code": 429, "message": "Too many requests, slow down"}, 429, **{"Retry-After": "1"})


def _server_error() -> _Reply:
    return _text_reply("Internal Server Error", 500)


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


class VideoCache:
    """Real MP4s, one per (duration, aspect ratio), made on first use and shared across processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._locks: dict[tuple[int, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def path(self, duration: int, aspect_ratio: str) -> Path:
        width, height = FRAME_SIZES[aspect_ratio]
        target = self.directory / f"seedance-{duration}s-{width}x{height}.mp4"
        if target.exists():
            return target
        with self._lock_for((duration, aspect_ratio)):
            if not target.exists():
                self._render(target, duration, width, height)
        return target

    def _lock_for(self, key: tuple[int, str]) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    def _render(self, target: Path, duration: int, width: int, height: int) -> None:
        import imageio_ffmpeg  # deferred: only needed once a video is actually fetched

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        encoder = h264_encoder(ffmpeg)
        self.directory.mkdir(parents=True, exist_ok=True)
        # Render under a private name and rename: another thread or process never sees half a file.
        fd, temp_name = tempfile.mkstemp(prefix=target.stem + ".", suffix=".part", dir=self.directory)
        os.close(fd)
        command = [
            ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=12:duration={duration}",
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=22050:duration={duration}",
            "-c:v", encoder, *(["-preset", "veryfast"] if encoder == "libx264" else []),
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "32k", "-shortest",
            "-movflags", "+faststart", "-f", "mp4", temp_name,
        ]  # fmt: skip
        try:
            subprocess.run(command, capture_output=True, check=True, timeout=120)
            os.replace(temp_name, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp_name)


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
        verbose: bool = False,
    ) -> None:
        self.api_key = api_key
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
            names = ("create_calls", "query_calls", "video_downloads", "callbacks_sent", "callbacks_failed")
            totals = {name: self._counts[name] for name in names}
            totals["jobs"] = len(self.jobs)
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

    def job_summaries(self) -> list[dict[str, Any]]:
        now = time.time()
        with self._lock:
            return [self._summary(job, now) for job in self.jobs.values()]

    def _summary(self, job: Job, now: float) -> dict[str, Any]:
        return {
            "job_id": job.job_id,
            "args": job.args,
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
        self._finish_locked(job, job.terminal_status, job.due_at)

    def _finish_locked(self, job: Job, status: int, finished_at: float) -> None:
        # Runs exactly once per job (callers check final_status under the lock): hence one callback at most.
        job.final_status = status
        job.finished_at = finished_at
        if status == 3:
            job.error = FAIL_MESSAGE
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
        if route.startswith("/_sim/"):
            if not ipaddress.ip_address(client).is_loopback:
                return _json_reply({"code": 403, "message": "control API is loopback only"}, 403)
            return self._control(method, route.removeprefix("/_sim/"), body)
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
        job = self._register(args, callback_url, markers)
        answer = {"code": 0, "data": {"amount": price(args["mode"], args["duration"]), "job_id": job.job_id}}
        if markers.create_malformed:
            # A truncated body, as a proxy cut off mid-answer would leave it.
            return _Reply(200, json.dumps(answer).encode()[:-9])
        if markers.create_timeout:
            self._stopping.wait(self.create_delay)
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
        return _too_many() if markers.create_faults[call - 1] == "429" else _server_error()

    def _register(self, args: dict[str, Any], callback_url: str | None, markers: Markers) -> Job:
        seconds = markers.seconds if markers.seconds is not None else self.job_seconds
        job = Job(
            job_id="sim_" + os.urandom(12).hex(),
            args=args,
            callback_url=callback_url,
            markers=markers,
            created_at=time.time(),
            seconds=seconds,
            callback="none" if not callback_url else "skipped" if markers.no_callback else "waiting",
        )
        with self._lock:
            self.jobs[job.job_id] = job
            if job.finishes_by_itself:
                heapq.heappush(self._due, (job.due_at, job.job_id))
        return job

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
            data["model"] = MODEL
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
        return f"http://{host}:{self.port}/files/{job.job_id}.mp4"

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
        path = self.videos.path(job.args["duration"], job.args["aspect_ratio"])
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
