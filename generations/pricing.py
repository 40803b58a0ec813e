"""The price list (CONTRACT §2, §4b): one credit is one US cent. Everything that shows or takes a
price asks `quote`, so the form, the API, the ledger and /api/v1/pricing cannot disagree.

Text-to-video and image-to-video cost whole cents per output second. Omni-reference has decimal
rates (16.8 cents a second) and bills the input video's whole seconds beside the output's, rounded
up to a whole credit once, at the end. Rates are Decimals from settings, never floats: 16.8 * 5 is
84 here, where a float makes it 84.00000000000001 and so, rounded up, 85.
"""

import math
from dataclasses import dataclass
from decimal import Decimal

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

TEXT_TO_VIDEO = "text-to-video"
IMAGE_TO_VIDEO = "image-to-video"
OMNI_REFERENCE = "omni-reference"
MODELS = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO, OMNI_REFERENCE)
MODEL_LABELS = {
    TEXT_TO_VIDEO: "Text to video",
    IMAGE_TO_VIDEO: "Image to video",
    OMNI_REFERENCE: "Reference video",
}


@dataclass(frozen=True)
class Quote:
    mode: str
    duration: int
    cents_per_second: Decimal
    cost_cents: int
    model: str = TEXT_TO_VIDEO
    input_seconds: int = 0

    @property
    def billed_seconds(self) -> int:
        return self.input_seconds + self.duration


def cents_per_second(mode: str, model: str = TEXT_TO_VIDEO) -> Decimal:
    if mode not in MODES:
        raise ValueError(f"Unknown mode {mode!r}.")
    if model == OMNI_REFERENCE:
        return (
            settings.PRICE_OMNI_STD_CENTS_PER_SECOND
            if mode == "std"
            else settings.PRICE_OMNI_FAST_CENTS_PER_SECOND
        )
    if model in (TEXT_TO_VIDEO, IMAGE_TO_VIDEO):
        return Decimal(
            settings.PRICE_STD_CENTS_PER_SECOND if mode == "std" else settings.PRICE_FAST_CENTS_PER_SECOND
        )
    raise ValueError(f"Unknown model {model!r}.")


def quote(mode: str, duration: int, *, model: str = TEXT_TO_VIDEO, input_seconds: int = 0) -> Quote:
    """The price of one generation. `input_seconds` is the input video's length already rounded up
    to whole seconds (omni-reference only; the others bill output seconds alone)."""
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise ValueError(f"Duration must be between {MIN_DURATION} and {MAX_DURATION} seconds.")
    if input_seconds < 0 or (input_seconds and model != OMNI_REFERENCE):
        raise ValueError("Only omni-reference bills input seconds.")
    rate = cents_per_second(mode, model)
    cost = math.ceil(rate * (input_seconds + duration))
    return Quote(
        mode=mode,
        duration=duration,
        cents_per_second=rate,
        cost_cents=cost,
        model=model,
        input_seconds=input_seconds,
    )


def input_seconds(video_seconds: Decimal | None) -> int:
    """An input video's billed seconds: every started second counts."""
    return math.ceil(video_seconds) if video_seconds else 0


def json_rate(rate: Decimal) -> int | float:
    """A rate as JSON shows it: 24 and 14 as integers, 16.8 as a decimal number."""
    return int(rate) if rate == rate.to_integral_value() else float(rate)


def price_list() -> dict:
    return {
        "currency": "usd",
        "cents_per_second": {mode: int(cents_per_second(mode)) for mode in MODES},
        "duration": {"min": MIN_DURATION, "max": MAX_DURATION, "default": DEFAULT_DURATION},
        "aspect_ratios": list(ASPECT_RATIOS),
        "default_aspect_ratio": DEFAULT_ASPECT_RATIO,
        "default_mode": DEFAULT_MODE,
        "models": {
            model: {"cents_per_second": {mode: json_rate(cents_per_second(mode, model)) for mode in MODES}}
            for model in MODELS
        },
    }


def format_usd(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) // 100:,}.{abs(cents) % 100:02d}"


def format_rate(cents: Decimal | int) -> str:
    """A per-second rate in dollars: $0.24, and $0.168 for a fraction of a cent."""
    dollars = Decimal(cents) / 100
    text = f"{dollars:.5f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{dollars:.2f}"
    return f"${text}"


def format_usd_signed(cents: int) -> str:
    """A movement of money: +$100.00, -$1.00 (and $0.00 for nothing)."""
    return ("+" if cents > 0 else "") + format_usd(cents)


def format_credits(cents: int) -> str:
    """The precise figure beside a dollar amount: 9,440 credits, 1 credit."""
    return f"{cents:,} credit{'' if abs(cents) == 1 else 's'}"
