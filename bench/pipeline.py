"""Pipeline benchmark (issue 3): N generations through the real stack with ONE worker.

    .venv/bin/python bench/pipeline.py                 # or: make bench
    DATABASE_URL=postgres://... REDIS_URL=redis://... .venv/bin/python bench/pipeline.py

Starts its own processes — the ShortAPI simulator (upstream time 60 s), gunicorn, one RQ worker
(`--with-scheduler`), and an embedded Redis unless REDIS_URL is set — in a scratch folder under
var/bench/, submits N generations through the JSON API, and waits until every one is finished.
It runs the same load once with RQ's forking Worker and once with SimpleWorker, then measures a
naive sleep-polling worker at a smaller N, and appends the figures to bench/RESULTS.md.
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








class Stack:
    """One scratch environment: database, Redis, simulator, gunicorn. Workers come and go."""

    def __init__(self, workdir: Path, upstream_seconds: float) -> None:
        self.workdir = workdir
        self.processes: list[subprocess.Popen] = []
        self.sim_port = free_port()
        self.web_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.upstream_seconds = upstream_seconds
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
            "PYTHONPATH": str(ROOT),
        }
        self.env.pop("DJANGO_DEBUG", None)
        self.redis_process = None

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True, text=True, check=False
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def spawn(self, args: list[str], **env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            args, cwd=ROOT, env={**self.env, **env}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=open(self.workdir / "stderr.log", "ab"),
        )
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
        self.reset_database()
        self.spawn(
            [PYTHON, "manage.py", "shortapi_simulator", "--port", str(self.sim_port), "--key", SIM_KEY,
             "--no-prompt-on-screen", "--job-seconds", str(self.upstream_seconds),
             "--cache-dir", str(ROOT / "var" / "simulator")]
        )
        self.spawn(
            [PYTHON, "-m", "gunicorn", "seedance_site.wsgi", "-w", "3", "--threads", "4", "-b",
             f"127.0.0.1:{self.web_port}", "--log-level", "warning"]
        )
        wait_http(self.sim_url + "/_sim/stats")
        wait_http(self.web_url + "/healthz")

    def reset_database(self) -> None:
        url = os.environ.get("DATABASE_URL")
        if url is None:
            (self.workdir / "db.sqlite3").unlink(missing_ok=True)
            self.env["DATABASE_URL"] = f"sqlite:///{self.workdir / 'db.sqlite3'}"
        self.manage("migrate", "--noinput")

    def fresh_round(self) -> tuple[str, str]:
        """An empty database and Redis, a user with credits and a token."""
        self.manage("flush", "--noinput")
        import redis

        redis.Redis.from_url(self.env["REDIS_URL"]).flushdb()
        requests.post(self.sim_url + "/_sim/reset", timeout=5)
        self.manage("shell", "-c", "from accounts.models import User; User.objects.create_user('bench')")
        self.manage("grant_credits", "bench", "100000000", "--reason", "benchmark")
        token = self.manage("create_api_token", "bench").strip().splitlines()[-1]
        return "bench", token

    def worker(self, worker_class: str) -> subprocess.Popen:
        return self.spawn(
            [PYTHON, "manage.py", "rqworker", "default", "--with-scheduler"], RQ_WORKER_CLASS=worker_class
        )

    def stop_process(self, process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop(self) -> None:
        for process in reversed(self.processes):
            self.stop_process(process)
        if self.redis_process is not None:
            self.redis_process.terminate()
            self.redis_process.wait()


class MemorySampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                parent = psutil.Process(self.pid)
                total = parent.memory_info().rss + sum(
                    c.memory_info().rss for c in parent.children(recursive=True)
                )
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(0.1)


def django_setup(stack: Stack) -> None:
    os.environ.update({k: v for k, v in stack.env.items() if k not in ("PYTHONPATH",)})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def run_pipeline(stack: Stack, n: int, worker_class: str) -> dict:
    from django.db import connection

    from generations.models import Generation

    _, token = stack.fresh_round()
    connection.close()
    worker = stack.worker(worker_class)
    sampler = MemorySampler(worker.pid)
    sampler.start()
    time.sleep(2)  # let the worker register and take the scheduler lock

    latencies: list[float] = []
    local = threading.local()

    def submit(i: int) -> str:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        response = session.post(
            stack.web_url + "/api/v1/generations",
            json={"prompt": f"bench clip {i}: a lighthouse at dusk", "duration": 4, "mode": "fast"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
        return response.json()["id"]

    t0 = time.time()
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(submit, range(n)))
    submitted = time.time()
    while Generation.objects.filter(pk__in=ids, status__in=Generation.ACTIVE).exists():
        time.sleep(0.5)
        if time.time() - t0 > 3600:
            raise RuntimeError("the pipeline did not drain in an hour")
        connection.close()
    done = time.time()
    sampler.stopped.set()
    stack.stop_process(worker)
    stack.processes.remove(worker)

    listing = requests.get(stack.sim_url + "/_sim/jobs", timeout=30).json()["jobs"]
    sim_jobs = {job["job_id"]: job for job in listing}
    stats = requests.get(stack.sim_url + "/_sim/stats", timeout=5).json()
    lags = []
    rows = Generation.objects.filter(pk__in=ids).values("status", "upstream_job_id", "finished_at")
    statuses = [r["status"] for r in rows]
    for row in rows:
        job = sim_jobs.get(row["upstream_job_id"])
        if job and job.get("finished_at") and row["finished_at"]:
            upstream_done = datetime.fromisoformat(job["finished_at"].replace("Z", "+00:00"))
            lags.append((row["finished_at"] - upstream_done).total_seconds())
    return {
        "worker": worker_class.rsplit(".", 1)[-1],
        "n": n,
        "succeeded": statuses.count("succeeded"),
        "failed": statuses.count("failed"),
        "submit_seconds": submitted - t0,
        "drain_seconds": done - t0,
        "submit_p50_ms": pct(latencies, 50) * 1000,
        "submit_p95_ms": pct(latencies, 95) * 1000,
        "lag_p50": pct(lags, 50),
        "lag_p95": pct(lags, 95),
        "calls_per_generation": (stats["create_calls"] + stats["query_calls"]) / n,
        "peak_rss_mb": sampler.peak / 1024 / 1024,
    }


def run_naive(stack: Stack, n: int) -> dict:
    import django_rq
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from generations.models import Generation

    stack.fresh_round()
    user = User.objects.get(username="bench")
    ids = []
    for i in range(n):
        generation = Generation.objects.create(
            user=user, prompt=f"naive {i}", mode="fast", duration=4, aspect_ratio="16:9", cost_cents=80,
            cents_per_second=20, deadline_at=timezone.now(),
        )
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


def write_results(upstream: float, results: list[dict], naive: dict, database: str, redis_kind: str) -> str:
    n = results[0]["n"]
    naive_projected = naive["per_generation_seconds"] * n
    lines = [
        f"## Pipeline — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"{n} generations submitted through the JSON API (16 client threads) against the simulator with "
        f"{upstream:.0f} s upstream time, ONE RQ worker; {database}, {redis_kind}. "
        f"Baseline, measured in the same run: a naive sleep-polling worker at N={naive['n']} "
        f"({naive['per_generation_seconds']:.1f} s per generation, "
        f"so {naive_projected / 60:.0f} min for {n}).",
        "",
        "| worker | ok / failed | drain | drain ÷ ideal | naive ÷ this | lag p50 / p95 "
        "| upstream calls per gen | submit p50 / p95 | worker peak RSS |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['worker']} | {r['succeeded']} / {r['failed']} | {r['drain_seconds']:.1f} s "
            f"| {r['drain_seconds'] / upstream:.2f}× | {naive_projected / r['drain_seconds']:.0f}× "
            f"| {r['lag_p50']:.2f} s / {r['lag_p95']:.2f} s | {r['calls_per_generation']:.2f} "
            f"| {r['submit_p50_ms']:.0f} ms / {r['submit_p95_ms']:.0f} ms | {r['peak_rss_mb']:.0f} MB |"
        )
    lines += [
        "",
        "Ideal = the upstream time (every job runs in parallel upstream). *lag* = from the simulator "
        "finishing a job to the generation being `succeeded` here (callback → poll → download). "
        "Worker RSS includes forked work horses.",
        "",
    ]
    text = "\n".join(lines)
    results_path = ROOT / "bench" / "RESULTS.md"
    # Append only: another benchmark may be writing its own section at the same time.
    with results_path.open("a") as results:
        results.write("\n" + text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--upstream-seconds", type=float, default=60)
    parser.add_argument("--naive-n", type=int, default=3)
    parser.add_argument(
        "--workers", default="generations.worker.Worker,generations.worker.SimpleWorker",
        help="comma-separated worker classes to measure",
    )
    args = parser.parse_args()
    workdir = ROOT / "var" / "bench" / datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    stack = Stack(workdir, args.upstream_seconds)
    redis_kind = "Redis at REDIS_URL" if os.environ.get("REDIS_URL") else "embedded Redis"
    try:
        stack.start()
        django_setup(stack)
        results = []
        for worker_class in args.workers.split(","):
            print(f"pipeline: {args.n} generations, {worker_class} ...", flush=True)
            results.append(run_pipeline(stack, args.n, worker_class))
            print(json.dumps(results[-1], indent=1), flush=True)
        print(f"naive baseline: {args.naive_n} generations ...", flush=True)
        naive = run_naive(stack, args.naive_n)
        print(json.dumps(naive), flush=True)
        from django.db import connection

        database = f"{connection.vendor} database"
        print(write_results(args.upstream_seconds, results, naive, database, redis_kind))
    finally:
        stack.stop()
        shutil.rmtree(workdir / "media", ignore_errors=True)


if __name__ == "__main__":
    main()
