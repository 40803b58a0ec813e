"""Load benchmark (issue 6, item 4): simulated users against the real stack, per-endpoint figures.

    .venv/bin/python bench/load.py                       # 200 users for 120 s
    .venv/bin/python bench/load.py --users 20 --seconds 20
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/load.py

Starts its own stack in a scratch folder under var/load/<timestamp>/ (logs stay there): the ShortAPI
simulator (jobs take --job-seconds), gunicorn with gunicorn.conf.py (4 workers), 2 RQ workers
(SimpleWorker, one scheduler between them), the database and Redis:

* DATABASE_URL set: a fresh database named --db-name (default seedance_load) on that PostgreSQL server,
  dropped and created again on every run; unset: a SQLite file in the scratch folder.
* REDIS_URL set: that Redis database, which is EMPTIED at the start and the end, so it must name a
  database of its own (redis://host:port/N, N > 0); unset: an embedded Redis in the scratch folder.

Then, all on loopback: N users with API tokens and plenty of credits are created through the ORM; a
/healthz-only phase with the same users and think times gives the floor; the mixed phase runs for
--seconds (browse public pages, log in through the real form with CSRF, own pages, the JSON API:
submit with an Idempotency-Key, poll until finished, list; watch and share finished videos); active
generations get up to --drain seconds to finish; `manage.py audit_credits` runs; every process it
started is stopped; a dated section is appended to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil
import requests
from common import free_port, pct, wait_http

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
RESULTS = ROOT / "bench" / "RESULTS.md"
SIM_KEY = "load-bench-key"
PASSWORD = "load-bench-password-1"
REQUEST_TIMEOUT = 60.0
TERMINAL = ("succeeded", "failed")
PROMPTS = (
    "A red fox trotting through fresh snow at dawn",
    "Slow dolly shot over a neon-lit rainy street",
    "A paper boat drifting down a mountain stream",
    "Timelapse of clouds rolling over a desert mesa",
    "A hummingbird hovering at a purple flower, macro",
)
# Few (duration, aspect ratio) pairs: the simulator renders each MP4 once and caches it, so the
# load measures the portal, not ffmpeg.
DURATIONS = (4, 5)
RATIOS = ("16:9", "9:16", "1:1")
PUBLIC_PAGES = ("/", "/explore/", "/accounts/login/")
OWN_PAGES = ("/gallery/", "/billing/", "/accounts/")
ROUTE_ORDER = (
    "GET /healthz",
    "GET /",
    "GET /explore/",
    "GET /accounts/login/",
    "POST /accounts/login/",
    "GET /gallery/",
    "GET /billing/",
    "GET /accounts/",
    "GET /api/v1/pricing",
    "GET /api/v1/account",
    "POST /api/v1/generations",
    "POST /api/v1/generations (replay)",
    "GET /api/v1/generations/<id>",
    "GET /api/v1/generations",
    "GET /videos/<token>.mp4",
    "POST /generations/<id>/share/",
)
WEBHOOK_ROUTE = "POST /webhooks/shortapi/<token>/"


# --- Small helpers ------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return "–" if seconds != seconds else f"{seconds * 1000:.0f} ms"  # NaN != NaN


# --- Configuration ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    users: int
    seconds: float
    floor_seconds: float
    think_min: float
    think_max: float
    job_seconds: float
    gen_rate: float
    login_share: float
    burst_users: int
    max_active: int
    drain_seconds: float
    web_workers: int
    web_threads: int
    rq_workers: int
    db_name: str
    seed: int
    write_results: bool


def parse_args() -> Config:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--users", type=int, default=200, help="concurrent simulated users")
    add("--seconds", type=float, default=120, help="length of the mixed phase")
    add("--floor-seconds", type=float, default=10, help="length of the /healthz-only baseline phase")
    add("--think-min", type=float, default=0.5, help="shortest pause between a user's requests (s)")
    add("--think-max", type=float, default=1.5, help="longest pause between a user's requests (s)")
    add("--job-seconds", type=float, default=20, help="upstream time of each simulated job")
    add("--gen-rate", type=float, default=1.5, help="generations submitted per second, all users together")
    add("--login-share", type=float, default=0.25, help="share of users who log in through the form")
    add("--burst-users", type=int, default=10, help="users who submit one more than the cap at once")
    add("--max-active", type=int, default=3, help="MAX_ACTIVE_GENERATIONS_PER_USER for the stack")
    add("--drain", type=float, default=120, help="longest wait for active generations after the load")
    add("--web-workers", type=int, default=4)
    add("--web-threads", type=int, default=4)
    add("--rq-workers", type=int, default=2)
    add("--db-name", default="seedance_load", help="PostgreSQL database to create (DATABASE_URL set)")
    add("--seed", type=int, default=6)
    add("--no-results", action="store_true", help="print the section without appending it to RESULTS.md")
    a = parser.parse_args()
    if a.users < 1 or a.seconds <= 0 or a.think_max < a.think_min:
        parser.error("need --users >= 1, --seconds > 0 and --think-max >= --think-min")
    return Config(
        a.users, a.seconds, a.floor_seconds, a.think_min, a.think_max, a.job_seconds, a.gen_rate,
        a.login_share, min(a.burst_users, a.users), a.max_active, a.drain, a.web_workers, a.web_threads,
        a.rq_workers, a.db_name, a.seed, not a.no_results,
    )  # fmt: skip


# --- The stack ----------------------------------------------------------------------------------


def fresh_postgres(url: str, name: str) -> str:
    """Drop and create `name` on the server `url` points at; return a URL naming it."""
    import psycopg
    from psycopg import sql

    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"--db-name must be a plain identifier, not {name!r}")
    parts = urlsplit(url)
    # Connect to the maintenance database: the target may be the one DATABASE_URL names.
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return urlunsplit(parts._replace(path=f"/{name}"))


def checked_redis_url(url: str) -> str:
    """The URL, if it names a database other than 0: this run empties it."""
    db = urlsplit(url).path.strip("/")
    if not db.isdigit() or db == "0":
        raise SystemExit(
            f"REDIS_URL must name a Redis database of its own (redis://host:port/N, N > 0): "
            f"load.py empties it. Got {url!r}."
        )
    return url


def redacted(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=host + port))


class Stack:
    """Everything the portal runs on, started in one scratch folder and stopped again."""

    def __init__(self, workdir: Path, config: Config) -> None:
        self.workdir = workdir
        self.config = config
        self.processes: dict[str, subprocess.Popen] = {}
        self.sim_url = f"http://127.0.0.1:{free_port()}"
        self.web_url = f"http://127.0.0.1:{free_port()}"
        self.redis_process: subprocess.Popen | None = None
        self.database_label = ""
        self.redis_label = ""
        self.env = self._base_env()

    def _base_env(self) -> dict[str, str]:
        env = {
            **os.environ,
            # A two-line settings module in the scratch folder: production settings, except that
            # collectstatic writes there instead of into the shared checkout.
            "DJANGO_SETTINGS_MODULE": "load_settings",
            "PYTHONPATH": f"{self.workdir}{os.pathsep}{ROOT}",
            "SEEDANCE_VAR_DIR": str(self.workdir),
            "DJANGO_SECRET_KEY": "load-bench-secret-key-not-for-production-0123456789abcdef",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": self.web_url,
            "SHORTAPI_BASE_URL": self.sim_url,
            "SHORTAPI_KEY": SIM_KEY,
            "MAX_ACTIVE_GENERATIONS_PER_USER": str(self.config.max_active),
            # Every simulated user comes from 127.0.0.1; the per-address limits would refuse them.
            "LOGIN_RATE_LIMIT": "100000/m",
            "SIGNUP_RATE_LIMIT": "100000/h",
            "API_IP_RATE_LIMIT": "1000000/m",  # the per-user API and submit limits stay as shipped
            "MEDIA_ROOT": str(self.workdir / "media"),
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": str(self.config.web_workers),
            "GUNICORN_THREADS": str(self.config.web_threads),
            "BIND": self.web_url.removeprefix("http://"),
            "RQ_WORKER_CLASS": "generations.worker.SimpleWorker",
        }
        for name in ("DJANGO_DEBUG", "PORT", "DJANGO_HTTPS", "GUNICORN_ACCESS_LOG"):
            env.pop(name, None)
        return env

    # -- setup --

    def prepare(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "load_settings.py").write_text(
            "from seedance_site.settings import *  # noqa: F403\n"
            f"STATIC_ROOT = {str(self.workdir / 'static')!r}\n"
        )
        self._prepare_database()
        self._prepare_redis()
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")

    def _prepare_database(self) -> None:
        url = os.environ.get("DATABASE_URL")
        if url and url.startswith(("postgres://", "postgresql://")):
            self.env["DATABASE_URL"] = fresh_postgres(url, self.config.db_name)
            self.database_label = f"PostgreSQL (fresh database `{self.config.db_name}`)"
        elif url:
            raise SystemExit("DATABASE_URL must be a PostgreSQL URL (or unset, for SQLite)")
        else:
            self.env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'db.sqlite3'}"
            self.database_label = "SQLite (scratch file; DATABASE_URL unset)"

    def _prepare_redis(self) -> None:
        import redis

        url = os.environ.get("REDIS_URL")
        if url:
            self.env["REDIS_URL"] = checked_redis_url(url)
            self.redis_label = f"Redis at `{redacted(url)}`"
        else:
            from seedance_site import embedded_redis

            embedded_redis.VAR_DIR = self.workdir
            self.redis_process = embedded_redis.start()
            self.env["REDIS_URL"] = embedded_redis.url()
            self.redis_label = "embedded Redis (REDIS_URL unset)"
        redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=False
        )
        if check and result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    # -- processes --

    def spawn(self, name: str, args: list[str], **env: str) -> subprocess.Popen:
        # Each process in a session of its own, so whatever it leaves behind (a gunicorn worker, an
        # ffmpeg) can be found and stopped by its group, without touching anyone else's processes.
        with (
            open(self.workdir / f"{name}.out.log", "ab") as out,
            open(self.workdir / f"{name}.err.log", "ab") as err,
        ):
            process = subprocess.Popen(
                args, cwd=ROOT, env={**self.env, **env}, start_new_session=True, stdout=out, stderr=err
            )
        self.processes[name] = process
        return process

    def start(self) -> None:
        sim_port = self.sim_url.rsplit(":", 1)[1]
        self.spawn(
            "simulator",
            [PYTHON, "manage.py", "shortapi_simulator", "--port", sim_port, "--key", SIM_KEY,
             "--no-prompt-on-screen", "--job-seconds", str(self.config.job_seconds),
             "--cache-dir", str(ROOT / "var" / "simulator")],
        )  # fmt: skip
        self.spawn("gunicorn", [PYTHON, "-m", "gunicorn", "seedance_site.wsgi", "-c", "gunicorn.conf.py"])
        for n in range(1, self.config.rq_workers + 1):
            self.spawn(f"rqworker-{n}", [PYTHON, "manage.py", "rqworker", "default", "--with-scheduler"])
        wait_http(self.sim_url + "/_sim/stats")
        wait_http(self.web_url + "/healthz")

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            stop_process(process)
        if self.redis_process is not None:
            self.redis_process.terminate()
            self.redis_process.wait(timeout=15)

    def empty_external_redis(self) -> None:
        """Empty the Redis database we were given, so no scheduled job of ours outlives the run."""
        if self.redis_process is None and self.redis_label.startswith("Redis at"):
            import redis

            redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()

    def stop_workers(self) -> None:
        for name, process in self.processes.items():
            if name.startswith("rqworker"):
                stop_process(process)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM to the leader alone, so it shuts down its own way (gunicorn stops its workers, an RQ
    worker finishes the job in hand, ffmpeg included); then nothing of its session may remain."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the usual case: the session is empty


# --- Users ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    username: str
    token: str


def django_setup(stack: Stack) -> None:
    os.environ.update({k: v for k, v in stack.env.items() if k != "PYTHONPATH"})
    sys.path.insert(0, str(stack.workdir))  # load_settings
    import django

    django.setup()


def seed_users(n: int, credits: int) -> list[Account]:
    """N users with a password, credits and an API token, through the ORM and the services."""
    from django.contrib.auth.hashers import make_password
    from django.db import connection

    from accounts.billing.ledger import credits_grant
    from accounts.models import User
    from accounts.services import api_token_create

    hashed = make_password(PASSWORD)  # hashing once: PBKDF2 is slow by design
    names = [f"load{i:04d}" for i in range(n)]
    User.objects.bulk_create(User(username=u, email=f"{u}@example.com", password=hashed) for u in names)
    accounts = []
    for user in User.objects.filter(username__in=names).order_by("username"):
        credits_grant(user=user, amount_cents=credits, reason="load benchmark")
        _, token = api_token_create(user=user, name="load benchmark")
        accounts.append(Account(user.username, token))
    connection.close()
    return accounts


# --- What happened: one sample per request --------------------------------------------------------


@dataclass
class Recorder:
    """Samples from every user thread. list.append is atomic in CPython, so no lock is needed on
    the hot path; the counters below take the lock."""

    samples: list[tuple[str, int, float]] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)
    e2e: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, route: str, status: int, seconds: float) -> None:
        self.samples.append((route, status, seconds))

    def note(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.notes[what] += n


@dataclass
class Inflight:
    id: str
    submitted: float


class SimUser(threading.Thread):
    """One person: browses, maybe logs in, scripts the API, polls what they submitted."""

    def __init__(
        self, base: str, account: Account, config: Config, recorder: Recorder, stop: threading.Event,
        rng: random.Random, *, logs_in: bool, bursts: bool, healthz_only: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(daemon=True, name=account.username)
        self.base = base
        self.account = account
        self.config = config
        self.rec = recorder
        self.stop = stop
        self.rng = rng
        self.healthz_only = healthz_only
        self.session = requests.Session()
        self.auth = {"Authorization": f"Bearer {account.token}"}
        self.logged_in = False
        self.inflight: list[Inflight] = []
        self.missing_pages: set[str] = set()
        self.expect_429 = False  # only the burst's extra submission may be refused
        self.started = time.monotonic()
        # Logins are spread over the first half: people arrive over time, and fifty PBKDF2 checks
        # at the same instant would measure a thundering herd, not a working day.
        self.login_at = self.started + rng.uniform(0, config.seconds / 2) if logs_in else None
        self.burst_at = self.started + rng.uniform(0.1, 0.6) * config.seconds if bursts else None
        self.next_submit = self.started + self._submit_gap()

    def _submit_gap(self) -> float:
        # Poisson arrivals: all users together submit --gen-rate generations per second.
        return self.rng.expovariate(self.config.gen_rate / self.config.users) if self.config.gen_rate else 1e9

    # -- the loop --

    def run(self) -> None:
        # Start at a random moment within one think time so 200 users do not fire in lockstep.
        if self.stop.wait(self.rng.uniform(0, self.config.think_max)):
            return
        while not self.stop.is_set():
            self.step()
            self.stop.wait(self.rng.uniform(self.config.think_min, self.config.think_max))

    def step(self) -> None:
        now = time.monotonic()
        if self.healthz_only:
            self.get("/healthz", "GET /healthz")
        elif self.login_at is not None and now >= self.login_at:
            self.login_at = None
            self.login()
        elif self.burst_at is not None and now >= self.burst_at:
            self.burst_at = None
            self.burst()
        elif now >= self.next_submit and len(self.inflight) < self.config.max_active:
            self.next_submit = now + self._submit_gap()
            self.submit()
        else:
            self.browse_or_poll()

    def browse_or_poll(self) -> None:
        choices: list[tuple[float, object]] = [
            (30, self.public_page),
            (6, lambda: self.api_get("/api/v1/pricing", "GET /api/v1/pricing", auth=False)),
            (6, lambda: self.api_get("/api/v1/account", "GET /api/v1/account")),
            (6, lambda: self.api_get("/api/v1/generations", "GET /api/v1/generations")),
            (4, lambda: self.get("/healthz", "GET /healthz")),
        ]
        if self.logged_in:
            choices.append((15, self.own_page))
        if self.inflight:
            choices.append((30, self.poll))
        weights = [w for w, _ in choices]
        action = self.rng.choices([a for _, a in choices], weights=weights)[0]
        action()  # type: ignore[operator]

    # -- HTTP --

    def request(self, method: str, url: str, route: str, **kwargs) -> requests.Response | None:
        started = time.perf_counter()
        try:
            response = self.session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            self.rec.add(route, 0, time.perf_counter() - started)
            self.rec.transport_errors.append(f"{route}: {type(exc).__name__}: {exc}"[:300])
            return None
        # The body has been read by now (no stream=True), so this is the full response time.
        self.rec.add(route, response.status_code, time.perf_counter() - started)
        if response.status_code == 429:
            self.rec.note("429 by design" if self.expect_429 else f"429 NOT by design: {route}")
        if response.status_code >= 500:
            self.rec.server_errors.append(f"{route} -> {response.status_code}: {response.text[:300]!r}")
        return response

    def get(self, path: str, route: str, **kwargs) -> requests.Response | None:
        return self.request("GET", self.base + path, route, **kwargs)

    def api_get(self, path: str, route: str, *, auth: bool = True) -> requests.Response | None:
        return self.get(path, route, headers=self.auth if auth else None)

    def page(self, path: str) -> None:
        if path in self.missing_pages:
            return
        response = self.get(path, f"GET {path}")
        if response is not None and response.status_code == 404:
            # A page still being built elsewhere: note it once and stop asking.
            self.missing_pages.add(path)
            self.rec.note(f"404 page skipped: {path}")

    def public_page(self) -> None:
        self.page(self.rng.choice(PUBLIC_PAGES))

    def own_page(self) -> None:
        self.page(self.rng.choice(OWN_PAGES))

    # -- the web login, with the form's CSRF token --

    def login(self) -> None:
        form = self.get("/accounts/login/", "GET /accounts/login/")
        csrf = self.session.cookies.get("csrftoken")
        if form is None or form.status_code != 200 or not csrf:
            self.rec.note("login: no form or CSRF cookie")
            return
        response = self.request(
            "POST", self.base + "/accounts/login/", "POST /accounts/login/",
            data={"username": self.account.username, "password": PASSWORD, "csrfmiddlewaretoken": csrf},
            headers={"Referer": self.base + "/accounts/login/"}, allow_redirects=False,
        )  # fmt: skip
        self.logged_in = response is not None and response.status_code == 302
        self.rec.note("login: ok" if self.logged_in else "login: refused")

    # -- the API: submit, replay, poll --

    def submit(self, route: str = "POST /api/v1/generations") -> requests.Response | None:
        key = f"{self.account.username}-{uuid.uuid4().hex}"
        body = {
            "prompt": self.rng.choice(PROMPTS),
            "mode": self.rng.choice(("std", "fast")),
            "duration": self.rng.choice(DURATIONS),
            "aspect_ratio": self.rng.choice(RATIOS),
        }
        headers = {**self.auth, "Idempotency-Key": key}
        response = self.request("POST", self.base + "/api/v1/generations", route, json=body, headers=headers)
        if response is None or response.status_code != 201:
            return response
        generation_id = response.json()["id"]
        self.inflight.append(Inflight(generation_id, time.monotonic()))
        if self.rng.random() < 0.1:
            self.replay(body, headers, generation_id)
        return response

    def replay(self, body: dict, headers: dict, generation_id: str) -> None:
        """A script retrying after a lost answer: same key, so the same generation, nothing charged."""
        route = "POST /api/v1/generations (replay)"
        response = self.request("POST", self.base + "/api/v1/generations", route, json=body, headers=headers)
        if response is not None and response.status_code < 500:
            same = response.status_code == 200 and response.json().get("id") == generation_id
            self.rec.note("replay: same generation, 200" if same else "replay: WRONG answer")

    def burst(self) -> None:
        """One more submission than the cap, back to back: the last is refused with 429 by design."""
        self.rec.note("burst users")
        attempts = self.config.max_active + 1 - len(self.inflight)
        for n in range(attempts):
            self.expect_429 = n == attempts - 1
            self.submit()
        self.expect_429 = False

    def poll(self) -> None:
        current = self.inflight.pop(0)
        response = self.api_get(f"/api/v1/generations/{current.id}", "GET /api/v1/generations/<id>")
        data = response.json() if response is not None and response.status_code == 200 else {}
        if data.get("status") not in TERMINAL:
            self.inflight.append(current)  # round robin over what is still running
            return
        with self.rec.lock:
            self.rec.e2e.append(time.monotonic() - current.submitted)
            self.rec.notes[f"seen {data['status']}"] += 1
        if data["status"] == "succeeded":
            self.enjoy(current.id, data.get("video_url"))

    def enjoy(self, generation_id: str, video_url: str | None) -> None:
        """Watch half of the finished videos; share some, so Explore has something to show."""
        if video_url and self.rng.random() < 0.5:
            path = urlsplit(video_url)
            self.request("GET", self.base + path.path + (f"?{path.query}" if path.query else ""),
                         "GET /videos/<token>.mp4")  # fmt: skip
        if self.logged_in and self.rng.random() < 0.5:
            self.request(
                "POST", f"{self.base}/generations/{generation_id}/share/", "POST /generations/<id>/share/",
                data={"shared": "1", "csrfmiddlewaretoken": self.session.cookies.get("csrftoken", "")},
                headers={"Referer": self.base + "/"}, allow_redirects=False,
            )  # fmt: skip


def run_phase(
    base: str, accounts: list[Account], config: Config, seconds: float, *, healthz_only: bool
) -> tuple[Recorder, float]:
    """All users for `seconds`; returns what they recorded and the phase's real length."""
    recorder = Recorder()
    stop = threading.Event()
    rng = random.Random(config.seed + (1 if healthz_only else 2))
    logins = set(rng.sample(range(len(accounts)), round(config.login_share * len(accounts))))
    bursts = set(rng.sample(range(len(accounts)), config.burst_users))
    users = [
        SimUser(base, account, config, recorder, stop, random.Random(rng.random()), logs_in=i in logins,
                bursts=i in bursts, healthz_only=healthz_only)
        for i, account in enumerate(accounts)
    ]  # fmt: skip
    started = time.monotonic()
    for user in users:
        user.start()
    stop.wait(seconds)
    stop.set()
    for user in users:
        user.join(timeout=REQUEST_TIMEOUT + 5)
    for user in users:
        user.session.close()
    return recorder, time.monotonic() - started


# --- CPU: who used the two cores ------------------------------------------------------------------


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live descendants."""
    try:
        root = psutil.Process(pid)
        t = root.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in root.children(recursive=True):
            try:
                c = child.cpu_times()
                total += c.user + c.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


def cpu_snapshot(stack: Stack) -> dict[str, float]:
    groups: dict[str, list[int]] = defaultdict(list)
    for name, process in stack.processes.items():
        groups["RQ workers" if name.startswith("rqworker") else name].append(process.pid)
    snapshot = {name: sum(tree_cpu(pid) for pid in pids) for name, pids in groups.items()}
    me = psutil.Process().cpu_times()
    snapshot["load generator"] = me.user + me.system
    system = psutil.cpu_times()
    snapshot["_busy"] = sum(system) - system.idle - getattr(system, "iowait", 0.0)
    return snapshot


def cpu_usage(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Average cores used per group over the phase; "everything else" is the machine's remainder:
    PostgreSQL, Redis and whatever other people run."""
    used = {k: (after[k] - before[k]) / seconds for k in before}
    busy = used.pop("_busy")
    used["everything else"] = max(0.0, busy - sum(used.values()))
    used["machine total"] = busy
    return used


# --- Afterwards: generations, logs, audit ---------------------------------------------------------


def generation_counts() -> Counter:
    from django.db import connection
    from django.db.models import Count

    from generations.models import Generation

    rows = Generation.objects.values("status").annotate(n=Count("id"))
    counts = Counter({row["status"]: row["n"] for row in rows})
    connection.close()
    return counts


def active(counts: Counter) -> int:
    return sum(counts[s] for s in ("queued", "submitting", "running", "fetching"))


def queue_length() -> int:
    import django_rq

    return len(django_rq.get_queue("default"))


def drain(limit: float) -> float:
    """Wait until no generation is active and the queue is empty (posters come after success), or
    `limit` seconds have passed; return the time waited."""
    started = time.monotonic()
    while (active(generation_counts()) or queue_length()) and time.monotonic() - started < limit:
        time.sleep(1)
    return time.monotonic() - started


def failure_reasons() -> Counter:
    from django.db import connection

    from generations.models import Generation

    reasons = Counter(
        f"{row['failure_class'] or '?'}: {row['error']}"
        for row in Generation.objects.filter(status="failed").values("failure_class", "error")
    )
    connection.close()
    return reasons


def stage_times(sim_url: str) -> dict[str, list[float]]:
    """Where a succeeded generation's time went: waiting for the submit job, the upstream job,
    and from the upstream finishing to the video being stored here (callback, poll, fetch)."""
    from django.db import connection

    from generations.models import Generation

    jobs = requests.get(sim_url + "/_sim/jobs", timeout=30).json()["jobs"]
    upstream_done = {
        j["job_id"]: datetime.fromisoformat(j["finished_at"].replace("Z", "+00:00"))
        for j in jobs
        if j.get("finished_at")
    }
    stages: dict[str, list[float]] = {"submit": [], "lag": [], "total": []}
    rows = Generation.objects.filter(status="succeeded").values(
        "created_at", "submitted_at", "finished_at", "upstream_job_id"
    )
    for row in rows:
        stages["total"].append((row["finished_at"] - row["created_at"]).total_seconds())
        if row["submitted_at"]:
            stages["submit"].append((row["submitted_at"] - row["created_at"]).total_seconds())
        if row["upstream_job_id"] in upstream_done:
            stages["lag"].append((row["finished_at"] - upstream_done[row["upstream_job_id"]]).total_seconds())
    connection.close()
    return stages


def failed_rq_jobs() -> int:
    import django_rq

    return django_rq.get_queue("default").failed_job_registry.count


ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) \S+ (?P<ms>\d+)ms')
PROBLEM = re.compile(r"Traceback|\bERROR\b|CRITICAL|WORKER TIMEOUT|was sent SIG|OperationalError")


def scan_access_log(path: Path) -> tuple[Counter, list[tuple[int, float]]]:
    """Status counts of every request gunicorn served, and (status, server seconds) of each of the
    simulator's callbacks: server-to-server traffic that competes with the users'."""
    statuses: Counter = Counter()
    callbacks: list[tuple[int, float]] = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        match = ACCESS_LINE.search(line)
        if not match:
            continue
        status = int(match["status"])
        statuses[status] += 1
        if match["path"].startswith("/webhooks/shortapi/"):
            callbacks.append((status, int(match["ms"]) / 1000))
    return statuses, callbacks


def scan_problems(workdir: Path) -> dict[str, list[str]]:
    """Lines in the processes' logs that name an error, per log file (first few of each)."""
    found: dict[str, list[str]] = {}
    for path in sorted(workdir.glob("*.log")):
        if path.name.startswith("gunicorn.out"):
            continue  # the access log: statuses are counted above
        lines = [line for line in path.read_text(errors="replace").splitlines() if PROBLEM.search(line)]
        if lines:
            found[path.name] = lines
    return found


def audit(stack: Stack) -> tuple[int, str]:
    result = stack.manage("audit_credits", check=False)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return result.returncode, lines[-1] if lines else "(no output)"


# --- Figures --------------------------------------------------------------------------------------


@dataclass
class RouteFigures:
    route: str
    requests: int
    per_second: float
    p50: float
    p95: float
    p99: float
    server_errors: int
    transport_errors: int
    client_errors: Counter

    @classmethod
    def of(cls, route: str, samples: list[tuple[int, float]], seconds: float) -> RouteFigures:
        times = [t for _, t in samples]
        statuses = Counter(s for s, _ in samples)
        return cls(
            route=route,
            requests=len(samples),
            per_second=len(samples) / seconds,
            p50=pct(times, 50),
            p95=pct(times, 95),
            p99=pct(times, 99),
            server_errors=sum(n for s, n in statuses.items() if s >= 500),
            transport_errors=statuses[0],
            client_errors=Counter({s: n for s, n in statuses.items() if 400 <= s < 500}),
        )


def by_route(recorder: Recorder, seconds: float) -> list[RouteFigures]:
    grouped: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for route, status, elapsed in recorder.samples:
        grouped[route].append((status, elapsed))
    order = [r for r in ROUTE_ORDER if r in grouped] + sorted(set(grouped) - set(ROUTE_ORDER))
    figures = [RouteFigures.of(route, grouped[route], seconds) for route in order]
    everything = [(s, t) for _, s, t in recorder.samples]
    return [*figures, RouteFigures.of("**all requests**", everything, seconds)]


def fmt_4xx(counter: Counter) -> str:
    return ", ".join(f"{n}×{code}" for code, n in sorted(counter.items())) or "0"


def table(figures: list[RouteFigures], floor_p50: float) -> list[str]:
    lines = [
        "| endpoint | requests | req/s | p50 | p95 | p99 | p50 ÷ healthz floor | 5xx | 4xx by code "
        "| transport errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for f in figures:
        # NaN floor (server-side rows): a ratio to a client-side floor would compare unlike things.
        ratio = f"{f.p50 / floor_p50:.1f}×" if floor_p50 == floor_p50 and floor_p50 > 0 else "–"
        lines.append(
            f"| {f.route} | {f.requests} | {f.per_second:.1f} | {ms(f.p50)} | {ms(f.p95)} | {ms(f.p99)} "
            f"| {ratio} | {f.server_errors} | {fmt_4xx(f.client_errors)} | {f.transport_errors} |"
        )
    return lines


@dataclass
class Outcome:
    config: Config
    stack_label: str
    floor: RouteFigures
    floor_seconds: float
    figures: list[RouteFigures]
    mixed_seconds: float
    recorder: Recorder
    counts_at_end: Counter
    counts_after_drain: Counter
    drained_seconds: float
    webhook: RouteFigures
    access_statuses: Counter
    cpu: dict[str, float]
    sim_stats: dict
    failed_jobs: int
    reasons: Counter
    stages: dict[str, list[float]]
    problems: dict[str, list[str]]
    audit_code: int
    audit_line: str
    workdir: Path


def generations_lines(o: Outcome) -> list[str]:
    notes, c_end, c_fin = o.recorder.notes, o.counts_at_end, o.counts_after_drain
    submitted = sum(c_fin.values())
    created = sum(1 for r, s, _ in o.recorder.samples if r == "POST /api/v1/generations" and s == 201)
    unexpected = {k.split(": ", 1)[1]: n for k, n in notes.items() if k.startswith("429 NOT by design")}
    lines = [
        f"- **Generations**: {submitted} submitted ({created} answered 201 to the users); "
        f"at the end of the load {c_end['succeeded']} succeeded, {c_end['failed']} failed, "
        f"{active(c_end)} still active; after {o.drained_seconds:.0f} s of drain "
        f"{c_fin['succeeded']} succeeded, {c_fin['failed']} failed, {active(c_fin)} still active.",
        f"- **429**: {notes['429 by design']} by design (the {o.config.burst_users} burst users each submit "
        f"one more than `MAX_ACTIVE_GENERATIONS_PER_USER={o.config.max_active}`), not errors; "
        f"{sum(unexpected.values())} not by design"
        + (f" ({', '.join(f'{n}× {r}' for r, n in unexpected.items())})" if unexpected else "")
        + ". Idempotent "
        f"replays: {notes['replay: same generation, 200']} answered 200 with the same generation, "
        f"{notes['replay: WRONG answer']} wrong.",
        f"- **Submit → finished, as a polling user saw it**: p50 {pct(o.recorder.e2e, 50):.1f} s, "
        f"p95 {pct(o.recorder.e2e, 95):.1f} s over {len(o.recorder.e2e)} generations "
        f"(upstream time {o.config.job_seconds:.0f} s). Server side, from the database and the "
        f"simulator: created → submitted upstream p50 {pct(o.stages['submit'], 50):.1f} s / "
        f"p95 {pct(o.stages['submit'], 95):.1f} s; upstream done → `succeeded` here "
        f"p50 {pct(o.stages['lag'], 50):.1f} s / p95 {pct(o.stages['lag'], 95):.1f} s; "
        f"created → succeeded p50 {pct(o.stages['total'], 50):.1f} s / "
        f"p95 {pct(o.stages['total'], 95):.1f} s.",
    ]
    if o.reasons:
        lines.append("- Failure reasons: " + "; ".join(f"{n}× {r}" for r, n in o.reasons.most_common(4)))
    return lines


def health_lines(o: Outcome) -> list[str]:
    client_5xx = o.figures[-1].server_errors
    server_5xx = sum(n for s, n in o.access_statuses.items() if s >= 500)
    transport = o.figures[-1].transport_errors
    logins = o.recorder.notes
    missing = sorted(k.split(": ", 1)[1] for k in logins if k.startswith("404 page skipped"))
    problems = sum(len(v) for v in o.problems.values())
    lines = [
        f"- **5xx**: {client_5xx} seen by the users; {server_5xx} in gunicorn's access log over every "
        f"request it served (users, simulator callbacks, healthz floor). Transport errors (timeouts, "
        f"resets): {transport}. Error lines in the process logs: {problems}"
        + (f" ({', '.join(f'{k}: {len(v)}' for k, v in o.problems.items())})" if problems else "")
        + f". Failed RQ jobs: {o.failed_jobs}.",
        f"- **Audit**: `manage.py audit_credits` exit {o.audit_code}: `{o.audit_line}`",
        f"- Logins through the form: {logins['login: ok']} ok, {logins['login: refused']} refused. "
        f"Simulator callbacks: {o.sim_stats.get('callbacks_sent', '?')} sent, "
        f"{o.sim_stats.get('callbacks_failed', '?')} failed.",
    ]
    if missing:
        lines.append(
            f"- Pages answering 404 (not built yet), skipped after the first try: {', '.join(missing)}."
        )
    return lines


def cpu_line(o: Outcome) -> str:
    parts = ", ".join(f"{k} {v:.2f}" for k, v in o.cpu.items() if k != "machine total")
    return (
        f"- **CPU during the mixed phase** (cores, of 2): machine total {o.cpu['machine total']:.2f}; "
        f"{parts}."
    )


def render(o: Outcome) -> str:
    c = o.config
    floor = o.floor
    lines = [
        f"## Load — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"`.venv/bin/python bench/load.py --users {c.users} --seconds {c.seconds:.0f}` — {c.users} simulated "
        f"users (Python threads, `requests.Session` each, think time {c.think_min}–{c.think_max} s) "
        f"for {o.mixed_seconds:.0f} s against {o.stack_label}. Mix: public pages, {c.login_share:.0%} of "
        f"users log in through the form (CSRF) and then also visit their own pages, JSON API reads, "
        f"~{c.gen_rate:g} submissions/s in all (Poisson) with an `Idempotency-Key` (10% replayed), "
        f"polling each until finished, watching and sharing some results, `/healthz`. Rate limits as "
        f"shipped, except the per-address ones (login, sign-up, API), raised because every simulated "
        f"user comes from 127.0.0.1.",
        "",
        f"**Baseline, same run**: `/healthz` alone, the same {c.users} users and think times, "
        f"{o.floor_seconds:.0f} s: {floor.requests} requests, {floor.per_second:.1f} req/s, "
        f"p50 {ms(floor.p50)}, p95 {ms(floor.p95)}, p99 {ms(floor.p99)}, "
        f"{floor.server_errors} 5xx, {floor.transport_errors} transport errors.",
        "",
        *table(o.figures, floor.p50),
        *table([o.webhook], float("nan"))[2:],
        "",
        "Latency is measured by the client: from sending the request to having read the whole body, so "
        "it includes waiting for a free gunicorn thread. The callbacks row comes from gunicorn's access "
        "log (server time only; the simulator's POSTs compete with the users').",
        "",
        *generations_lines(o),
        *health_lines(o),
        cpu_line(o),
        f"- Logs of every process: `{o.workdir.relative_to(ROOT)}/`.",
        "",
    ]
    return "\n".join(lines)


def append_results(text: str) -> None:
    # Append only: another benchmark writes its own sections to the same file.
    needs_header = not RESULTS.exists() or not RESULTS.read_text().strip()
    with open(RESULTS, "a") as out:
        if needs_header:
            out.write("# Benchmark results\n")
        out.write("\n" + text)


# --- Main -----------------------------------------------------------------------------------------


def measure(stack: Stack, config: Config) -> Outcome:
    accounts = seed_users(config.users, credits=10_000_000)
    print(f"seeded {len(accounts)} users; /healthz floor for {config.floor_seconds:.0f} s ...", flush=True)
    floor_rec, floor_seconds = run_phase(
        stack.web_url, accounts, config, config.floor_seconds, healthz_only=True
    )
    floor = RouteFigures.of("GET /healthz (floor)", [(s, t) for _, s, t in floor_rec.samples], floor_seconds)
    print(f"floor: {floor.requests} requests, p50 {ms(floor.p50)}; mixed load for {config.seconds:.0f} s ...",
          flush=True)  # fmt: skip
    before = cpu_snapshot(stack)
    recorder, mixed_seconds = run_phase(stack.web_url, accounts, config, config.seconds, healthz_only=False)
    cpu = cpu_usage(before, cpu_snapshot(stack), mixed_seconds)
    counts_at_end = generation_counts()
    print(
        f"load done: {len(recorder.samples)} requests; draining {active(counts_at_end)} active ...",
        flush=True,
    )
    drained = drain(config.drain_seconds)
    counts_after = generation_counts()
    sim_stats = requests.get(stack.sim_url + "/_sim/stats", timeout=10).json()
    failed_jobs = failed_rq_jobs()
    stack.stop_workers()  # the audit reads a ledger nobody is writing to
    code, line = audit(stack)
    statuses, callbacks = scan_access_log(stack.workdir / "gunicorn.out.log")
    webhook = RouteFigures.of(WEBHOOK_ROUTE + " (simulator callbacks)", callbacks, mixed_seconds + drained)
    return Outcome(
        config=config,
        stack_label=stack_label(stack),
        floor=floor,
        floor_seconds=floor_seconds,
        figures=by_route(recorder, mixed_seconds),
        mixed_seconds=mixed_seconds,
        recorder=recorder,
        counts_at_end=counts_at_end,
        counts_after_drain=counts_after,
        drained_seconds=drained,
        webhook=webhook,
        access_statuses=statuses,
        cpu=cpu,
        sim_stats=sim_stats,
        failed_jobs=failed_jobs,
        reasons=failure_reasons(),
        stages=stage_times(stack.sim_url),
        problems=scan_problems(stack.workdir),
        audit_code=code,
        audit_line=line,
        workdir=stack.workdir,
    )


def stack_label(stack: Stack) -> str:
    c = stack.config
    return (
        f"gunicorn (`gunicorn.conf.py`: {c.web_workers} workers × {c.web_threads} threads, gthread), "
        f"{c.rq_workers} RQ workers (`generations.worker.SimpleWorker`, `--with-scheduler`), "
        f"{stack.database_label}, {stack.redis_label}, the ShortAPI simulator ({c.job_seconds:.0f} s jobs). "
        f"Machine: {psutil.cpu_count()} cores shared by the load generator, every server process and "
        f"other engineers' test suites, so the figures are noisy"
    )


def print_problems(outcome: Outcome) -> None:
    for name, lines in outcome.problems.items():
        print(f"--- {name}: {len(lines)} error lines, first ones:")
        for line in lines[:5]:
            print("   ", line[:300])
    for sample in outcome.recorder.server_errors[:10]:
        print("5xx:", sample)
    for sample in outcome.recorder.transport_errors[:10]:
        print("transport:", sample)


def main() -> None:
    config = parse_args()
    sys.path.insert(0, str(ROOT))  # run as a script, bench/ is on the path, not the project
    workdir = ROOT / "var" / "load" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    stack = Stack(workdir, config)
    # SIGTERM (a CI timeout, kill) must still stop what we started: turn it into an exception.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        stack.prepare()
        django_setup(stack)
        stack.start()
        outcome = measure(stack, config)
    finally:
        stack.stop()
        stack.empty_external_redis()
        shutil.rmtree(workdir / "media", ignore_errors=True)
        shutil.rmtree(workdir / "static", ignore_errors=True)
    text = render(outcome)
    if config.write_results:
        append_results(text)
    print(text)
    print_problems(outcome)
    if outcome.audit_code or outcome.figures[-1].server_errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
