"""Django's Redis cache, with one Redis client per connection pool instead of one per operation.

Django's RedisCacheClient.get_client() builds a new `redis.Redis` for every cache call, and each
build fills redis-py's table of ~170 response callbacks: about a millisecond of CPU a call, six
calls an API submit (its three rate-limit counters, bench/RESULTS.md "Submit CPU"). A client is
only that table and its pool, so one per pool serves every call (and every thread) alike.
"""

from typing import Any

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
