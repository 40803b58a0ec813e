"""RQ queues on one Redis connection pool per process.

`django_rq.get_queue(name)` builds a new Redis client with a new connection pool on every call,
so each enqueue opened a fresh connection: a connect, the HELLO / CLIENT SETINFO handshake and
redis-py's look-up of its own version in the installed packages' metadata, about a third of what
an API submit cost in CPU (bench/RESULTS.md, "Submit CPU"). One client per queue name and
process instead; redis-py's pool is thread-safe and starts afresh in a forked child.
"""

import functools

import django_rq
from redis import Redis
from rq import Queue


@functools.cache
def connection(name: str = "default") -> Redis:
    # django_rq reads RQ_QUEUES once, at import: caching by name follows the settings as it does.
    return django_rq.get_connection(name)


def get_queue(name: str = "default") -> Queue:
    """django_rq's queue (its class, timeout and commit mode), on this process's connection."""
    return django_rq.get_queue(name, connection=connection(name))
