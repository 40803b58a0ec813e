"""A Redis database of its own for each test run, on whatever server REDIS_URL names.

The suite empties its Redis database before every test (queued jobs and rate-limit counters must
not leak from one test into the next). Two runs on one server — CI beside a developer, two
worktrees — must never empty each other's, so each run claims a free database number with
`SET NX` on the server's database 0 and gives it back when it ends. A run killed outright leaves
its claim to expire.
"""

import atexit
import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from seedance_site import embedded_redis

CLAIMED = "SEEDANCE_TEST_REDIS_CLAIMED"
CLAIM_SECONDS = 6 * 3600
# Redis has 16 databases by default; 0 holds the claims (and `make run`'s queues). Highest first:
# hand-picked numbers (`REDIS_URL=.../1` for a bench or a quick run) tend to be low.
DATABASES = range(15, 0, -1)


def with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = {**dict(parse_qsl(parts.query)), "db": str(db)}
        # Not urlunsplit: "unix" is no scheme it knows to take "//", so it would write "unix:/path",
        # which redis refuses.
        return f"unix://{parts.netloc}{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def claim_for_this_run() -> str:
    """Point REDIS_URL at a freshly emptied database claimed for this process; return the URL."""
    if os.environ.get(CLAIMED):  # a subprocess of a run that has claimed one already
        return os.environ["REDIS_URL"]
    url = os.environ.get("REDIS_URL", "")
    if not url:
        process = embedded_redis.start()
        if process is not None:
            atexit.register(embedded_redis.stop, process)
        url = embedded_redis.url()
    claims = redis.Redis.from_url(with_db(url, 0))
    for db in DATABASES:
        key = f"seedance:test-run-db:{db}"
        if claims.set(key, os.getpid(), nx=True, ex=CLAIM_SECONDS):
            atexit.register(claims.delete, key)
            claimed = with_db(url, db)
            redis.Redis.from_url(claimed).flushdb()  # what a killed run left behind
            os.environ["REDIS_URL"] = claimed
            os.environ[CLAIMED] = "1"
            return claimed
    raise RuntimeError(f"every Redis database 1-15 at {url} is claimed by another test run")
