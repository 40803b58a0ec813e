"""Settings for the test suite: production settings (DEBUG off) plus a throwaway secret key.

The environment is prepared before the real settings module reads it.
"""

import os
import sys

from seedance_site import test_redis

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-3f1c9a7e6b2d4058a1c7e9b3d5f7a9c1")
os.environ.pop("DJANGO_DEBUG", None)
# Never `make run`'s var/dev.env: the suite (and every process it starts) sees only what it sets.
os.environ["SEEDANCE_DEV_ENV"] = "off"
# A Redis database of this run's own, whatever REDIS_URL names (the embedded server's when it is
# unset): the suite empties its database before every test, and must never empty another run's.
# Subprocesses the tests start (workers, commands) inherit the claimed URL.
test_redis.claim_for_this_run()

from seedance_site.settings import *  # noqa: F403, E402

# A test database per run, so that two runs at once (two developers, or CI beside a developer)
# never drop each other's database.
_engine = DATABASES["default"]["ENGINE"]  # noqa: F405
if _engine.endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405
    if "pytest" in sys.modules:
        # The test process itself runs without the connection pool: Django's test cases hold
        # one connection per thread in a transaction, and the test database is swapped in under
        # a pool made for the real one. Subprocesses the tests start (workers, servers) import
        # these settings without pytest, so they keep the pool, as in production.
        DATABASES["default"]["OPTIONS"].pop("pool", None)  # noqa: F405
        DATABASES["default"]["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)  # noqa: F405

# Hashing passwords at full strength makes the suite slow and proves nothing here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests look at pages without running collectstatic first.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "rq": {"level": "WARNING"}}}  # noqa: F405
