"""Seedance Studio settings: every value comes from the environment (CONTRACT §2)."""

import os
import secrets
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from seedance_site import embedded_redis
from seedance_site.env import (
    env_bool,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_rate,
    env_str,
    load_dev_env,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = embedded_redis.VAR_DIR
VAR_DIR.mkdir(parents=True, exist_ok=True)
# `make run`'s development defaults, beneath the real environment (seedance_site.env.load_dev_env).
load_dev_env(VAR_DIR)

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    # Development only: one key, made once, so sessions survive restarts.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost")
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", SITE_URL)

INSTALLED_APPS = [
    "seedance_site.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "django_htmx",
    "ninja",  # its templates and static files: the API docs page at /api/v1/docs
    "accounts",
    "generations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "seedance_site.middleware.IdleSessionTimeout",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "seedance_site.urls"
WSGI_APPLICATION = "seedance_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.billing.context_processors.credits",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker write at once: WAL plus IMMEDIATE transactions make
    # writers queue for the lock instead of failing with "database is locked".
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so a worker or a live server in another thread sees the data.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

# PostgreSQL: a bounded pool of connections per process (Django 5.2 + psycopg_pool), so a server
# that starts a thread per request (runserver, which `make run` uses) cannot open one connection
# per thread and run PostgreSQL out of them under a burst: a request waits up to
# DATABASE_POOL_TIMEOUT seconds for a free connection instead. Connections go back to the pool at
# the end of each request and each worker job. DATABASE_POOL_MAX_SIZE=0 turns the pool off
# (then DATABASE_CONN_MAX_AGE applies, as before).
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 8, minimum=0)
DATABASE_POOL_TIMEOUT = env_float("DATABASE_POOL_TIMEOUT", 30.0, minimum=0.1)
DATABASE_POOL_RECONNECT_SECONDS = 4.0
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_MAX_SIZE:
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections; Django must not
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 0,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": DATABASE_POOL_TIMEOUT,
        # Idle connections go after a minute: a quiet process holds none for long.
        "max_idle": 60.0,
        # psycopg_pool retries a failed connect with a doubling delay (1, 2, 4 … s) for up to
        # reconnect_timeout (default 5 min), and runs one such attempt at a time. After an outage
        # of T seconds the next try could then come up to ~T seconds after the database is back,
        # with every job and request waiting on it (a 35 s outage left a worker blind for 28 s).
        # Giving up after a few seconds means the next request for a connection starts a fresh
        # attempt at once.
        "reconnect_timeout": DATABASE_POOL_RECONNECT_SECONDS,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: RQ, cache (rate limits) -----------------------------------------------------
REDIS_URL = env_str("REDIS_URL") or embedded_redis.url()
EMBEDDED_REDIS = not env_str("REDIS_URL")

# "low": work that can wait (posters), taken by every worker only when "default" is empty, so it
# never stands in front of a job that finishes a paid video (generations.worker adds it).
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
    "low": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 300},
}
# django-rq's own admin entry would mount its views a second time, guarded by is_staff alone; the
# dashboard lives at /admin/django-rq/ behind a named permission (seedance_site.admin).
RQ_SHOW_ADMIN_LINK = False
RQ = {
    # Measured in bench/RESULTS.md: no fork per job is ~1.7x faster to drain and cuts the lag
    # from a finished upstream job to a stored video from seconds to ~0.1 s (p50); several job
    # loops in one process (WORKER_THREADS) overlap the provider's latency.
    "WORKER_CLASS": env_str("RQ_WORKER_CLASS", "generations.worker.ThreadedWorker"),
    # A job is enqueued only once the transaction that made its row commits.
    "COMMIT_MODE": "on_db_commit",
}
# generations.worker.ThreadedWorker: job loops per worker process, so jobs that wait on the
# network overlap (bench/RESULTS.md). Give the database pool at least as many connections.
WORKER_THREADS = env_int("WORKER_THREADS", 8, minimum=1)
# Count each job type's time in Redis (generations.worker.job_timings; the bench reads it).
WORKER_JOB_TIMINGS = env_bool("WORKER_JOB_TIMINGS", False)

CACHES = {
    "default": {
        "BACKEND": "seedance_site.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "seedance",
    }
}

# --- Auth -------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# A session unused this long ends (seedance_site.middleware.IdleSessionTimeout); 0 turns it off,
# leaving Django's two-week session cookie.
SESSION_IDLE_TIMEOUT_SECONDS = env_int("SESSION_IDLE_TIMEOUT_SECONDS", 7 * 24 * 3600, minimum=0)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Rate limits, "<count>/<period>" as django-ratelimit reads them (README, Security).
# Login: per address and per account name, the portal's and the admin's login together.
LOGIN_RATE_LIMIT = env_rate("LOGIN_RATE_LIMIT", "10/m")
# Sign-up: per address, per name and per email (each sign-up mails the address).
SIGNUP_RATE_LIMIT = env_rate("SIGNUP_RATE_LIMIT", "10/h")
# Password reset: per address and per email.
PASSWORD_RESET_RATE_LIMIT = env_rate("PASSWORD_RESET_RATE_LIMIT", "5/h")
# Stripe Checkout sessions started, per user (web and API): each is a call to Stripe.
CHECKOUT_RATE_LIMIT = env_rate("CHECKOUT_RATE_LIMIT", "20/h")
# API tokens created on the account page, per user.
TOKEN_RATE_LIMIT = env_rate("TOKEN_RATE_LIMIT", "10/h")
API_USER_RATE_LIMIT = env_rate("API_USER_RATE_LIMIT", "600/m")
# Generous: an office or a carrier NAT puts many users behind one address.
API_IP_RATE_LIMIT = env_rate("API_IP_RATE_LIMIT", "6000/m")
# New generations per user, on top of MAX_ACTIVE_GENERATIONS_PER_USER (web and API together).
SUBMIT_RATE_LIMIT = env_rate("SUBMIT_RATE_LIMIT", "30/m")
# Uploads per user (web and API together): each is read by Pillow or ffmpeg and stored.
UPLOAD_RATE_LIMIT = env_rate("UPLOAD_RATE_LIMIT", "120/h")
RATELIMIT_VIEW = "seedance_site.views.rate_limited"

# --- Email: console in development, SMTP when a host is named ----------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# Or an email service's HTTP API through django-anymail, named in full
# (EMAIL_BACKEND=anymail.backends.postmark.EmailBackend), with its settings as ANYMAIL_<SETTING>
# variables (ANYMAIL_POSTMARK_SERVER_TOKEN=...), which anymail reads without the prefix.
EMAIL_BACKEND = env_str("EMAIL_BACKEND") or EMAIL_BACKEND
ANYMAIL = {key.removeprefix("ANYMAIL_"): value for key, value in os.environ.items() if key[:8] == "ANYMAIL_"}
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Seedance Studio <noreply@localhost>")

# --- i18n, static, media ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Videos and posters on local disk by default; on any S3-compatible object storage when a
# bucket is named (credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, read by boto3).
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "location": env_str("AWS_S3_LOCATION", "media"),
            "default_acl": None,
            "file_overwrite": False,
            # Signed URLs, valid for as long as our own signed video links.
            "querystring_auth": True,
            "querystring_expire": env_int("VIDEO_URL_MAX_AGE_SECONDS", 6 * 3600, minimum=3600),
        },
    }
else:
    _media_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _media_storage,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security (CONTRACT §2; `check --deploy` clean behind TLS) -----------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Behind TLS, DJANGO_HTTPS=1 switches on everything `check --deploy` asks for; each piece
# can still be set on its own.
HTTPS = env_bool("DJANGO_HTTPS", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", HTTPS)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
# Opt-in: includeSubDomains binds every subdomain of the host to HTTPS for a year, and preload asks
# browsers to ship that in their lists, which is slow to undo. Only the operator knows whether the
# whole domain is ready, so `check --deploy` is not asked to nag about them (W005, W021).
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [
    *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
    *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
]
if env_bool("DJANGO_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
    # Rate limits per address must see the client's address, not the proxy's.
    RATELIMIT_IP_META_KEY = "seedance_site.views.client_ip"

# Content-Security-Policy (django-csp): scripts and styles only from our own static files, no
# inline script anywhere; style *attributes* are allowed for the few computed sizes (aspect ratio
# frames). Stripe Checkout is the one place a form may lead off-site.
_media_origins = ["https:"] if AWS_STORAGE_BUCKET_NAME else []
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:", *_media_origins],
        "media-src": ["'self'", *_media_origins],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'", "https://checkout.stripe.com", *env_list("CSP_FORM_ACTION_EXTRA", "")],
    }
}

# Request bodies: a prompt is at most 2,000 characters. Files are taken by the upload endpoints
# alone, which read them through generations.probe's capped handler (its own limits, per kind);
# everywhere else a posted file is dropped unread, so no other URL can fill the disk.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024, minimum=64 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
FILE_UPLOAD_HANDLERS = ["generations.probe.DropFiles"]

# --- Product ----------------------------------------------------------------------------
# At least a cent a second (0.001 for the decimal omni rates): a price of 0 would make every submit
# a charge of nothing, which the ledger refuses (every entry moves at least one credit).
PRICE_STD_CENTS_PER_SECOND = env_int("PRICE_STD_CENTS_PER_SECOND", 24, minimum=1)
PRICE_FAST_CENTS_PER_SECOND = env_int("PRICE_FAST_CENTS_PER_SECOND", 20, minimum=1)
# Omni-reference (CONTRACT §2, §4b): decimal cents per second of input video plus output.
_LEAST_RATE = Decimal("0.001")
PRICE_OMNI_STD_CENTS_PER_SECOND = env_decimal("PRICE_OMNI_STD_CENTS_PER_SECOND", "16.8", minimum=_LEAST_RATE)
PRICE_OMNI_FAST_CENTS_PER_SECOND = env_decimal("PRICE_OMNI_FAST_CENTS_PER_SECOND", "14", minimum=_LEAST_RATE)
SIGNUP_CREDITS = env_int("SIGNUP_CREDITS", 0, minimum=0)
MAX_ACTIVE_GENERATIONS_PER_USER = env_int("MAX_ACTIVE_GENERATIONS_PER_USER", 5, minimum=1)

SHORTAPI_BASE_URL = env_str("SHORTAPI_BASE_URL", "https://api.shortapi.ai").rstrip("/")
SHORTAPI_KEY = env_str("SHORTAPI_KEY")
SHORTAPI_CONNECT_TIMEOUT = env_float("SHORTAPI_CONNECT_TIMEOUT", 5.0, minimum=0.1)
SHORTAPI_READ_TIMEOUT = env_float("SHORTAPI_READ_TIMEOUT", 30.0, minimum=0.1)

GENERATION_DEADLINE_SECONDS = env_int("GENERATION_DEADLINE_SECONDS", 30 * 60, minimum=1)
# The callback normally brings the result; the first poll is a safety net, timed near the
# typical upstream time, and later polls grow from the initial interval to the cap.
GENERATION_FIRST_POLL_SECONDS = env_float("GENERATION_FIRST_POLL_SECONDS", 60.0, minimum=0.01)
GENERATION_POLL_INITIAL_SECONDS = env_float("GENERATION_POLL_INITIAL_SECONDS", 5.0, minimum=0.01)
GENERATION_POLL_MAX_SECONDS = env_float("GENERATION_POLL_MAX_SECONDS", 30.0, minimum=0.01)
# While ShortAPI is down or busy, the create call is retried (backoff to a minute) this long
# after submission; then the generation fails and is refunded.
GENERATION_SUBMIT_RETRY_SECONDS = env_int("GENERATION_SUBMIT_RETRY_SECONDS", 15 * 60, minimum=0)
GENERATION_FETCH_ATTEMPTS = env_int("GENERATION_FETCH_ATTEMPTS", 4, minimum=1)
VIDEO_MAX_BYTES = env_int("VIDEO_MAX_BYTES", 200 * 1024 * 1024, minimum=1024)
# The whole download's time limit (a slow host trickling bytes never trips a read timeout); the
# fetch job's own RQ limit is set above it. A live download touches its row this often, so the
# sweeper never takes it for lost.
VIDEO_DOWNLOAD_MAX_SECONDS = env_int("VIDEO_DOWNLOAD_MAX_SECONDS", 15 * 60, minimum=10)
GENERATION_FETCH_HEARTBEAT_SECONDS = env_float("GENERATION_FETCH_HEARTBEAT_SECONDS", 30.0, minimum=0.01)
VIDEO_URL_MAX_AGE_SECONDS = env_int("VIDEO_URL_MAX_AGE_SECONDS", 6 * 3600, minimum=3600)
# The provider fetches a generation's inputs by link (CONTRACT §4b): each link works this long
# after the generation was made, never less than a day.
INPUT_URL_MAX_AGE_SECONDS = env_int("INPUT_URL_MAX_AGE_SECONDS", 48 * 3600, minimum=24 * 3600)
# Uploads nobody has used for this long are removed by the sweeper.
UPLOAD_UNUSED_DAYS = env_int("UPLOAD_UNUSED_DAYS", 30, minimum=1)
# Webhooks to users' servers (CONTRACT §4c): private, loopback and link-local addresses are
# refused unless this is on (`make run` and the tests turn it on; never in production).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# The contract's "no answer in 10 s": a whole try, connection to last header, is cut off then.
WEBHOOK_TIMEOUT_SECONDS = 10.0

STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
# The local stand-in (`manage.py stripe_standin`, started by `make run` without keys) is in use:
# the billing page explains its test page (a test key alone shows the test-mode band).
STRIPE_STANDIN = env_bool("STRIPE_STANDIN", False)
STRIPE_CONNECT_TIMEOUT = env_float("STRIPE_CONNECT_TIMEOUT", 5.0, minimum=0.1)
STRIPE_READ_TIMEOUT = env_float("STRIPE_READ_TIMEOUT", 20.0, minimum=0.1)
# The library retries connection errors and 5xx itself, with the same idempotency key.
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2, minimum=0, maximum=5)

# Top-ups: 1 credit = 1 cent; the bounds are the contract's (CONTRACT §4), the packs a choice.
TOPUP_MIN_CENTS = 500
TOPUP_MAX_CENTS = 50_000


def _topup_packs() -> list[int]:
    raw = env_list("TOPUP_PACKS_CENTS", "1000,2500,5000,10000")
    try:
        packs = sorted({int(item) for item in raw})
    except ValueError:
        raise ImproperlyConfigured(f"TOPUP_PACKS_CENTS must be whole cents, not {raw!r}.") from None
    outside = [p for p in packs if not TOPUP_MIN_CENTS <= p <= TOPUP_MAX_CENTS]
    if outside:
        raise ImproperlyConfigured(
            f"TOPUP_PACKS_CENTS must lie between {TOPUP_MIN_CENTS} and {TOPUP_MAX_CENTS}: {outside}."
        )
    return packs


TOPUP_PACKS_CENTS = _topup_packs()

DEMO_CREDITS = 10_000

# --- Logging: to stderr; lines about a generation carry its id (seedance_site.logs) ---------
# Secrets never appear: nothing logs request headers, settings or webhook payloads.
LOG_FORMAT = env_str("LOG_FORMAT", "text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "seedance_site.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(context)s %(message)s"},
        "json": {"()": "seedance_site.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "text",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
