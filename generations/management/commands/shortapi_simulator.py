"""`manage.py shortapi_simulator --port PORT`: the bundled ShortAPI stand-in, in the foreground."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from generations.simulator import Simulator


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise CommandError(f"{name} must be a number of seconds, not {raw!r}") from None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM ends the simulator exactly as Ctrl-C does: serve_forever() stops cleanly on KeyboardInterrupt.
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the ShortAPI simulator (CONTRACT section 6) on 127.0.0.1:PORT until interrupted."
    # The simulator touches neither the database nor any model: no need to wait for system checks.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8001, help="port on 127.0.0.1 (0: any free port)")
        parser.add_argument(
            "--key", default=None, help="Bearer key to accept (default: $SHORTAPI_KEY or sim-key)"
        )
        parser.add_argument(
            "--job-seconds", type=float, default=None,
            help="how long each job takes (default: $SHORTAPI_SIMULATOR_JOB_SECONDS or 20)",
        )  # fmt: skip
        parser.add_argument(
            "--cache-dir", default=None, help="where rendered MP4s are kept (default: var/simulator)"
        )
        parser.add_argument("--create-delay", type=float, default=10.0, help="delay for [sim:create-timeout]")
        parser.add_argument(
            "--query-delay", type=float, default=10.0, help="delay for [sim:query-timeout-xN]"
        )
        parser.add_argument(
            "--big-bytes", type=int, default=64 * 1024 * 1024, help="size for [sim:video-big]"
        )
        parser.add_argument(
            "--no-prompt-on-screen",
            action="store_true",
            help="text-to-video clips show a test pattern, not their prompt (one render per size)",
        )
        parser.add_argument(
            "--latency", type=float, default=0.0,
            help="seconds every API call and video download waits before its answer (a distant provider)",
        )  # fmt: skip
        parser.add_argument("--verbose", action="store_true", help="log every request to stderr")

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["key"] or os.environ.get("SHORTAPI_KEY") or "sim-key"
        job_seconds = options["job_seconds"]
        if job_seconds is None:
            job_seconds = _env_float("SHORTAPI_SIMULATOR_JOB_SECONDS", 20.0)
        if job_seconds < 0:
            raise CommandError("--job-seconds must not be negative")
        cache_dir = options["cache_dir"] or Path(settings.BASE_DIR) / "var" / "simulator"
        simulator = Simulator(
            api_key=key,
            job_seconds=job_seconds,
            cache_dir=cache_dir,
            port=options["port"],
            create_delay=options["create_delay"],
            query_delay=options["query_delay"],
            big_bytes=options["big_bytes"],
            prompt_on_screen=not options["no_prompt_on_screen"],
            latency=options["latency"],
            verbose=options["verbose"],
        )
        try:
            simulator.start()
        except OSError as error:
            raise CommandError(f"cannot listen on 127.0.0.1:{options['port']}: {error}") from None
        if threading.current_thread() is threading.main_thread():
            # SIGINT too: a shell starts background children with SIGINT ignored; Ctrl-C must still stop us.
            signal.signal(signal.SIGINT, _interrupt)
            signal.signal(signal.SIGTERM, _interrupt)
        self.stdout.write(f"ShortAPI simulator on {simulator.url} (key: {key}, job time: {job_seconds:g}s)")
        self.stdout.flush()
        simulator.serve_forever()
