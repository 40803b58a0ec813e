"""A pytest plugin for mutation testing only (`make mutants`, loaded with `-p tests.mutation_plugin`).

mutmut runs the tests of each mutant in a process forked from one that has already imported the
settings, so every mutant would share (and each re-create, migrations and all) the test database
named for that first process. Here each process takes a database file of its own instead, copied
from a template migrated once by tests/mutants.py: a fresh, fully migrated database in milliseconds,
whatever a killed mutant left behind in its own.
"""

import os
import shutil
from pathlib import Path

import pytest

TEMPLATE = "SEEDANCE_MUTANTS_DB_TEMPLATE"
# A mutant's tests never run this long; a claim its process could not give back (killed on timeout)
# frees itself after this.
CLAIM_SECONDS = 3600


def pytest_configure(config: pytest.Config) -> None:
    template = os.environ.get(TEMPLATE)
    if not template:
        return
    from django.conf import settings
    from django.db import connections

    if not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        raise pytest.UsageError("make mutants runs on SQLite: unset DATABASE_URL")
    target = Path(template).with_name(f"test-{os.getpid()}.sqlite3")
    shutil.copyfile(template, target)
    # settings.DATABASES and the connection handler share this dict; no connection is open yet in a
    # freshly forked process (one inherited from the parent would be closed by close_all below).
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(target)
    connections.close_all()
    config.option.reuse_db = True  # the copy is migrated already: keep it, never re-create it
    config.option.create_db = False
    config._seedance_mutants_db = target  # type: ignore[attr-defined]
    config._seedance_mutants_redis = _own_redis_database(settings)  # type: ignore[attr-defined]


def _own_redis_database(settings) -> tuple[str, str] | None:
    """Processes running side by side (mutmut's workers) each need a Redis database of their own too:
    the suite empties its database before every test. The run's own (embedded) server has 15."""
    import redis

    from seedance_site import test_redis

    claims = redis.Redis.from_url(test_redis.with_db(os.environ["REDIS_URL"], 0))
    for db in test_redis.DATABASES:
        key = f"seedance:test-run-db:{db}"
        if claims.set(key, os.getpid(), nx=True, ex=CLAIM_SECONDS):
            url = test_redis.with_db(os.environ["REDIS_URL"], db)
            redis.Redis.from_url(url).flushdb()
            os.environ["REDIS_URL"] = url  # for the workers and commands the tests start
            settings.RQ_QUEUES["default"]["URL"] = url
            settings.CACHES["default"]["LOCATION"] = url
            return test_redis.with_db(url, 0), key
    raise pytest.UsageError("every Redis database of the mutation run's server is taken")


def pytest_unconfigure(config: pytest.Config) -> None:
    target = getattr(config, "_seedance_mutants_db", None)
    if target is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    claim = getattr(config, "_seedance_mutants_redis", None)
    if claim is not None:
        import redis

        redis.Redis.from_url(claim[0]).delete(claim[1])
