"""Pipeline benchmark (issues 3 and 16): generations through the real stack, a few workers at most.

    .venv/bin/python bench/pipeline.py                 # or: make bench (every scenario, both databases)
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/pipeline.py --scenarios burst
    .venv/bin/python bench/pipeline.py --scale 0.3     # the same scenarios, smaller counts

Starts its own processes — the ShortAPI simulator, gunicorn (3 processes, 4 threads each), RQ workers
(`manage.py rqworker default`, the first `--with-scheduler`), and an embedded Redis unless
REDIS_URL is set — in a scratch folder under var/bench/. DATABASE_URL names a PostgreSQL database
that is FLUSHED (use one of your own); unset, a SQLite file in the scratch folder.

Scenarios (each a section in bench/RESULTS.md, beside a baseline measured in the same run):

* `burst`: N (300) generations through the JSON API from 16 client threads of one user, 15 s
  upstream, ONE worker: drain, lag (upstream done → succeeded here), submit latency, and the
  worker's own time per job type (WORKER_JOB_TIMINGS). Baseline: bench/naive.py, the obvious
  worker that sleeps while it polls, at a few generations.
* `throughput`: N (400) generations made in the database at once (no HTTP in front), upstream
  instant: how many a second ONE worker finishes, end to end.
* `latency`: 500 ms a call at the simulator (a distant provider), N (200) generations, 1, 2 and 4
  worker processes: generations a second carried, and how many calls were in flight at once.
* `inflight`: 1,000 generations in flight on one worker with 60 s upstream.

Every worker class in `--workers` (default: ThreadedWorker) is measured in each scenario; the
`--baseline` class (SimpleWorker, one loop a process) beside it in `throughput` and `latency` (W=1,
a fifth of N), so each section carries its ratios against a baseline measured in the same run.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
from common import free_port, pct, wait_http

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SIM_KEY = "bench-key"
RESULTS = ROOT / "bench" / "RESULTS.md"
JOB_TYPES = ("submit", "poll", "fetch", "make_poster")


class Stack:
    """One scratch environment: database, Redis, gunicorn. The simulator and workers come and go."""

    def __init__(self, workdir: Path, web_workers: int = 3, root: Path = ROOT) -> None:
        self.workdir = workdir
        self.root = root  # the code tree gunicorn and manage.py run (bench/submit_cpu.py: a baseline's)
        self.processes: list[subprocess.Popen] = []
        self.sim_port = free_port()
        self.web_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.web_workers = web_workers
        self.simulator: subprocess.Popen | None = None
        self.env = {
            **os.environ,
            "SEEDANCE_VAR_DIR": str(workdir),
            "DJANGO_SETTINGS_MODULE": "seedance_site.settings",
            "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": self.web_url,
            "SHORTAPI_BASE_URL": self.sim_url,
            "SHORTAPI_KEY": SIM_KEY,
            "MAX_ACTIVE_GENERATIONS_PER_USER": "100000",
            # One user submits everything here: lift the per-user limits, keep the mechanism.
            "SUBMIT_RATE_LIMIT": "1000000/m",
            "API_USER_RATE_LIMIT": "1000000/m",
            "API_IP_RATE_LIMIT": "1000000/m",
            "MEDIA_ROOT": str(workdir / "media"),
            "LOG_LEVEL": "WARNING",
            "WORKER_JOB_TIMINGS": "1",
            "PYTHONPATH": str(root),
        }
        self.env.pop("DJANGO_DEBUG", None)
        self.redis_process = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=self.root, env=self.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def spawn(self, args: list[str], **env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            args, cwd=self.root, env={**self.env, **env}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "stderr.log", "ab"),
        )  # fmt: skip
        self.processes.append(process)
        return process

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not os.environ.get("REDIS_URL"):
            sys.path.insert(0, str(ROOT))
            os.environ["SEEDANCE_VAR_DIR"] = str(self.workdir)
            from seedance_site import embedded_redis

            embedded_redis.VAR_DIR = self.workdir
            self.redis_process = embedded_redis.start()
            self.env["REDIS_URL"] = embedded_redis.url()
        url = os.environ.get("DATABASE_URL")
        if url is None:
            self.env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'db.sqlite3'}"
        self.manage("migrate", "--noinput")
        self.spawn(
            [PYTHON, "-m", "gunicorn", "seedance_site.wsgi", "-w", str(self.web_workers), "--threads", "4",
             "-b", f"127.0.0.1:{self.web_port}", "--log-level", "warning"]
        )  # fmt: skip
        wait_http(self.web_url + "/healthz")

    def start_simulator(self, upstream_seconds: float, latency: float) -> None:
        if self.simulator is not None:
            self.stop_process(self.simulator)
            self.processes.remove(self.simulator)
        self.simulator = self.spawn(
            [PYTHON, "manage.py", "shortapi_simulator", "--port", str(self.sim_port), "--key", SIM_KEY,
             "--no-prompt-on-screen", "--job-seconds", str(upstream_seconds), "--latency", str(latency),
             "--cache-dir", str(ROOT / "var" / "simulator")]
        )  # fmt: skip
        wait_http(self.sim_url + "/_sim/stats")

    def fresh_round(self) -> str:
        """An empty database and Redis, a user with credits; returns an API token."""
        self.manage("flush", "--noinput")
        import redis

        redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()
        requests.post(self.sim_url + "/_sim/reset", timeout=5)
        self.manage("shell", "-c", "from accounts.models import User; User.objects.create_user('bench')")
        self.manage("grant_credits", "bench", "1000000000", "--reason", "benchmark")
        return self.manage("create_api_token", "bench").strip().splitlines()[-1]

    def worker(self, worker_class: str, *, scheduler: bool = True) -> subprocess.Popen:
        args = [PYTHON, "manage.py", "rqworker", "default"] + (["--with-scheduler"] if scheduler else [])
        return self.spawn(args, RQ_WORKER_CLASS=worker_class)

    def stop_process(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self) -> None:
        for process in reversed(self.processes):
            self.stop_process(process)
        if self.redis_process is not None:
            self.redis_process.terminate()
            self.redis_process.wait()


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children so far: the live ones, and those it has reaped
    (ffmpeg cutting posters), which count in the parent's children_user / children_system."""
    try:
        parent = psutil.Process(pid)
        total = sum(parent.cpu_times()[:4])
        for child in parent.children(recursive=True):
            total += sum(child.cpu_times()[:4])
        return total
    except psutil.Error:
        return 0.0


def django_setup(stack: Stack) -> None:
    os.environ.update({k: v for k, v in stack.env.items() if k not in ("PYTHONPATH",)})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def wait_drained(ids: list[str], t0: float, limit: float = 3600) -> float:
    from django.db import connection

    from generations.models import Generation

    while Generation.objects.filter(pk__in=ids, status__in=Generation.ACTIVE).exists():
        connection.close()
        if time.time() - t0 > limit:
            raise RuntimeError(f"the pipeline did not drain in {limit:.0f} s")
        time.sleep(0.2)
    return time.time()


def wait_posters(ids: list[str], t0: float, limit: float = 600) -> float:
    """Until every succeeded generation has its poster: posters wait on the "low" queue until no
    poll or download is due, so they come after the drain; their CPU must still be counted."""
    from django.db import connection

    from generations.models import Generation

    while Generation.objects.filter(pk__in=ids, status="succeeded", poster="").exists():
        connection.close()
        if time.time() - t0 > limit:
            break  # reported as is: the figures then lack the posters still missing
        time.sleep(0.2)
    return time.time()


def outcome(stack: Stack, ids: list[str], n: int) -> dict:
    """What the database and the simulator say about a finished round."""
    import redis

    from generations.models import Generation
    from generations.worker import job_timings

    listing = requests.get(stack.sim_url + "/_sim/jobs", timeout=60).json()["jobs"]
    sim_jobs = {job["job_id"]: job for job in listing}
    stats = requests.get(stack.sim_url + "/_sim/stats", timeout=5).json()
    rows = list(Generation.objects.filter(pk__in=ids).values("status", "upstream_job_id", "finished_at"))
    lags = []
    for row in rows:
        job = sim_jobs.get(row["upstream_job_id"])
        if job and job.get("finished_at") and row["finished_at"]:
            upstream_done = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
            lags.append((row["finished_at"] - upstream_done).total_seconds())
    timings = job_timings(redis.Redis.from_url(stack.env["REDIS_URL"]))
    per_type = {}
    for name, t in timings.items():
        short = name.rsplit(".", 1)[-1]
        per_type[short] = {
            "jobs": int(t["count"]),
            "ms_per_job": 1000 * t["seconds"] / max(t["count"], 1),
            "ms_per_generation": 1000 * t["seconds"] / n,
            "cpu_ms_per_job": 1000 * t["cpu_seconds"] / max(t["count"], 1),
            "cpu_ms_per_generation": 1000 * t["cpu_seconds"] / n,
        }
    statuses = [r["status"] for r in rows]
    return {
        "succeeded": statuses.count("succeeded"),
        "failed": statuses.count("failed"),
        "lag_p50": pct(lags, 50),
        "lag_p95": pct(lags, 95),
        "calls_per_generation": (stats["create_calls"] + stats["query_calls"]) / n,
        "peak_concurrent_calls": stats.get("peak_concurrent_calls"),
        "job_types": per_type,
        "worker_ms_per_generation": sum(
            v["ms_per_generation"] for k, v in per_type.items() if k in JOB_TYPES
        ),
        "job_cpu_ms_per_generation": sum(
            v["cpu_ms_per_generation"] for k, v in per_type.items() if k in JOB_TYPES
        ),
    }


def submit_burst(stack: Stack, token: str, n: int, clients: int = 16) -> tuple[list[str], list[float], int]:
    latencies: list[float] = []
    errors = 0
    local = threading.local()

    def submit(i: int) -> str | None:
        nonlocal errors
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        response = session.post(
            stack.web_url + "/api/v1/generations",
            json={"prompt": f"bench clip {i}: a lighthouse at dusk", "duration": 4, "mode": "fast"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
        latencies.append(time.perf_counter() - started)
        if response.status_code != 201:
            errors += 1
            return None
        return response.json()["id"]

    with ThreadPoolExecutor(clients) as pool:
        ids = [gid for gid in pool.map(submit, range(n)) if gid]
    return ids, latencies, errors


def run_burst(stack: Stack, n: int, worker_class: str, upstream: float, latency: float = 0.0) -> dict:
    from django.db import connection

    stack.start_simulator(upstream, latency)
    token = stack.fresh_round()
    connection.close()
    worker = stack.worker(worker_class)
    time.sleep(2)  # let the worker register and take the scheduler lock
    cpu0 = cpu_seconds(worker.pid)
    t0 = time.time()
    ids, latencies, errors = submit_burst(stack, token, n)
    submitted = time.time()
    done = wait_drained(ids, t0)
    posters = wait_posters(ids, t0)
    cpu = cpu_seconds(worker.pid) - cpu0
    result = outcome(stack, ids, n)
    stack.stop_process(worker)
    stack.processes.remove(worker)
    return {
        "scenario": "burst",
        "worker": worker_class.rsplit(".", 1)[-1],
        "n": n,
        "upstream": upstream,
        "submit_errors": errors,
        "submit_seconds": submitted - t0,
        "drain_seconds": done - t0,
        "posters_seconds": posters - t0,
        "submit_p50_ms": pct(latencies, 50) * 1000,
        "submit_p95_ms": pct(latencies, 95) * 1000,
        "worker_cpu_ms_per_generation": 1000 * cpu / n,
        **result,
    }


def create_directly(n: int) -> list[str]:
    """N generations made by the service itself (credits held, submit queued), as fast as the
    database takes them: the worker, not the web tier, is what is measured."""
    from accounts.models import User
    from generations.services import generation_create

    user = User.objects.get(username="bench")
    made = []
    for i in range(n):
        generation, _ = generation_create(
            user=user, prompt=f"direct {i}", mode="fast", duration=4, aspect_ratio="16:9"
        )
        made.append(str(generation.pk))
    return made


def run_direct(
    stack: Stack, n: int, worker_class: str, *, workers: int, upstream: float, latency: float, scenario: str
) -> dict:
    """N generations queued before any worker starts; then `workers` worker processes drain them."""
    import redis
    from django.db import connection

    stack.start_simulator(upstream, latency)
    stack.fresh_round()
    # Enqueued while no worker listens: the clock starts when the workers do.
    ids = create_directly(n)
    connection.close()
    redis.Redis.from_url(stack.env["REDIS_URL"]).delete("seedance:job-timings")
    t0 = time.time()
    procs = [stack.worker(worker_class, scheduler=(i == 0)) for i in range(workers)]
    cpu0 = sum(cpu_seconds(p.pid) for p in procs)
    done = wait_drained(ids, t0)
    posters = wait_posters(ids, t0)
    cpu = sum(cpu_seconds(p.pid) for p in procs) - cpu0
    result = outcome(stack, ids, n)
    for p in procs:
        stack.stop_process(p)
        stack.processes.remove(p)
    drain = done - t0
    # Start-up of the worker process (Django, 1 to 2 s) counts against it: the rate is a floor.
    return {
        "scenario": scenario,
        "worker": worker_class.rsplit(".", 1)[-1],
        "workers": workers,
        "n": n,
        "upstream": upstream,
        "latency": latency,
        "drain_seconds": drain,
        "posters_seconds": posters - t0,
        "generations_per_second": n / max(drain - upstream, 0.001),
        "worker_cpu_ms_per_generation": 1000 * cpu / n,
        **result,
    }


def run_naive(stack: Stack, n: int, upstream: float) -> dict:
    import django_rq
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from generations.models import Generation

    stack.start_simulator(upstream, 0.0)
    stack.fresh_round()
    user = User.objects.get(username="bench")
    ids = []
    for i in range(n):
        generation = Generation.objects.create(
            user=user, prompt=f"naive {i}", mode="fast", duration=4, aspect_ratio="16:9", cost_cents=80,
            cents_per_second=20, deadline_at=timezone.now(),
        )  # fmt: skip
        ids.append(str(generation.pk))
    queue = django_rq.get_queue("default")
    t0 = time.time()
    for gid in ids:
        queue.enqueue("bench.naive.naive_generate", gid, job_timeout=3600)
    worker = stack.worker("rq.worker.SimpleWorker")
    while Generation.objects.filter(pk__in=ids, status="queued").exists():
        time.sleep(0.5)
        connection.close()
    done = time.time()
    stack.stop_process(worker)
    stack.processes.remove(worker)
    return {"n": n, "drain_seconds": done - t0, "per_generation_seconds": (done - t0) / n}


# --- The report -------------------------------------------------------------------------------


def fmt_types(r: dict) -> str:
    parts = []
    for name in JOB_TYPES:
        t = r["job_types"].get(name)
        if t:
            parts.append(
                f"{name} {t['ms_per_job']:.0f} ms ({t['cpu_ms_per_job']:.0f} CPU) ×{t['jobs'] / r['n']:.2f}"
            )
    return ", ".join(parts)


def report(runs: list[dict], naive: dict | None, context: str) -> str:
    lines = [f"## Pipeline — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "", context, ""]
    bursts = [r for r in runs if r["scenario"] == "burst"]
    if bursts:
        n, upstream = bursts[0]["n"], bursts[0]["upstream"]
        lines += [
            f"**Burst**: {n} generations through the JSON API (16 client threads, one user), "
            f"{upstream:.0f} s upstream, ONE worker. Targets: drain ≤ upstream + 30 s, lag p95 ≤ 2 s, "
            "submit p95 ≤ 100 ms, worker time ≤ 40 ms a generation. *drain*: every generation "
            "succeeded (in brackets: every poster made too; the CPU figures run to then, ffmpeg included).",
        ]
        if naive:
            lines.append(
                f"Baseline, same run: bench/naive.py (sleep-polling worker) at N={naive['n']}: "
                f"{naive['per_generation_seconds']:.1f} s a generation, "
                f"so {naive['per_generation_seconds'] * n:.0f} s for {n}."
            )
        lines += [
            "",
            "| database | worker | ok / failed / 5xx | drain | drain − upstream | naive ÷ this "
            "| lag p50 / p95 | submit p50 / p95 | jobs' ms / gen (CPU) | worker process CPU ms / gen "
            "| per job type (ms × jobs per gen) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in bursts:
            ratio = f"{naive['per_generation_seconds'] * r['n'] / r['drain_seconds']:.0f}×" if naive else "–"
            lines.append(
                f"| {r['database']} | {r['worker']} "
                f"| {r['succeeded']} / {r['failed']} / {r['submit_errors']} "
                f"| {r['drain_seconds']:.1f} s ({r['posters_seconds']:.1f} s) "
                f"| {r['drain_seconds'] - r['upstream']:.1f} s | {ratio} "
                f"| {r['lag_p50']:.2f} s / {r['lag_p95']:.2f} s "
                f"| {r['submit_p50_ms']:.0f} ms / {r['submit_p95_ms']:.0f} ms "
                f"| {r['worker_ms_per_generation']:.0f} ({r['job_cpu_ms_per_generation']:.0f}) "
                f"| {r['worker_cpu_ms_per_generation']:.0f} | {fmt_types(r)} |"
            )
        lines.append("")
    direct = [r for r in runs if r["scenario"] in ("throughput", "latency", "inflight")]
    if direct:
        lines += [
            "**Worker rate**: N generations queued in the database at once (no web tier), then W worker "
            "processes start. gen/s = N ÷ (drain − upstream), worker start-up included. "
            "*drain* = every generation succeeded (in brackets: every poster made too, from the "
            "low queue; the CPU figures run to then and include ffmpeg). "
            "*peak calls* = most calls the simulator had in progress at once.",
            "",
            "| scenario | database | worker | W | N | upstream | latency / call | ok / failed | drain "
            "| gen/s | lag p50 / p95 | jobs' ms / gen (CPU) | worker process CPU ms / gen | peak calls "
            "| per job type |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        base = {r["scenario"]: r for r in direct if r.get("baseline")}
        for r in direct:
            b = base.get(r["scenario"])
            vs = ""
            if b is not None and not r.get("baseline"):
                vs = f" ({r['generations_per_second'] / b['generations_per_second']:.1f}× baseline)"
            name = r["worker"] + (" (baseline)" if r.get("baseline") else "")
            lines.append(
                f"| {r['scenario']} | {r['database']} | {name} | {r['workers']} | {r['n']} "
                f"| {r['upstream']:.0f} s | {r['latency'] * 1000:.0f} ms | {r['succeeded']} / {r['failed']} "
                f"| {r['drain_seconds']:.1f} s ({r['posters_seconds']:.1f} s) "
                f"| {r['generations_per_second']:.1f}{vs} "
                f"| {r['lag_p50']:.2f} s / {r['lag_p95']:.2f} s "
                f"| {r['worker_ms_per_generation']:.0f} ({r['job_cpu_ms_per_generation']:.0f}) "
                f"| {r['worker_cpu_ms_per_generation']:.0f} | {r['peak_concurrent_calls']} | {fmt_types(r)} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="burst,throughput,latency,inflight")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every N (0.3: a quick run)")
    parser.add_argument("--burst-n", type=int, default=300)
    parser.add_argument("--burst-upstream", type=float, default=15)
    parser.add_argument("--throughput-n", type=int, default=400)
    parser.add_argument("--latency-n", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds a call in the latency scenario")
    parser.add_argument("--latency-workers", default="1,2,4")
    parser.add_argument("--inflight-n", type=int, default=1000)
    parser.add_argument("--inflight-upstream", type=float, default=60)
    parser.add_argument("--naive-n", type=int, default=3)
    parser.add_argument(
        "--workers", default="generations.worker.ThreadedWorker",
        help="comma-separated worker classes to measure",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", default="generations.worker.SimpleWorker",
        help="worker class measured beside them, one loop a process (throughput, and latency at W=1 "
        "on a fifth of N); empty: none",
    )  # fmt: skip
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--no-results", action="store_true", help="print without appending to RESULTS.md")
    args = parser.parse_args()

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")  # so that `finally` stops every process

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    scale = lambda n: max(1, round(n * args.scale))  # noqa: E731
    scenarios = args.scenarios.split(",")
    workdir = ROOT / "var" / "bench" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    stack = Stack(workdir)
    redis_kind = "Redis at REDIS_URL" if os.environ.get("REDIS_URL") else "embedded Redis"
    runs: list[dict] = []
    naive = None
    load_at_start = os.getloadavg()
    try:
        stack.start()
        django_setup(stack)
        from django.db import connection

        database = connection.vendor
        for worker_class in args.workers.split(","):
            plan: list = []
            if "burst" in scenarios:
                plan.append(
                    lambda wc=worker_class: run_burst(stack, scale(args.burst_n), wc, args.burst_upstream)
                )
            if "throughput" in scenarios:
                plan.append(
                    lambda wc=worker_class: run_direct(
                        stack, scale(args.throughput_n), wc, workers=1, upstream=2, latency=0,
                        scenario="throughput",
                    )
                )  # fmt: skip
            if "latency" in scenarios:
                for w in [int(x) for x in args.latency_workers.split(",")]:
                    plan.append(
                        lambda w=w, wc=worker_class: run_direct(
                            stack, scale(args.latency_n), wc, workers=w, upstream=2,
                            latency=args.latency, scenario="latency",
                        )
                    )  # fmt: skip
            if "inflight" in scenarios:
                plan.append(
                    lambda wc=worker_class: run_direct(
                        stack, scale(args.inflight_n), wc, workers=1,
                        upstream=args.inflight_upstream, latency=0, scenario="inflight",
                    )
                )  # fmt: skip
            for step in plan:
                result = step()
                result["database"] = database
                runs.append(result)
                print(json.dumps(result), flush=True)
        if args.baseline:
            plan = []
            if "throughput" in scenarios:
                plan.append(
                    lambda: run_direct(
                        stack, scale(args.throughput_n), args.baseline, workers=1, upstream=2, latency=0,
                        scenario="throughput",
                    )
                )  # fmt: skip
            if "latency" in scenarios:
                plan.append(
                    lambda: run_direct(
                        stack, max(1, scale(args.latency_n) // 5), args.baseline, workers=1, upstream=2,
                        latency=args.latency, scenario="latency",
                    )
                )  # fmt: skip
            for step in plan:
                result = step()
                result["database"] = database
                result["baseline"] = True
                runs.append(result)
                print(json.dumps(result), flush=True)
        if "burst" in scenarios and args.naive_n:
            print(f"naive baseline: {args.naive_n} generations ...", flush=True)
            naive = run_naive(stack, args.naive_n, args.burst_upstream)
            print(json.dumps(naive), flush=True)
        context = (
            f"`bench/pipeline.py --scenarios {args.scenarios} --scale {args.scale}`; "
            f"{database}, {redis_kind}; "
            f"gunicorn 3×4 threads; worker settings as shipped (WORKER_THREADS, DATABASE_POOL_MAX_SIZE "
            "defaults unless the environment set them). Machine: "
            f"{os.cpu_count()} cores shared with other work; load average (1, 5, 15 min) at the start "
            f"{', '.join(f'{x:.2f}' for x in load_at_start)}, at the end "
            f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}."
        )
        text = report(runs, naive, context)
        print(text)
        if args.json:
            Path(args.json).write_text(json.dumps({"runs": runs, "naive": naive}, indent=1))
        if not args.no_results:
            with RESULTS.open("a") as results:  # append only: another bench may write its own section
                results.write("\n" + text)
    finally:
        stack.stop()
        shutil.rmtree(workdir / "media", ignore_errors=True)


if __name__ == "__main__":
    main()
