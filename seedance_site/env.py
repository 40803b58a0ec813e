"""Small, strict readers for configuration from the environment.

A bad value stops the process at start-up with the variable's name, rather than
surfacing later as a confusing error deep inside a request.
"""

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}.")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}.")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    return value


def env_decimal(name: str, default: str, *, minimum: Decimal = Decimal(0), places: int = 3) -> Decimal:
    """An exact decimal (a price in cents, say), never a float: at most `places` decimal places."""
    raw = os.environ.get(name)
    text = default if raw is None or raw.strip() == "" else raw.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number such as 16.8, not {text!r}.") from None
    if not value.is_finite():
        raise ImproperlyConfigured(f"{name} must be a finite number, not {text!r}.")
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}.")
    if -value.as_tuple().exponent > places:  # type: ignore[operator]
        raise ImproperlyConfigured(f"{name} may have at most {places} decimal places, not {value}.")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


_RATE = re.compile(r"([0-9]+)/([0-9]*)([smhd])")


def env_rate(name: str, default: str) -> str:
    """A rate limit, "<count>/<period>" as django-ratelimit reads it: 10/m, 100/h, 5/15m."""
    value = os.environ.get(name, default).strip()
    if not _RATE.fullmatch(value):
        raise ImproperlyConfigured(f"{name} must be a rate such as 10/m or 100/h, not {value!r}.")
    return value


DEV_ENV_FILE = "dev.env"


def read_env_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines (blank lines and `#` comments skipped); {} when there is no file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values = {}
    for line in text.splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name and not name.startswith("#"):
            values[name.strip()] = value.strip()
    return values


def load_dev_env(var_dir: Path) -> None:
    """Take `make run`'s development defaults from `var/dev.env`, under the real environment.

    `make run` writes the file (DEBUG on, the simulator's and the Stripe stand-in's addresses and
    keys), so a command typed in a second terminal beside it (`manage.py create_api_token demo`)
    sees the portal `make run` started. A variable set in the environment always wins, and
    `DJANGO_DEBUG` set off ignores the file entirely: a production process never takes a
    development default, and still refuses to start without its own `DJANGO_SECRET_KEY`.
    The test suite sets `SEEDANCE_DEV_ENV=off`.
    """
    if os.environ.get("SEEDANCE_DEV_ENV", "").strip().lower() in {"off", "0", "false", "no"}:
        return
    debug = os.environ.get("DJANGO_DEBUG")
    if debug is not None and debug.strip().lower() in _FALSE:
        return
    for name, value in read_env_file(var_dir / DEV_ENV_FILE).items():
        os.environ.setdefault(name, value)
