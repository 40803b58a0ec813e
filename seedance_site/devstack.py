"""`make run`: every process the portal needs, in the foreground; Ctrl-C stops them all.

Each child runs in its own session so that we, not the terminal, decide how it stops, and
so that killing its process group also ends anything it started (runserver's reloader).
"""

import os
import signal
import socket
import subprocess
import sys
import time

from seedance_site import embedded_redis

WEB_ADDR = os.environ.get("WEB_ADDR", "127.0.0.1:8000")
SIMULATOR_PORT = int(os.environ.get("SHORTAPI_SIMULATOR_PORT", "8001"))
SIMULATOR_KEY = "sim-key"


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def _spawn(name: str, args: list[str], env: dict[str, str]) -> tuple[str, subprocess.Popen]:
    print(f"[devstack] starting {name}: {' '.join(args)}", flush=True)
    return name, subprocess.Popen(args, env=env, start_new_session=True)


def _stop(children: list[tuple[str, subprocess.Popen]]) -> None:
    for _, process in children:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for name, process in children:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"[devstack] {name} did not stop; killing it", flush=True)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    # On one machine, a webhook receiver to try things with runs on the loopback (CONTRACT §4c).
    env.setdefault("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", "1")
    python = sys.executable
    children: list[tuple[str, subprocess.Popen]] = []
    redis_process = None
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not env.get("REDIS_URL"):
            redis_process = embedded_redis.start()
            print(f"[devstack] embedded Redis on {embedded_redis.url()}", flush=True)
        if not env.get("SHORTAPI_KEY"):
            env["SHORTAPI_KEY"] = SIMULATOR_KEY
            env["SHORTAPI_BASE_URL"] = f"http://127.0.0.1:{SIMULATOR_PORT}"
            children.append(
                _spawn(
                    "simulator",
                    [
                        python,
                        "manage.py",
                        "shortapi_simulator",
                        "--port",
                        str(SIMULATOR_PORT),
                        "--key",
                        SIMULATOR_KEY,
                    ],
                    env,
                )
            )
            _wait_for_port(SIMULATOR_PORT)
        children.append(
            _spawn("worker", [python, "manage.py", "rqworker", "default", "--with-scheduler"], env)
        )
        children.append(_spawn("web", [python, "manage.py", "runserver", WEB_ADDR], env))
        print(
            f"[devstack] Seedance Studio on http://{WEB_ADDR}/ (log in as demo/demo). Ctrl-C stops it.",
            flush=True,
        )
        while not stopping:
            for name, process in children:
                if process.poll() is not None:
                    print(
                        f"[devstack] {name} exited with {process.returncode}; stopping the rest", flush=True
                    )
                    stopping = True
            time.sleep(0.2)
    finally:
        print("[devstack] stopping", flush=True)
        _stop(children)
        embedded_redis.stop(redis_process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
