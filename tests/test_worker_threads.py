"""ThreadedWorker (issue 16): several job loops in one worker process, so that jobs waiting on a
distant provider overlap instead of queueing behind each other's sockets.

Real `manage.py rqworker` processes, a real simulator that answers every call after a latency,
generations submitted through the API; the simulator counts how many calls it had at once.
"""

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import django_rq
import pytest

from accounts.billing.audit import audit_mismatches
from generations.models import Generation
from generations.simulator import Simulator
from generations.worker import SimpleWorker
from tests.factories import ROOT, SIM_KEY, api_for, make_user, test_database_url, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def slow_simulator():
    """A provider 0.3 s away: every create, query and download waits that long for its answer."""
    sim = Simulator(
        api_key=SIM_KEY, job_seconds=0.5, cache_dir=ROOT / "var" / "simulator-test-cache", latency=0.3
    ).start()
    yield sim
    sim.stop()


@pytest.fixture
def worker(slow_simulator, live_server, settings, tmp_path):
    settings.SHORTAPI_BASE_URL = slow_simulator.url
    settings.SHORTAPI_KEY = SIM_KEY
    settings.SITE_URL = live_server.url
    settings.MEDIA_ROOT = str(tmp_path / "media")
    started: list[subprocess.Popen] = []

    def start(worker_class: str = "generations.worker.ThreadedWorker", threads: int = 4) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "SHORTAPI_BASE_URL": slow_simulator.url,
            "SHORTAPI_KEY": SIM_KEY,
            "SITE_URL": live_server.url,
            "GENERATION_FIRST_POLL_SECONDS": "0.3",
            "GENERATION_POLL_INITIAL_SECONDS": "0.3",
            "GENERATION_POLL_MAX_SECONDS": "0.5",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "RQ_WORKER_CLASS": worker_class,
            "WORKER_THREADS": str(threads),
            "LOG_LEVEL": "INFO",
            # A worker still running at teardown is sent SIGABRT first: every thread's stack, in its log.
            "PYTHONFAULTHANDLER": "1",
        }
        log = open(tmp_path / f"worker-{len(started)}.log", "wb")  # closed by the OS with the process
        process = subprocess.Popen(
            [sys.executable, "manage.py", "rqworker", "default", "--with-scheduler"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
            with contextlib.suppress(ProcessLookupError):  # and whatever it started (ffmpeg)
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Shown by pytest only when the test failed: what each worker did, to tell why.
    for log in sorted(tmp_path.glob("worker-*.log")):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-30_000:]}")


def submit_many(count: int) -> list[str]:
    api = api_for(make_user("alice", 100_000))
    ids = []
    for i in range(count):
        response = api.post("/api/v1/generations", {"prompt": f"overlap {i}", "duration": 4})
        assert response.status_code == 201, response.content
        ids.append(response.json()["id"])
    return ids


def all_ended(ids: list[str]) -> bool:
    return not Generation.objects.filter(pk__in=ids, status__in=Generation.ACTIVE).exists()


def all_have_posters(ids: list[str]) -> bool:
    return not Generation.objects.filter(pk__in=ids, poster="").exists()


def test_one_threaded_worker_overlaps_the_calls_of_different_generations(slow_simulator, worker, settings):
    worker(threads=4)
    ids = submit_many(5)
    wait_for(lambda: all_ended(ids), timeout=90, what="every generation to end")
    assert set(Generation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"succeeded"}
    # The poster is cut from the download itself, in the same job, just after the video is stored.
    wait_for(lambda: all_have_posters(ids), timeout=90, what="the posters")
    assert audit_mismatches() == []
    # One process had more than one call to the provider in progress at once.
    assert slow_simulator.stats()["peak_concurrent_calls"] >= 2


def test_a_single_loop_makes_its_calls_one_at_a_time(slow_simulator, worker):
    """The control for the test above: the same load on one loop never overlaps."""
    worker(worker_class="generations.worker.SimpleWorker", threads=1)
    ids = submit_many(3)
    wait_for(lambda: all_ended(ids), timeout=90, what="every generation to end")
    assert set(Generation.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"succeeded"}
    assert slow_simulator.stats()["peak_concurrent_calls"] == 1


def test_a_threaded_worker_stops_on_sigterm_after_its_jobs(worker):
    process = worker(threads=4)
    ids = submit_many(2)
    wait_for(lambda: all_ended(ids), timeout=90, what="every generation to end")
    process.send_signal(signal.SIGTERM)
    wait_for(lambda: process.poll() is not None, timeout=90, what="the worker to stop")
    assert process.returncode == 0


def child_processes(pid: int) -> list[str]:
    """The command lines of the processes `pid` has started (any of its threads), from /proc.

    Threads (RQ's timers, a job's own) and children come and go while this reads: one gone
    between the listing and the read is simply not there any more."""
    children: set[str] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            children.update((task / "children").read_text().split())
    lines = []
    for child in sorted(children):
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            lines.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())
    return lines


@pytest.mark.parametrize("worker_class", ["ThreadedWorker", "SimpleWorker"])
def test_the_scheduler_is_a_thread_of_the_worker_which_forks_nothing(worker, worker_class):
    """RQ forks its scheduler from the worker process. Forked while the job loops run, the child
    can inherit a lock one of them held (stderr's buffer mid-log) and hang for ever: no poll is
    ever due again. Our workers' scheduler is a thread: polls arrive and nothing forks."""
    redis = django_rq.get_connection("default")
    process = worker(worker_class=f"generations.worker.{worker_class}", threads=4)
    ids = submit_many(2)
    wait_for(lambda: all_ended(ids), timeout=90, what="every generation to end")  # every poll was scheduled
    wait_for(lambda: all_have_posters(ids), timeout=90, what="the posters")
    # ffmpeg's, for the posters, end with them; RQ's forked scheduler would stay for good.
    wait_for(lambda: child_processes(process.pid) == [], timeout=15, what="no child process of the worker")
    assert redis.exists("rq:scheduler-lock:default")
    process.send_signal(signal.SIGTERM)
    wait_for(lambda: process.poll() is not None, timeout=90, what="the worker to stop")
    assert process.returncode == 0
    # The scheduler thread stopped with the worker and gave its locks back.
    assert not redis.exists("rq:scheduler-lock:default")


class _HeldLogHandler(logging.Handler):
    """A log handler whose lock someone else holds just when the scheduler says it is stopping:
    as when a signal interrupts the main thread while it is writing a log line."""

    def __init__(self) -> None:
        super().__init__()
        self.released = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Scheduler stopping"):
            self.released.wait(timeout=60)


def test_a_warm_stop_does_not_wait_in_the_signal_handler_for_the_scheduler_thread():
    """RQ stops the scheduler from its signal handler, in the interrupted main thread. Waiting
    there for our scheduler thread deadlocks when that thread needs a lock the main thread held at
    that instant: a worker hung on SIGTERM in CI. The handler only asks; teardown() waits."""
    redis = django_rq.get_connection("default")
    worker = SimpleWorker(["default"], connection=redis)
    worker._start_scheduler(logging_level="INFO")
    thread = worker.scheduler._process
    assert isinstance(thread, threading.Thread)
    wait_for(lambda: redis.exists("rq:scheduler-lock:default"), what="the scheduler's lock")
    held = _HeldLogHandler()
    scheduler_log = logging.getLogger("rq.scheduler")
    scheduler_log.addHandler(held)
    try:
        signal_handler = threading.Thread(target=worker.stop_scheduler)  # stands in for the main thread
        signal_handler.start()
        signal_handler.join(timeout=10)
        asked_without_waiting = not signal_handler.is_alive()
    finally:
        held.released.set()  # the main thread goes on, and lets go of its lock
        scheduler_log.removeHandler(held)
    assert asked_without_waiting, "stop_scheduler() waited for the scheduler thread"
    worker.teardown()
    assert not thread.is_alive()
    assert not redis.exists("rq:scheduler-lock:default")
