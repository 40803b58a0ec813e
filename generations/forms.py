import re

from django import forms

from generations.pricing import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODE,
    MAX_DURATION,
    MIN_DURATION,
    MODE_LABELS,
    MODES,
)

PROMPT_MAX = 2000
IDEMPOTENCY_KEY_MAX = 200
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def idempotency_key_error(key: str) -> str | None:
    """Why a client's idempotency key cannot be used, or None. Shared by the API's header and
    the web form's hidden field: a NUL would otherwise reach the database."""
    if _CONTROL_CHARACTERS.search(key):
        return "The Idempotency-Key header must not contain control characters."
    if len(key) > IDEMPOTENCY_KEY_MAX:
        return f"The Idempotency-Key header must be at most {IDEMPOTENCY_KEY_MAX} characters."
    return None


class GenerationForm(forms.Form):
    """Shared by the web page and the JSON API, so the two can never disagree."""

    prompt = forms.CharField(
        max_length=PROMPT_MAX,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 5, "maxlength": PROMPT_MAX}),
        error_messages={
            "required": "Write a prompt: describe the video you want.",
            "max_length": f"The prompt must be at most {PROMPT_MAX:,} characters.",
        },
    )
    mode = forms.ChoiceField(
        choices=[(m, MODE_LABELS[m]) for m in MODES],
        required=False,
        initial=DEFAULT_MODE,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Mode must be “std” or “fast”."},
    )
    duration = forms.IntegerField(
        required=False,
        initial=DEFAULT_DURATION,
        min_value=MIN_DURATION,
        max_value=MAX_DURATION,
        widget=forms.NumberInput(attrs={"type": "range", "step": 1}),
        error_messages={
            "invalid": (
                f"Duration must be a whole number of seconds between {MIN_DURATION} and {MAX_DURATION}."
            ),
            "min_value": f"Duration must be between {MIN_DURATION} and {MAX_DURATION} seconds.",
            "max_value": f"Duration must be between {MIN_DURATION} and {MAX_DURATION} seconds.",
        },
    )
    aspect_ratio = forms.ChoiceField(
        choices=[(r, r) for r in ASPECT_RATIOS],
        required=False,
        initial=DEFAULT_ASPECT_RATIO,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": f"Aspect ratio must be one of {', '.join(ASPECT_RATIOS)}."},
    )

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or DEFAULT_MODE

    def clean_duration(self) -> int:
        value = self.cleaned_data.get("duration")
        return DEFAULT_DURATION if value is None else value

    def clean_aspect_ratio(self) -> str:
        return self.cleaned_data.get("aspect_ratio") or DEFAULT_ASPECT_RATIO
