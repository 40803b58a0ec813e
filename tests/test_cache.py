"""The Redis cache (rate-limit counters) reuses one client: Django's own builds a new redis.Redis,
and its table of response callbacks, for every call (bench/submit_cpu.py measured ~1 ms of CPU
each, six calls an API submit)."""

from django.core.cache import cache


def test_every_cache_call_goes_through_one_client_and_counts_as_before() -> None:
    client = cache._cache.get_client(write=True)
    assert cache._cache.get_client() is client
    assert cache.add("counter", 0, timeout=60)
    assert not cache.add("counter", 0, timeout=60)
    assert [cache.incr("counter") for _ in range(3)] == [1, 2, 3]
    assert cache.get("counter") == 3
    assert 0 < client.ttl(cache.make_and_validate_key("counter")) <= 60
    assert cache._cache.get_client(write=True) is client
