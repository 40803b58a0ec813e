import re
import uuid
from typing import Any

from django import forms

from generations.models import Upload
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
MAX_IMAGES = 9
MAX_AUDIOS = 3
MAX_INPUTS = 12
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


class UploadIdsField(forms.Field):
    """A list of upload ids: the page posts one hidden input per id, in order; the API a JSON list.
    Blank entries are dropped, so an empty list is the same as none (CONTRACT §4b)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[str]:
        if value in (None, ""):
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple):
            raise forms.ValidationError("Give a list of upload ids.", code="invalid")
        return [str(item).strip() for item in value if str(item).strip()]


KIND_NOUNS = {"image": "an image", "video": "a video", "audio": "a sound"}


class GenerationForm(forms.Form):
    """Shared by the web page and the JSON API, so the two can never disagree.

    Inputs (CONTRACT §4b) come as upload ids and leave as `cleaned_data["inputs"]`, the uploads
    themselves (generations.uploads.Inputs), once every rule holds; the model follows from them.
    The ids are looked up among `user`'s own uploads only, so another user's id is unknown here.
    """

    prompt = forms.CharField(
        strip=True,
        widget=forms.Textarea(attrs={"rows": 5}),
        error_messages={"required": "Write a prompt: describe the video you want."},
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

    image_ids = UploadIdsField(required=False)
    video_id = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    audio_ids = UploadIdsField(required=False)
    first_last_frame = forms.BooleanField(required=False)

    def __init__(self, *args: Any, user: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_prompt(self) -> str:
        # Checked here, not with max_length: that would also put `maxlength` on the textarea, and a
        # browser then cuts a long paste silently. The page shows the overflow instead; the
        # server refuses, and never shortens a prompt it was sent.
        prompt = self.cleaned_data["prompt"]
        if len(prompt) > PROMPT_MAX:
            over = len(prompt) - PROMPT_MAX
            raise forms.ValidationError(
                f"The prompt is {len(prompt):,} characters; the most is {PROMPT_MAX:,}. "
                f"Shorten it by {over:,}.",
                code="max_length",
            )
        return prompt

    def _uploads(self, name: str, ids: list[str], kind: str) -> list[Upload]:
        """The user's own live uploads for `ids`, in order; each id that is not one (unknown, another
        user's, deleted, or of another kind) is an error on the field `name`."""
        wanted: dict[str, uuid.UUID | None] = {}
        for raw in ids:
            try:
                wanted[raw] = uuid.UUID(raw)
            except ValueError:
                wanted[raw] = None
        found: dict[uuid.UUID, Upload] = {}
        real = [value for value in wanted.values() if value is not None]
        if real and self.user is not None and self.user.is_authenticated:
            found = {u.pk: u for u in Upload.objects.live().filter(user=self.user, pk__in=real)}
        uploads = []
        for raw, value in wanted.items():
            upload = found.get(value) if value is not None else None
            shown = raw if len(raw) <= 40 else raw[:40] + "…"
            if upload is None:
                self.add_error(name, f"You have no upload with the id “{shown}”.")
            elif upload.kind != kind:
                what, wanted_kind = KIND_NOUNS[upload.kind], KIND_NOUNS[kind]
                self.add_error(name, f"Upload “{shown}” is {what}, not {wanted_kind}.")
        for raw in ids:  # in the order given, repeats included (the same image may open and close)
            value = wanted[raw]
            if value is not None and value in found and found[value].kind == kind:
                uploads.append(found[value])
        return uploads

    def clean(self) -> dict[str, Any]:
        from generations.uploads import Inputs

        data = super().clean()
        images = self._uploads("image_ids", data.pop("image_ids", None) or [], Upload.Kind.IMAGE)
        video_ids = [data.pop("video_id", None) or ""]
        if hasattr(self.data, "getlist") and len([v for v in self.data.getlist("video_id") if v.strip()]) > 1:
            self.add_error("video_id", "Use one reference video at most.")  # two ticked without scripting
            video_ids = []
        videos = self._uploads("video_id", [v for v in video_ids if v.strip()], Upload.Kind.VIDEO)
        audios = self._uploads("audio_ids", data.pop("audio_ids", None) or [], Upload.Kind.AUDIO)
        first_last = bool(data.pop("first_last_frame", False))
        if any(name in self.errors for name in ("image_ids", "video_id", "audio_ids")):
            return data
        video = videos[0] if videos else None
        if len(images) > MAX_IMAGES:
            self.add_error("image_ids", f"Use at most {MAX_IMAGES} images; you chose {len(images)}.")
        if len(audios) > MAX_AUDIOS:
            self.add_error("audio_ids", f"Use at most {MAX_AUDIOS} sounds; you chose {len(audios)}.")
        total = len(images) + len(audios) + (video is not None)
        if total > MAX_INPUTS and len(images) <= MAX_IMAGES and len(audios) <= MAX_AUDIOS:
            self.add_error("image_ids", f"Use at most {MAX_INPUTS} inputs in all; you chose {total}.")
        if audios and not images and video is None:
            self.add_error(
                "audio_ids", "Audio needs an image or a video beside it: add one, or remove the sound."
            )
        if first_last:
            if not 1 <= len(images) <= 2:
                self.add_error("first_last_frame", "A first/last-frame video takes one or two images.")
            elif video is not None or audios:
                self.add_error(
                    "first_last_frame",
                    "A first/last-frame video takes images only: remove the video and the sound.",
                )
        data["inputs"] = Inputs(
            images=tuple(images), video=video, audios=tuple(audios), first_last_frame=first_last
        )
        return data

    webhook_url = forms.CharField(
        required=False,
        strip=True,
        # Not max_length: the message below says the limit, and the browser must not cut a URL short.
        label="Webhook URL",
        help_text="Optional: we POST the finished video's details there, signed with your account's "
        "webhook secret.",
        widget=forms.URLInput(
            attrs={"placeholder": "https://example.com/hooks/seedance", "inputmode": "url"}
        ),
    )

    def clean_webhook_url(self) -> str:
        from generations.user_webhooks import webhook_url_error

        url = self.cleaned_data.get("webhook_url") or ""
        problem = url and webhook_url_error(url)
        if problem:
            raise forms.ValidationError(problem)
        return url

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or DEFAULT_MODE

    def clean_duration(self) -> int:
        value = self.cleaned_data.get("duration")
        return DEFAULT_DURATION if value is None else value

    def clean_aspect_ratio(self) -> str:
        return self.cleaned_data.get("aspect_ratio") or DEFAULT_ASPECT_RATIO
