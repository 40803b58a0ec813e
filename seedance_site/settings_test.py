"""Settings for the test suite: production settings (DEBUG off) plus a throwaway secret key.

The environment is prepared before the real settings module reads it.
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-3f1c9a7e6b2d4058a1c7e9b3d5f7a9c1")
os.environ.pop("DJANGO_DEBUG", None)
if not os.environ.get("REDIS_URL"):
    from seedance_site import embedded_redis

    # The embedded Redis is shared with `make run`; tests keep to their own database number.
    os.environ["REDIS_URL"] = embedded_redis.url() + "?db=1"
    os.environ["SEEDANCE_TEST_EMBEDDED_REDIS"] = "1"

from seedance_site.settings import *  # noqa: F403

# Hashing passwords at full strength makes the suite slow and proves nothing here.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests look at pages without running collectstatic first.
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "rq": {"level": "WARNING"}}}  # noqa: F405
