"""What one submit costs in CPU (issue 16): `POST /api/v1/generations` with no worker running.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/seedance_<you> .venv/bin/python bench/submit_cpu.py

The database at DATABASE_URL is FLUSHED before each round (use one of your own); Redis is an
embedded one in the scratch folder (never a shared one: each round flushes it).

Two code trees take turns on the same PostgreSQL and Redis: the *baseline* (`--baseline`, default
the commit this branch forked from main, `git merge-base HEAD main`, unpacked with `git archive`)
and this working tree. Each round: an empty database with one user, gunicorn as bench/pipeline.py
starts it (3 processes of 4 threads, the tree's gunicorn.conf.py), a warm-up, then N (300) submits
from 16 client threads of that one user, each sending its next request when the last is answered.
Measured: submits/s, latency p50/p95, and the CPU time (psutil, before and after) of gunicorn (every
process), the PostgreSQL backends serving this database, the Redis server, and this client. The
trees alternate (baseline, tree, baseline, tree, ...) so that a change in the machine's load falls
on both. Then one batch of each tree through a single-threaded gunicorn under cProfile (the hooks
in bench/submit_profile.conf.py), whose top lines are printed and saved beside the report.

Appends a section to bench/RESULTS.md with each figure and its ratio tree ÷ baseline.
"""

import argparse
import os
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests
from common import pct, wait_http
from pipeline import PYTHON, RESULTS, ROOT, Stack

BODY = {"prompt": "bench clip: a lighthouse at dusk", "duration": 4, "mode": "fast"}


def baseline_tree(ref: str, into: Path) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    into.mkdir(parents=True)
    archive = subprocess.Popen(["git", "archive", commit], cwd=ROOT, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    archive.wait()
    return commit


def tree_cpu(pid: int) -> float:
    try:
        process = psutil.Process(pid)
        return sum(sum(p.cpu_times()[:2]) for p in [process, *process.children(recursive=True)])
    except psutil.Error:
        return 0.0


def pids_cpu(pids: list[int]) -> dict[int, float]:
    times = {}
    for pid in pids:
        try:
            times[pid] = sum(psutil.Process(pid).cpu_times()[:2])
        except psutil.Error:
            pass
    return times


def backends() -> list[int]:
    """PostgreSQL backends connected to our database, our own connection aside."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return pids


def fresh_round(stack: Stack) -> str:
    """An empty database and Redis, one user with credits; returns an API token."""
    import redis

    stack.manage("flush", "--noinput")
    redis.Redis.from_url(stack.env["REDIS_URL"]).flushdb()
    stack.manage("shell", "-c", "from accounts.models import User; User.objects.create_user('bench')")
    stack.manage("grant_credits", "bench", "1000000000", "--reason", "benchmark")
    return stack.manage("create_api_token", "bench").strip().splitlines()[-1]


def start_web(stack: Stack, root: Path, *, workers: int, threads: int, config: Path | None = None):
    args = [PYTHON, "-m", "gunicorn", "seedance_site.wsgi", "-w", str(workers), "--threads", str(threads),
            "-b", f"127.0.0.1:{stack.web_port}", "--log-level", "warning"]  # fmt: skip
    if config is not None:
        args += ["-c", str(config)]
    stack.root = root
    stack.env["PYTHONPATH"] = str(root)
    process = stack.spawn(args)
    wait_http(stack.web_url + "/healthz")
    return process


def submits(url: str, token: str, n: int, clients: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    local = threading.local()

    def submit(i: int) -> None:
        nonlocal errors
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        response = session.post(
            url + "/api/v1/generations", json=BODY, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        latencies.append(time.perf_counter() - started)
        if response.status_code != 201:
            errors += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(submit, range(n)))
    return latencies, errors


def measure(stack: Stack, root: Path, n: int, clients: int, warmup: int, redis_pid: int | None) -> dict:
    token = fresh_round(stack)
    web = start_web(stack, root, workers=3, threads=4)
    try:
        submits(stack.web_url, token, warmup, clients)  # imports, pools, connections
        me = psutil.Process()
        redis_pids = [redis_pid] if redis_pid else []
        pg0 = pids_cpu(backends())
        cpu0 = (tree_cpu(web.pid), sum(pids_cpu(redis_pids).values()), sum(me.cpu_times()[:2]))
        t0 = time.perf_counter()
        latencies, errors = submits(stack.web_url, token, n, clients)
        wall = time.perf_counter() - t0
        cpu1 = (tree_cpu(web.pid), sum(pids_cpu(redis_pids).values()), sum(me.cpu_times()[:2]))
        # The pools open connections as the threads need them: a backend that started during the
        # batch counts whole (it started at zero); one that ended took its CPU with it (reported).
        pg1 = pids_cpu(backends())
    finally:
        stack.stop_process(web)
        stack.processes.remove(web)
    web_ms, redis_ms, client_ms = (1000 * (b - a) / n for a, b in zip(cpu0, cpu1, strict=True))
    pg_ms = 1000 * sum(t - pg0.get(pid, 0.0) for pid, t in pg1.items()) / n
    return {
        "per_second": n / wall,
        "p50_ms": pct(latencies, 50) * 1000,
        "p95_ms": pct(latencies, 95) * 1000,
        "errors": errors,
        "gunicorn_ms": web_ms,
        "postgres_ms": pg_ms,
        "redis_ms": redis_ms,
        "client_ms": client_ms,
        "total_ms": web_ms + pg_ms + redis_ms + client_ms,
        "backends_gone": len(set(pg0) - set(pg1)),
    }


def profile(stack: Stack, root: Path, n: int, out: Path) -> str:
    """One batch of N submits, one client, through a one-thread gunicorn under cProfile."""
    token = fresh_round(stack)
    out.unlink(missing_ok=True)
    stack.env["SUBMIT_PROFILE_OUT"] = str(out)
    web = start_web(stack, root, workers=1, threads=1, config=ROOT / "bench" / "submit_profile.conf.py")
    try:
        submits(stack.web_url, token, 20, 1)
        requests.post(stack.web_url + "/healthz", timeout=5)  # a marker: the hooks reset here
        submits(stack.web_url, token, n, 1)
    finally:
        stack.stop_process(web)
        stack.processes.remove(web)
        stack.env.pop("SUBMIT_PROFILE_OUT")
    if not out.exists():
        return "(no profile written)"
    import io

    text = io.StringIO()
    stats = pstats.Stats(str(out), stream=text)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(25)
    return text.getvalue()


FIGURES = [
    ("submits/s", "per_second", "{:.1f}"),
    ("p50 ms", "p50_ms", "{:.0f}"),
    ("p95 ms", "p95_ms", "{:.0f}"),
    ("gunicorn CPU ms / submit", "gunicorn_ms", "{:.1f}"),
    ("PostgreSQL CPU ms / submit", "postgres_ms", "{:.1f}"),
    ("Redis CPU ms / submit", "redis_ms", "{:.1f}"),
    ("client CPU ms / submit", "client_ms", "{:.1f}"),
    ("all CPU ms / submit", "total_ms", "{:.1f}"),
]


def report(base: list[dict], tree: list[dict], context: str) -> str:
    def mean(rounds: list[dict], key: str) -> float:
        return statistics.fmean(r[key] for r in rounds)

    lines = [
        f"## Submit CPU — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        context,
        "",
        "| figure | baseline (rounds) | baseline mean | this tree (rounds) | this tree mean "
        "| tree ÷ baseline |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for label, key, fmt in FIGURES:
        b, t = mean(base, key), mean(tree, key)
        each_base = ", ".join(fmt.format(r[key]) for r in base)
        each_tree = ", ".join(fmt.format(r[key]) for r in tree)
        lines.append(
            f"| {label} | {each_base} | {fmt.format(b)} | {each_tree} | {fmt.format(t)} "
            f"| {t / b if b else float('nan'):.2f} |"
        )
    errors = sum(r["errors"] for r in base + tree)
    gone = sum(r["backends_gone"] for r in base + tree)
    lines += [
        "",
        f"Non-201 answers: {errors}. PostgreSQL backends that ended mid-batch (CPU lost): {gone}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--baseline", default="", help="git ref to compare with (default: merge-base HEAD main)"
    )
    parser.add_argument("-n", type=int, default=300, help="submits a round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each tree, alternating")
    parser.add_argument("--profile-n", type=int, default=100, help="submits under cProfile (0: none)")
    parser.add_argument("--no-results", action="store_true", help="print without appending to RESULTS.md")
    args = parser.parse_args()
    if "postgres" not in os.environ.get("DATABASE_URL", ""):
        raise SystemExit("Set DATABASE_URL to a PostgreSQL database of your own (it is flushed).")

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    os.environ.pop("REDIS_URL", None)  # each round flushes Redis: only ever our own
    workdir = ROOT / "var" / "bench" / ("submit-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S"))
    ref = (
        args.baseline
        or subprocess.run(
            ["git", "merge-base", "HEAD", "main"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    base_root = workdir / "baseline"
    commit = baseline_tree(ref, base_root)
    head = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    stack = Stack(workdir)
    load_at_start = os.getloadavg()
    base: list[dict] = []
    tree: list[dict] = []
    try:
        # Stack.start: embedded Redis, migrations, and a gunicorn we do not use (stopped at once).
        stack.start()
        for process in list(stack.processes):
            stack.stop_process(process)
            stack.processes.remove(process)
        redis_pid = stack.redis_process.pid if stack.redis_process else None
        sys.path.insert(0, str(ROOT))
        os.environ.update({k: v for k, v in stack.env.items() if k != "PYTHONPATH"})
        import django

        django.setup()
        for i in range(args.rounds):
            for name, root, into in (("baseline", base_root, base), ("tree", ROOT, tree)):
                result = measure(stack, root, args.n, args.clients, args.warmup, redis_pid)
                into.append(result)
                print(f"round {i + 1} {name}: {result}", flush=True)
        context = (
            f"`bench/submit_cpu.py -n {args.n} --rounds {args.rounds}`: {args.n} submits from {args.clients} "
            f"client threads of one user after {args.warmup} to warm up, no worker, PostgreSQL, embedded "
            "Redis (unix socket), gunicorn 3×4 threads. Baseline: "
            f"`{commit}`; this tree: `{head}`; rounds alternate. CPU = user + system time before and "
            "after the batch, of gunicorn (master and workers), the PostgreSQL backends serving the "
            "database, the Redis server and the client process. Machine: "
            f"{os.cpu_count()} cores shared with other work; load average (1, 5, 15 min) at the start "
            f"{', '.join(f'{x:.2f}' for x in load_at_start)}, at the end "
            f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}."
        )
        text = report(base, tree, context) if base else ""
        print(text, flush=True)
        if args.profile_n:
            for name, root in (("baseline", base_root), ("tree", ROOT)):
                out = workdir / f"profile-{name}.prof"
                top = profile(stack, root, args.profile_n, out)
                (workdir / f"profile-{name}.txt").write_text(top)
                print(f"--- cProfile, {name}, {args.profile_n} submits ({out}) ---\n{top}", flush=True)
        if text and not args.no_results:
            with RESULTS.open("a") as results:
                results.write("\n" + text)
    finally:
        stack.stop()
        shutil.rmtree(base_root, ignore_errors=True)


if __name__ == "__main__":
    main()
