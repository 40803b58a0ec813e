"""The one home of the tests' helpers: users with credits, API clients, generations in any state,
a real worker to run the queue, waits with deadlines, races in threads.

Test modules import from here (and the fakes: tests.fake_stripe, tests.webhook_receiver,
tests.media), never from one another nor from conftest.py, whose fixtures are built on these.
"""

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import django_rq
from django.db import connection, connections
from django.test import Client
from django.utils import timezone
from rq import Queue, SimpleWorker

from accounts.billing.ledger import credits_grant
from accounts.billing.selectors import credits_for_user
from accounts.models import CreditEntry, User
from accounts.services import api_token_create
from generations.models import Generation
from generations.pricing import quote
from generations.services import (
    generation_claim_fetch,
    generation_claim_submit,
    generation_create,
    generation_mark_running,
    generation_set_share,
    generation_succeed,
)

ROOT = Path(__file__).resolve().parent.parent
SIM_KEY = "test-shortapi-key"

# CONTRACT §4.
CONTRACT_OPERATIONS = {
    ("GET", "/api/v1/pricing"),
    ("GET", "/api/v1/account"),
    ("GET", "/api/v1/generations"),
    ("POST", "/api/v1/generations"),
    ("GET", "/api/v1/generations/{id}"),
    ("POST", "/api/v1/checkout"),
    ("POST", "/api/v1/uploads"),
    ("GET", "/api/v1/uploads/{id}"),
    ("PATCH", "/api/v1/account"),
    ("POST", "/api/v1/generations/{id}/cancel"),
}

T = TypeVar("T")

# --- The browser: Debian's Chromium, driven by Playwright ------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "screenshots"


def play(page, selector: str) -> None:
    """Start the video and wait until it has a frame to show (readyState >= 2)."""
    page.eval_on_selector(selector, "v => { v.muted = true; return v.play(); }")
    page.wait_for_function(f"document.querySelector({selector!r}).readyState >= 2", timeout=15_000)


# --- Waiting: on a condition, with a deadline, never on the clock alone ---------------------------


def wait_for(condition: Callable[[], T], timeout: float = 30.0, what: str = "the condition") -> T:
    """Poll `condition` until it returns something truthy, and return that; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# --- Users, balances, clients -----------------------------------------------------------------------


def make_user(username: str, credits: int = 0, **extra) -> User:
    user = User.objects.create_user(
        username=username, email=f"{username}@example.com", password="pw-" + username * 2, **extra
    )
    if credits:
        credits_grant(user=user, amount_cents=credits, reason="test credits")
        user.refresh_from_db()
    return user


def balance(user: User) -> int:
    """The user's balance as the pages and the API show it."""
    return credits_for_user(user=user).balance_cents


def owed(user: User) -> int:
    return credits_for_user(user=user).owed_cents


def client_for(user: User) -> Client:
    """A browser session logged in as `user`."""
    client = Client()
    client.force_login(user)
    return client


def html(response) -> str:
    return response.content.decode()


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


# --- Generations ------------------------------------------------------------------------------------


def submit(api: ApiClient, prompt: str = "A red fox in fresh snow", **extra: Any) -> Generation:
    """Submit through the JSON API, as a client would; the generation it made."""
    response = api.post("/api/v1/generations", {"prompt": prompt, "duration": 4, **extra})
    assert response.status_code == 201, response.content
    return Generation.objects.get(pk=response.json()["id"])


def public_status(generation: Generation) -> str:
    """The status a person sees (queued, running, succeeded, failed) as the database has it now."""
    return Generation.objects.get(pk=generation.pk).public_status


def status(generation: Generation) -> str:
    """The generation's status as the database has it now."""
    return Generation.objects.get(pk=generation.pk).status


def finished(generation: Generation) -> Callable[[], bool]:
    return lambda: status(generation) in Generation.FINISHED


def settle(generation: Generation, timeout: float = 60.0) -> Generation:
    """Run the worker until the generation has finished, one way or the other."""
    run_jobs(finished(generation), timeout=timeout)
    generation.refresh_from_db()
    return generation


def ledger(generation: Generation) -> list[tuple[str, int]]:
    """The generation's ledger entries, oldest first, as (kind, amount)."""
    return list(
        CreditEntry.objects.filter(reference=generation.ledger_reference)
        .order_by("id")
        .values_list("kind", "amount_cents")
    )


def generation_row(
    user: User,
    *,
    status: str = Generation.Status.SUCCEEDED,
    prompt: str = "A red fox trots through fresh snow",
    mode: str = "std",
    duration: int = 5,
    aspect_ratio: str = "16:9",
    shared: bool = False,
    **extra: Any,
) -> Generation:
    """A row as the pipeline leaves it, written directly (no charge): for tests about what shows it."""
    price = quote(mode, duration)
    now = timezone.now()
    fields: dict[str, Any] = {
        "user": user,
        "prompt": prompt,
        "mode": mode,
        "duration": duration,
        "aspect_ratio": aspect_ratio,
        "cost_cents": price.cost_cents,
        "cents_per_second": price.cents_per_second,
        "status": status,
        "deadline_at": now + timedelta(minutes=30),
        "shared": shared,
        "listed": shared,  # shared as sharing was before it had three states: on Explore too
        "share_slug": uuid.uuid4().hex[:11] if shared else None,
    }
    if status in Generation.FINISHED:
        fields["finished_at"] = now
    if status == Generation.Status.SUCCEEDED:
        fields.setdefault("video", f"videos/test/{uuid.uuid4()}.mp4")
    if status == Generation.Status.FAILED:
        fields["error"] = "The video service could not make this video. Your credits have been returned."
    fields.update(extra)
    return Generation.objects.create(**fields)


def generation_started(
    user: User, webhook_url: str = "", prompt: str = "A heron lands on a misty lake"
) -> Generation:
    """A charged generation the video service has, through the services: the submit job queued
    for it finds nothing to do."""
    generation, _ = generation_create(
        user=user, prompt=prompt, mode="std", duration=5, aspect_ratio="16:9", webhook_url=webhook_url
    )
    assert generation_claim_submit(generation_id=generation.pk)
    job_id = f"job-{generation.pk}"
    assert generation_mark_running(generation_id=generation.pk, job_id=job_id, first_poll_in=60)
    return generation


def generation_succeeded(generation: Generation) -> None:
    """Take a started generation to succeeded, through the services."""
    assert generation_claim_fetch(
        generation_id=generation.pk, result_url="https://cdn.example/v.mp4", upstream_status=2
    )
    stored = "videos/2026/11/v.mp4"
    assert generation_succeed(generation_id=generation.pk, video_name=stored, video_bytes=1234)


# --- The worker: real RQ on real Redis, in this thread ----------------------------------------------


class BurstWorker(SimpleWorker):
    """RQ's SimpleWorker without its command channel: a worker listens for commands (stop, kill) on
    a pubsub thread, and its teardown waits up to a second for that thread to end — a second per
    round of `run_jobs`, for a channel nobody sends on."""

    def subscribe(self) -> None:
        pass


def run_jobs(until: Callable[[], object] | None = None, *, timeout: float = 60.0) -> None:
    """Run a real RQ worker (burst mode, in this thread) until `until()` holds, or without
    `until` until nothing is due; due scheduled jobs are moved to the queue as RQ's scheduler would."""
    from rq.registry import ScheduledJobRegistry
    from rq.scheduler import RQScheduler

    redis = django_rq.get_connection("default")
    queue = django_rq.get_queue("default")
    low = Queue("low", connection=redis)  # posters: after "default", as a real worker takes them
    scheduler = RQScheduler([queue, low], connection=redis)
    scheduler._scheduled_job_registries = [ScheduledJobRegistry(queue=q) for q in (queue, low)]
    deadline = time.monotonic() + timeout
    while True:
        scheduler.enqueue_scheduled_jobs()
        BurstWorker([queue, low], connection=redis).work(burst=True, with_scheduler=False)
        if until is not None and until():
            return
        if until is None and not len(queue) and not len(low):
            return  # what was due has run; jobs booked for later stay booked
        if time.monotonic() > deadline:
            raise AssertionError("the jobs did not get there in time")
        time.sleep(0.05)


# --- Subprocesses on the test database --------------------------------------------------------------


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


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py with the production settings and only the environment given (no test database)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SEEDANCE_TEST"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "seedance_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- Races: real threads, and the row locks of PostgreSQL -----------------------------------------


def in_threads(*tasks: Callable[[], object]) -> list[object]:
    """Run every task in a thread of its own, all released at once; re-raise the first error.
    What each returned, in the order given."""
    barrier = threading.Barrier(len(tasks))
    errors: list[BaseException] = []
    results: list[object] = [None] * len(tasks)

    def run(index: int, task: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = task()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, task)) for i, task in enumerate(tasks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def race(count: int, submit: Callable[[int], T]) -> list[T]:
    """`submit(i)` for i in range(count), all in threads released at once; what each returned."""
    return in_threads(*(lambda i=i: submit(i) for i in range(count)))  # type: ignore[return-value]


def wait_for_a_lock_wait(timeout: float = 20.0) -> None:
    """Until some other session of this database waits for a row lock (PostgreSQL)."""

    def someone_waits() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            return bool(cursor.fetchone()[0])

    wait_for(someone_waits, timeout=timeout, what="another session to wait for the row lock")


def with_files(generation: Generation) -> Generation:
    """Give a finished row a stored video and poster (tiny stand-ins), as the fetch would."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    generation.video = default_storage.save(
        f"videos/t/{generation.pk}.mp4", ContentFile(b"\0\0\0\x18ftypmp42")
    )
    generation.poster = default_storage.save(
        f"posters/t/{generation.pk}.jpg", ContentFile(b"\xff\xd8\xff\xe0jpeg")
    )
    generation.save(update_fields=["video", "poster"])
    return generation


def log_in(page, base: str, username: str) -> None:
    """Log a factory user (password "pw-" + name twice) in through the browser."""
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-" + username * 2)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/")


def make_videos(alice, bob) -> dict[str, Generation]:
    """Real videos and posters through the simulator, in each state a page can show."""
    specs = {
        "fox": ("A red fox trots through fresh snow at dawn, slow tracking shot", "std", 5, "16:9"),
        "drone": ("Aerial drone shot over a misty pine forest at sunrise", "fast", 4, "21:9"),
        "neon": ("Close-up of rain drops on a neon-lit Tokyo street at night", "std", 6, "9:16"),
        "boat": ("A paper boat drifts down a stream in spring, macro lens", "fast", 4, "1:1"),
        "failed": ("[sim:fail] An astronaut cat plays the piano on the moon", "std", 5, "4:3"),
    }
    made = {}
    for name, (prompt, mode, duration, ratio) in specs.items():
        made[name], _ = generation_create(
            user=alice, prompt=prompt, mode=mode, duration=duration, aspect_ratio=ratio
        )
    made["bob"], _ = generation_create(
        user=bob,
        prompt="A lighthouse in a storm, waves crashing",
        mode="fast",
        duration=4,
        aspect_ratio="3:4",
    )
    run_jobs(lambda: all(public_status(g) in ("succeeded", "failed") for g in made.values()), timeout=60)
    run_jobs()  # posters
    for name in ("fox", "neon", "bob"):
        generation_set_share(generation=Generation.objects.get(pk=made[name].pk), shared=True)
    made["running"], _ = generation_create(
        user=alice,
        prompt="[sim:never] A hot-air balloon over Cappadocia",
        mode="std",
        duration=8,
        aspect_ratio="16:9",
    )
    run_jobs(lambda: public_status(made["running"]) == "running")
    # Created last and never given to the worker, so it stays queued.
    made["queued"], _ = generation_create(
        user=alice, prompt="A koi pond in the rain, top-down view", mode="std", duration=5, aspect_ratio="1:1"
    )
    return {name: Generation.objects.get(pk=g.pk) for name, g in made.items()}
