"""`make run`: every process the portal needs, in the foreground; Ctrl-C stops them all.

Each child runs in its own session so that we, not the terminal, decide how it stops, and
so that killing its process group also ends anything it started (runserver's reloader).
"""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time

from seedance_site import embedded_redis
from seedance_site.env import DEV_ENV_FILE, read_env_file

WEB_ADDR = os.environ.get("WEB_ADDR", "127.0.0.1:8000")
SIMULATOR_PORT = int(os.environ.get("SHORTAPI_SIMULATOR_PORT", "8001"))
SIMULATOR_KEY = "sim-key"
STRIPE_STANDIN_PORT = int(os.environ.get("STRIPE_STANDIN_PORT", "8002"))
STANDIN_KEY_PREFIX = "sk_test_standin_"
# `manage.py ensure_operator`'s login, printed beside demo's.
OPERATOR_LOGIN = "admin/admin"


def dev_env(real: dict[str, str], previous: dict[str, str]) -> dict[str, str]:
    """What `make run` provides, written to var/dev.env for every process beside it.

    Settings read the file beneath the real environment (seedance_site.env.load_dev_env), so a
    command typed in another terminal sees the same portal; only pieces `make run` itself
    provides are named (the simulator, the Stripe stand-in), and the stand-in's secrets are
    made once and kept, so its sessions' signatures stay valid across restarts.
    """
    values = {
        "DJANGO_DEBUG": "1",
        # On one machine, a webhook receiver to try things with runs on the loopback (CONTRACT §4c).
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "1",
        "SITE_URL": f"http://{WEB_ADDR}",
    }
    # A database or Redis named in make run's environment is the one a second terminal must use too.
    for name in ("DATABASE_URL", "REDIS_URL"):
        if real.get(name):
            values[name] = real[name]
    if not real.get("SHORTAPI_KEY"):
        values["SHORTAPI_KEY"] = SIMULATOR_KEY
        values["SHORTAPI_BASE_URL"] = f"http://127.0.0.1:{SIMULATOR_PORT}"
    if not real.get("STRIPE_SECRET_KEY"):
        key = previous.get("STRIPE_SECRET_KEY", "")
        secret = previous.get("STRIPE_WEBHOOK_SECRET", "")
        if not key.startswith(STANDIN_KEY_PREFIX) or not secret:
            key = STANDIN_KEY_PREFIX + secrets.token_hex(12)
            secret = "whsec_standin_" + secrets.token_hex(16)
        standin = f"http://127.0.0.1:{STRIPE_STANDIN_PORT}"
        values.update(
            STRIPE_SECRET_KEY=key,
            STRIPE_WEBHOOK_SECRET=secret,
            STRIPE_API_BASE=standin,
            STRIPE_STANDIN="1",
            # The checkout form's redirect leads to the stand-in's page, not checkout.stripe.com.
            CSP_FORM_ACTION_EXTRA=standin,
        )
    return values


def write_dev_env(values: dict[str, str]) -> None:
    path = embedded_redis.VAR_DIR / DEV_ENV_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Written by `make run` (seedance_site/devstack.py) at every start: development defaults",
        "# that manage.py reads beneath the real environment. Never on a production host",
        "# (DJANGO_DEBUG=0 in the environment ignores it).",
        *(f"{name}={value}" for name, value in values.items()),
    ]
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("\n".join(lines) + "\n")


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def _catches(pid: int, signum: int) -> bool | None:
    """Whether process `pid` has a handler for `signum` (Linux's /proc); None where we cannot tell."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
    except OSError:
        pass
    return None


class ParentWatch:
    """Stop when whoever started us has stopped waiting for us.

    A terminal's Ctrl-C reaches every process of the foreground group, us too. A SIGINT sent to
    make's process alone (a script's `process.send_signal(SIGINT)`) does not: GNU make then puts
    the signal's handling back to the default and waits for its children to end — for ever, since
    nothing tells us. That reset shows in /proc, so we see it and stop, and make ends as
    interrupted. And if our parent is gone (killed), nobody is left to stop us: we stop too."""

    def __init__(self) -> None:
        self.parent = os.getppid()
        self.make_catches_sigint = _catches(self.parent, signal.SIGINT) is True and self._is_make()

    def _is_make(self) -> bool:
        try:
            with open(f"/proc/{self.parent}/comm") as comm:
                return comm.read().strip() in ("make", "gmake")
        except OSError:
            return False

    def why_stop(self) -> str | None:
        if os.getppid() != self.parent:
            return "the process that started us has gone"
        if self.make_catches_sigint and _catches(self.parent, signal.SIGINT) is False:
            return "make was interrupted"
        return None


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
    real = dict(os.environ)
    values = dev_env(real, read_env_file(embedded_redis.VAR_DIR / DEV_ENV_FILE))
    write_dev_env(values)
    env = {**values, **real}
    python = sys.executable
    children: list[tuple[str, subprocess.Popen]] = []
    redis_process = None
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    parent = ParentWatch()
    try:
        if not env.get("REDIS_URL"):
            redis_process = embedded_redis.start()
            print(f"[devstack] embedded Redis on {embedded_redis.url()}", flush=True)
        if not real.get("SHORTAPI_KEY"):
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
        standin = not real.get("STRIPE_SECRET_KEY")
        if standin:
            children.append(
                _spawn(
                    "stripe stand-in",
                    [python, "manage.py", "stripe_standin", "--port", str(STRIPE_STANDIN_PORT)],
                    env,
                )
            )
            _wait_for_port(STRIPE_STANDIN_PORT)
        children.append(
            _spawn("worker", [python, "manage.py", "rqworker", "default", "--with-scheduler"], env)
        )
        children.append(_spawn("web", [python, "manage.py", "runserver", WEB_ADDR], env))
        print(
            f"[devstack] Seedance Studio on http://{WEB_ADDR}/ (log in as demo/demo); "
            f"operator console http://{WEB_ADDR}/admin/ (log in as {OPERATOR_LOGIN}). Ctrl-C stops it.",
            flush=True,
        )
        if standin:
            print(
                f"[devstack] Top-ups go to the local Stripe stand-in (test mode, no real money): "
                f"http://127.0.0.1:{STRIPE_STANDIN_PORT}/",
                flush=True,
            )
        while not stopping:
            for name, process in children:
                if process.poll() is not None:
                    print(
                        f"[devstack] {name} exited with {process.returncode}; stopping the rest", flush=True
                    )
                    stopping = True
            if not stopping and (why := parent.why_stop()):
                print(f"[devstack] {why}; stopping", flush=True)
                stopping = True
            time.sleep(0.2)
    finally:
        print("[devstack] stopping", flush=True)
        _stop(children)
        embedded_redis.stop(redis_process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
