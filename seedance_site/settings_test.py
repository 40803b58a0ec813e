"""Settings for the test suite: production settings (DEBUG off) plus a throwaway secret key.

The environment is prepared before the real settings module reads it.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-3f1c9a7e6b2d4058a1c7e9b3d5f7a9c1")
os.environ.pop("DJANGO_DEBUG", None)
if not os.environ.get("REDIS_URL"):
    from seedance_site import embedded_redis

    # The embedded Redis is shared with `make run` (database 0); each test run keeps to a
    # database of its own so that two runs at once do not flush each other's queues.
    os.environ["REDIS_URL"] = embedded_redis.url() + f"?db={1 + os.getpid() % 15}"
    os.environ["SEEDANCE_TEST_EMBEDDED_REDIS"] = "1"

from seedance_site.settings import *  # noqa: F403

# A test database per run, so that two runs at once (two developers, or CI beside a developer)
# never drop each other's database.
_engine = DATABASES["default"]["ENGINE"]  # noqa: F405
if _engine.endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}  # noqa: F405

# Hashing passwords at full strength makes the suite slow and proves nothing here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests look at pages without running collectstatic first.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "rq": {"level": "WARNING"}}}  # noqa: F405
