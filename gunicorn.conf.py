"""Gunicorn settings for the web process, every value overridable from the environment.

    gunicorn seedance_site.wsgi -c gunicorn.conf.py          # what the Procfile runs

| variable              | default                     | meaning                                          |
| --------------------- | --------------------------- | ------------------------------------------------ |
| `BIND`                | `0.0.0.0:$PORT` if `PORT`   | address to listen on (wins over `PORT`)          |
| `PORT`                | unset: `127.0.0.1:8000`     | platforms (Heroku, Render, ...) name the port    |
| `WEB_CONCURRENCY`     | `2 * cores + 1`             | worker processes                                 |
| `GUNICORN_THREADS`    | `4`                         | threads per worker (gthread)                     |
| `GUNICORN_TIMEOUT`    | `30`                        | seconds before a silent worker is killed         |
| `GUNICORN_MAX_REQUESTS` | `1000` (`0` = never)      | recycle a worker after this many requests        |
| `FORWARDED_ALLOW_IPS` | `127.0.0.1,::1`             | proxies whose X-Forwarded-* headers are trusted  |
| `GUNICORN_ACCESS_LOG` | `-` (stdout)                | a path, or `off`                                 |
| `LOG_LEVEL`           | `info`                      | gunicorn's own log level                         |
"""

import os

# Standalone on purpose: gunicorn reads this file before the project is importable, so it
# cannot lean on seedance_site.env. The same strictness: a bad value stops start-up, named.


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env_str(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum:
        raise SystemExit(f"{name} must be at least {minimum}, not {value}.")
    return value


def _bind() -> str:
    explicit = env_str("BIND")
    if explicit:
        return explicit
    port = env_str("PORT")
    # A platform that names PORT routes to us from outside the container: listen on every interface.
    # Without it, stay on loopback so a developer's machine exposes nothing by accident.
    return f"0.0.0.0:{port}" if port else "127.0.0.1:8000"


def _cores() -> int:
    # Honour CPU affinity (containers, taskset): os.cpu_count() reports the host's cores.
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


bind = _bind()
workers = env_int("WEB_CONCURRENCY", 2 * _cores() + 1, minimum=1)
# Threads let one worker overlap requests that wait on PostgreSQL, Redis or a slow client;
# Django is thread-safe and each thread keeps its own database connection.
worker_class = "gthread"
threads = env_int("GUNICORN_THREADS", 4, minimum=1)

timeout = env_int("GUNICORN_TIMEOUT", 30, minimum=1)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30, minimum=1)
# Slightly longer than a typical proxy's idle timeout is pointless; a few seconds lets a
# browser reuse its connection for the page's next request without pinning idle sockets.
keepalive = env_int("GUNICORN_KEEPALIVE", 5, minimum=0)

# Recycling workers bounds slow memory growth; the jitter keeps them from restarting together.
max_requests = env_int("GUNICORN_MAX_REQUESTS", 1000, minimum=0)
max_requests_jitter = env_int("GUNICORN_MAX_REQUESTS_JITTER", max(max_requests // 10, 0), minimum=0)

# Only these addresses may set X-Forwarded-For / -Proto; "*" when the platform's router is the
# only way in (then also set DJANGO_BEHIND_PROXY=1 so Django trusts X-Forwarded-Proto).
forwarded_allow_ips = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

_access = env_str("GUNICORN_ACCESS_LOG", "-")
accesslog = None if _access.lower() == "off" else _access
# One short line per request: client, request line, status, bytes, milliseconds.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
loglevel = env_str("LOG_LEVEL", "info").lower()

# Heartbeat files on tmpfs: a worker's heartbeat never blocks on a slow or full disk.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"
