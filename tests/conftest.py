import os
import subprocess
import sys
import threading
from pathlib import Path

import django_rq
import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test import Client
from rq import SimpleWorker

from accounts.billing.ledger import credits_grant
from accounts.billing.selectors import credits_for_user
from accounts.models import User
from accounts.services import api_token_create

ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (`SEEDANCE_FORBID_SKIPS=1`, set by .ci/run) a skipped test fails the run: a suite that
    skipped its browser or PostgreSQL tests has not tested what it claims."""
    if not os.environ.get("SEEDANCE_FORBID_SKIPS") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        names = ", ".join(report.nodeid for report in skipped[:10])
        print(f"\nFAILED: {len(skipped)} tests skipped with SEEDANCE_FORBID_SKIPS set: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def clean_redis() -> None:
    # Rate-limit counters and queued jobs from one test must not leak into the next. The
    # database is this run's own (seedance_site.test_redis), never another run's.
    django_rq.get_connection("default").flushdb()
    cache.clear()


def balance(user: User) -> int:
    """The user's balance as the pages and the API show it."""
    return credits_for_user(user=user).balance_cents


def owed(user: User) -> int:
    return credits_for_user(user=user).owed_cents


def make_user(username: str, credits: int = 0, **extra) -> User:
    user = User.objects.create_user(
        username=username, email=f"{username}@example.com", password="pw-" + username * 2, **extra
    )
    if credits:
        credits_grant(user=user, amount_cents=credits, reason="test credits")
        user.refresh_from_db()
    return user


@pytest.fixture
def alice(db) -> User:
    return make_user("alice", 10_000)


@pytest.fixture
def bob(db) -> User:
    return make_user("bob", 10_000)


@pytest.fixture
def carol(db) -> User:
    return make_user("carol", 0)


class ApiClient:
    """The Django test client with a Bearer token and JSON bodies."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **kwargs):
        return self.client.get(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, data: object = None, **kwargs):
        return self._send("post", path, data, **kwargs)

    def patch(self, path: str, data: object = None, **kwargs):
        return self._send("patch", path, data, **kwargs)

    def _send(self, method: str, path: str, data: object = None, **kwargs):
        import json

        return getattr(self.client, method)(
            path,
            data=json.dumps(data if data is not None else {}),
            content_type="application/json",
            headers={**self.headers, **kwargs.pop("headers", {})},
            **kwargs,
        )


def api_for(user: User) -> ApiClient:
    _, token = api_token_create(user=user, name="tests")
    return ApiClient(token)


@pytest.fixture
def alice_api(alice: User) -> ApiClient:
    return api_for(alice)


@pytest.fixture
def bob_api(bob: User) -> ApiClient:
    return api_for(bob)


def test_database_url() -> str:
    """A DATABASE_URL naming the test database, for subprocesses (commands, workers)."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or 'localhost'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # type: ignore[attr-defined]


def manage(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run manage.py for real, against the test database, and return what it printed."""
    full_env = {**os.environ, "DATABASE_URL": test_database_url(), **(env or {})}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- The pipeline: the simulator over real HTTP, a real RQ worker on real Redis ---------------

SIM_KEY = "test-shortapi-key"


@pytest.fixture(scope="session")
def simulator():
    from generations.simulator import Simulator

    sim = Simulator(
        api_key=SIM_KEY,
        job_seconds=0.4,
        cache_dir=ROOT / "var" / "simulator-test-cache",
        create_delay=3.0,
        query_delay=3.0,
        big_bytes=3 * 1024 * 1024,
    ).start()
    yield sim
    sim.stop()


@pytest.fixture
def pipeline(simulator, live_server, settings, tmp_path):
    """Settings that point the portal at the simulator, callbacks at the live server."""
    simulator.reset()
    settings.SHORTAPI_BASE_URL = simulator.url
    settings.SHORTAPI_KEY = SIM_KEY
    settings.SITE_URL = live_server.url
    settings.SHORTAPI_READ_TIMEOUT = 1.5
    settings.GENERATION_FIRST_POLL_SECONDS = 0.2
    settings.GENERATION_POLL_INITIAL_SECONDS = 0.2
    settings.GENERATION_POLL_MAX_SECONDS = 0.5
    settings.VIDEO_MAX_BYTES = 2 * 1024 * 1024
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return simulator


class BurstWorker(SimpleWorker):
    """RQ's SimpleWorker without its command channel: a worker listens for commands (stop, kill) on
    a pubsub thread, and its teardown waits up to a second for that thread to end — a second per
    round of `run_jobs`, for a channel nobody sends on."""

    def subscribe(self) -> None:
        pass


def run_jobs(until=None, *, timeout: float = 60.0) -> None:
    """Run a real RQ worker (burst mode, in this thread) until `until()` holds, or without
    `until` until nothing is due; due scheduled jobs are moved to the queue as RQ's scheduler would."""
    import time

    from rq.registry import ScheduledJobRegistry
    from rq.scheduler import RQScheduler

    connection = django_rq.get_connection("default")
    queue = django_rq.get_queue("default")
    scheduler = RQScheduler([queue], connection=connection)
    scheduler._scheduled_job_registries = [ScheduledJobRegistry(queue=queue)]
    deadline = time.monotonic() + timeout
    while True:
        scheduler.enqueue_scheduled_jobs()
        BurstWorker([queue], connection=connection).work(burst=True, with_scheduler=False)
        if until is not None and until():
            return
        if until is None and not len(queue):
            return  # what was due has run; jobs booked for later stay booked
        if time.monotonic() > deadline:
            raise AssertionError("the jobs did not get there in time")
        time.sleep(0.05)


# --- Races: real threads, and the row locks of PostgreSQL -----------------------------------------


def in_threads(*tasks) -> None:
    """Run every task in a thread of its own, all released at once; re-raise the first error."""
    barrier = threading.Barrier(len(tasks))
    errors: list[BaseException] = []

    def run(task) -> None:
        try:
            barrier.wait(timeout=10)
            task()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(task,)) for task in tasks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def wait_for_a_lock_wait(timeout: float = 20.0) -> None:
    """Until some other session of this database waits for a row lock (PostgreSQL)."""
    import time

    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            if time.monotonic() > deadline:
                raise AssertionError("nobody waited for the lock")
            time.sleep(0.02)
