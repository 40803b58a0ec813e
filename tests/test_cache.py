"""The Redis cache (rate-limit counters) reuses one client: Django's own builds a new redis.Redis,
and its table of response callbacks, for every call (bench/submit_cpu.py measured ~1 ms of CPU
each, six calls an API submit)."""

import pytest
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


def test_incr_is_one_round_trip_and_refuses_a_missing_key_as_django_does() -> None:
    client = cache._cache.get_client(write=True)
    with pytest.raises(ValueError):
        cache.incr("missing")
    assert cache.get("missing") is None  # not made by the attempt
    cache.add("counter", 5, timeout=60)
    sent = []
    execute = client.execute_command
    client.execute_command = lambda *args, **kw: sent.append(args[0]) or execute(*args, **kw)
    try:
        assert cache.incr("counter", 2) == 7
    finally:
        del client.execute_command
    assert sent == ["EVALSHA"]
    assert 0 < client.ttl(cache.make_and_validate_key("counter")) <= 60  # its expiry kept
