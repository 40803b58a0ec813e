"""The test suite's own Redis database: its URL must be one redis-py reads, embedded server included."""

import redis

from seedance_site.test_redis import with_db


def test_a_unix_socket_url_keeps_its_slashes_and_gets_the_database():
    url = with_db("unix:///srv/app/var/redis.sock", 3)
    assert url == "unix:///srv/app/var/redis.sock?db=3"
    pool = redis.Redis.from_url(url).connection_pool
    assert pool.connection_kwargs["path"] == "/srv/app/var/redis.sock"
    assert pool.connection_kwargs["db"] == 3


def test_a_tcp_url_gets_the_database_as_its_path():
    assert with_db("redis://127.0.0.1:6379/1", 4) == "redis://127.0.0.1:6379/4"
