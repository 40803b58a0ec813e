"""Django's Redis cache, with fewer round trips and less work per call (the rate-limit counters:
three per API submit, bench/RESULTS.md "Issue 16").

- One Redis client per connection pool. Django's RedisCacheClient.get_client() builds a new
  `redis.Redis` for every cache call, and each build fills redis-py's table of ~170 response
  callbacks: about a millisecond of CPU a call. A client is only that table and its pool, so one
  per pool serves every call (and every thread) alike.
- `incr` in one round trip. Django's is EXISTS, then INCRBY: two round trips, and a key that
  expires between them comes back from INCRBY with no expiry, a counter that never resets. One
  script does both at once, and still raises ValueError for a missing key, as Django's does.
"""

from typing import Any

from django.core.cache.backends import redis as django_redis

# INCRBY only if the key is there (a nil reply otherwise), atomically.
_INCR_IF_PRESENT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
    return redis.call('INCRBY', KEYS[1], ARGV[1])
end
return false
"""


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._incr_scripts: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def incr(self, key: Any, delta: int) -> int:
        client = self.get_client(key, write=True)
        script = self._incr_scripts.get(id(client))
        if script is None:  # EVALSHA, falling back to EVAL once if the server lacks the script
            script = self._incr_scripts[id(client)] = client.register_script(_INCR_IF_PRESENT)
        value = script(keys=[key], args=[delta])
        if value is None:
            raise ValueError(f"Key '{key}' not found.")
        return value


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient
