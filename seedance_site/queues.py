"""RQ queues on one Redis connection pool per process.

`django_rq.get_queue(name)` builds a new Redis client with a new connection pool on every call,
so each enqueue opened a fresh connection: a connect, the HELLO / CLIENT SETINFO handshake and
redis-py's look-up of its own version in the installed packages' metadata, about a third of what
an API submit cost in CPU (bench/RESULTS.md, "Submit CPU"). One client per connection setting
and process instead; redis-py's pool is thread-safe and starts afresh in a forked child.
"""

import django_rq
from django.conf import settings
from django_rq.connection_utils import filter_connection_params
from redis import Redis
from rq import Queue

_clients: dict[str, Redis] = {}


def connection(name: str = "default") -> Redis:
    # Keyed by the queue's connection settings as they are now, as django_rq reads them: a test
    # that points RQ_QUEUES at another Redis gets a client for that one.
    key = repr(sorted(filter_connection_params(settings.RQ_QUEUES[name]).items()))
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = django_rq.get_connection(name)
    return client


def get_queue(name: str = "default") -> Queue:
    """django_rq's queue (its class, timeout and commit mode), on this process's connection."""
    return django_rq.get_queue(name, connection=connection(name))
