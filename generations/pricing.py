"""The price list (CONTRACT §2): one credit is one US cent. Everything that shows or takes a
price asks `quote`, so the form, the API, the ledger and /api/v1/pricing cannot disagree."""

from dataclasses import dataclass

from django.conf import settings

MODES = ("std", "fast")
MODE_LABELS = {
    "std": "Standard — the best motion and detail",
    "fast": "Fast — quicker and cheaper, for drafts",
}
ASPECT_RATIOS = ("21:9", "16:9", "9:16", "4:3", "1:1", "3:4")
DEFAULT_MODE = "std"
DEFAULT_ASPECT_RATIO = "16:9"
MIN_DURATION = 4
MAX_DURATION = 15
DEFAULT_DURATION = 5


@dataclass(frozen=True)
class Quote:
    mode: str
    duration: int
    cents_per_second: int
    cost_cents: int


def cents_per_second(mode: str) -> int:
    if mode == "std":
        return settings.PRICE_STD_CENTS_PER_SECOND
    if mode == "fast":
        return settings.PRICE_FAST_CENTS_PER_SECOND
    raise ValueError(f"Unknown mode {mode!r}.")


def quote(mode: str, duration: int) -> Quote:
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValueError(f"Duration must be between {MIN_DURATION} and {MAX_DURATION} seconds.")
    rate = cents_per_second(mode)
    return Quote(mode=mode, duration=duration, cents_per_second=rate, cost_cents=rate * duration)


def price_list() -> dict:
    return {
        "currency": "usd",
        "cents_per_second": {mode: cents_per_second(mode) for mode in MODES},
        "duration": {"min": MIN_DURATION, "max": MAX_DURATION, "default": DEFAULT_DURATION},
        "aspect_ratios": list(ASPECT_RATIOS),
        "default_aspect_ratio": DEFAULT_ASPECT_RATIO,
        "default_mode": DEFAULT_MODE,
    }


def format_usd(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"
