"""The web portal (CONTRACT §5): thin views over generations.services and .selectors."""

import re
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Page, Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.billing.ledger import InsufficientCredits
from accounts.billing.selectors import credits_for_user
from accounts.spending import SpendLimitReached
from generations.forms import MAX_AUDIOS, MAX_IMAGES, PROMPT_MAX, GenerationForm, idempotency_key_error
from generations.media import serve_stored
from generations.models import Generation, Upload
from generations.pricing import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODE,
    IMAGE_TO_VIDEO,
    MAX_DURATION,
    MIN_DURATION,
    MODE_LABELS,
    MODEL_LABELS,
    MODELS,
    MODES,
    OMNI_REFERENCE,
    TEXT_TO_VIDEO,
    cents_per_second,
    format_rate,
    format_usd,
    input_seconds,
    price_list,
    quote,
)
from generations.selectors import (
    PUBLIC_STATUSES,
    explore_generations,
    gallery_generations,
    generation_estimate_seconds,
    generation_for_user,
    generation_visible_to,
    generations_for_user,
    shared_generation,
    video_url,
)
from generations.services import (
    GenerationAlreadyStarted,
    GenerationUnfinished,
    IdempotencyKeyOfDeleted,
    InputGone,
    NotShareable,
    TooManyActive,
    UpstreamUnconfigured,
    generation_cancel,
    generation_create,
    generation_delete,
    generation_set_visibility,
)
from generations.upload_views import upload_item
from generations.uploads import uploads_for_user

PAGE_SIZE = 24
# "Ready" rather than "Succeeded": shorter, and what the generation page says.
STATUS_LABELS = {"queued": "Queued", "running": "Running", "succeeded": "Ready", "failed": "Failed"}
HOME_SHOWCASE = 8

EXAMPLE_PROMPTS = (
    "A red fox trots through fresh snow at dawn, slow tracking shot, soft golden light",
    "Aerial drone shot over a misty pine forest, a winding river catching the first sun",
    "Close-up of rain drops on a neon-lit Tokyo street at night, shallow depth of field",
    "A paper boat drifts down a stream in spring, macro lens, petals floating past",
)

# What each frame is for, in a word, for the aspect-ratio picker.
RATIO_HINTS = {
    "21:9": "Cinema",
    "16:9": "Widescreen",
    "9:16": "Stories",
    "4:3": "Classic",
    "1:1": "Square",
    "3:4": "Portrait",
}
RATIO_BOX = 44  # px: the longer side of each little frame in the picker


def _ratio(value: str) -> tuple[int, int]:
    w, h = value.split(":")
    return int(w), int(h)


def _ratio_choices() -> list[dict]:
    choices = []
    for value in ASPECT_RATIOS:
        w, h = _ratio(value)
        scale = RATIO_BOX / max(w, h)
        size = {"width": round(w * scale), "height": round(h * scale)}
        choices.append({"value": value, "hint": RATIO_HINTS[value], **size})
    return choices


def _mode_choices() -> list[dict]:
    choices = []
    for mode in MODES:
        title, _, line = MODE_LABELS[mode].partition(" — ")
        rate = format_rate(cents_per_second(mode))
        choices.append({"value": mode, "title": title, "line": line, "rate": rate})
    return choices


def duration_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 1:
        return "under a second"
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


# --- Home ----------------------------------------------------------------------------------


def home(request: HttpRequest) -> HttpResponse:
    prices = price_list()
    rates = prices["cents_per_second"]
    default = prices["duration"]["default"]
    context = {
        "prices": [
            {
                "mode": mode,
                "title": MODE_LABELS[mode].partition(" — ")[0],
                "line": MODE_LABELS[mode].partition(" — ")[2],
                "per_second": format_usd(rates[mode]),
                "example": f"{default} s = {format_usd(quote(mode, default).cost_cents)}",
            }
            for mode in MODES
        ],
        "items": [_tile(request, g, public=True) for g in explore_generations()[:HOME_SHOWCASE]],
    }
    return render(request, "home.html", context)


# --- Generate ------------------------------------------------------------------------------


def _idempotency_key(raw: str | None) -> str | None:
    raw = (raw or "").strip()
    return raw if raw and idempotency_key_error(raw) is None else None


def _chosen(form: GenerationForm) -> dict:
    """The settings the page shows as selected: what was posted if valid, else the defaults."""
    source = form.data if form.is_bound else form.initial
    mode = source.get("mode") if source.get("mode") in MODES else DEFAULT_MODE
    aspect_ratio = source.get("aspect_ratio")
    if aspect_ratio not in ASPECT_RATIOS:
        aspect_ratio = DEFAULT_ASPECT_RATIO
    try:
        duration = int(source.get("duration"))
    except (TypeError, ValueError):
        duration = DEFAULT_DURATION
    if not MIN_DURATION <= duration <= MAX_DURATION:
        duration = DEFAULT_DURATION
    return {"mode": mode, "duration": duration, "aspect_ratio": aspect_ratio}


def billed_text(*, duration: int, input_seconds: int) -> str:
    """What a price multiplies: "5 s", or "(7 s reference + 5 s)" for omni-reference."""
    return f"({input_seconds} s reference + {duration} s)" if input_seconds else f"{duration} s"


def _quote_context(
    *, mode: str, duration: int, balance_cents: int, model: str = TEXT_TO_VIDEO, input_seconds: int = 0
) -> dict:
    price = quote(mode, duration, model=model, input_seconds=input_seconds)
    after = balance_cents - price.cost_cents
    billed = billed_text(duration=duration, input_seconds=price.input_seconds)
    text = f"{billed} × {format_rate(price.cents_per_second)} = {format_usd(price.cost_cents)}"
    # A balance that cannot pay is said once, in words (the "short" line), never as a negative
    # "balance after": nothing is ever taken past zero.
    if after >= 0:
        text += f" · balance after: {format_usd(after)}"
    return {
        "text": text,
        "cost": format_usd(price.cost_cents),
        "short": format_usd(-after) if after < 0 else None,
    }


def cheapest_cents() -> int:
    """The least any video costs: the shortest text-to-video in the cheaper mode."""
    return min(quote(mode, MIN_DURATION).cost_cents for mode in MODES)


INPUT_FIELDS = ("image_ids", "video_id", "audio_ids")


def _ids(source, name: str) -> list[str]:
    values = source.getlist(name) if hasattr(source, "getlist") else source.get(name) or []
    values = [values] if isinstance(values, str) else values
    return [str(v).strip() for v in values if str(v).strip()][: MAX_IMAGES + 1 + MAX_AUDIOS]


def _chosen_inputs(user, source) -> dict:
    """The inputs the page shows as chosen: the user's own live uploads among the ids posted (or
    given in the query), of the right kind, in order. The form says what is wrong with the rest."""
    wanted = {name: _ids(source, name) for name in INPUT_FIELDS}
    ids = set()
    for values in wanted.values():
        for value in values:
            try:
                ids.add(uuid.UUID(value))
            except ValueError:
                pass
    found = {str(u.pk): u for u in Upload.objects.live().filter(user=user, pk__in=ids)} if ids else {}

    def pick(name: str, kind: str) -> list[Upload]:
        return [found[v] for v in wanted[name] if v in found and found[v].kind == kind]

    first_last = str(source.get("first_last_frame") or "").lower() in ("1", "true", "on")
    videos = pick("video_id", Upload.Kind.VIDEO)
    return {
        "images": pick("image_ids", Upload.Kind.IMAGE),
        "video": videos[0] if videos else None,
        "audios": pick("audio_ids", Upload.Kind.AUDIO),
        "first_last_frame": first_last,
    }


def _model_of(chosen: dict) -> str:
    if chosen["video"] is not None:
        return OMNI_REFERENCE
    return IMAGE_TO_VIDEO if chosen["images"] else TEXT_TO_VIDEO


def _initial_from_query(query) -> dict:
    """Prefill from "generate again" links and example prompts; anything odd is dropped."""
    initial: dict = {}
    for name in INPUT_FIELDS:
        if values := _ids(query, name):
            initial[name] = values
    if str(query.get("first_last_frame") or "").lower() in ("1", "true", "on"):
        initial["first_last_frame"] = True
    if query.get("prompt"):
        # Never cut: an over-long prompt is shown whole, with its overflow, for the person to shorten.
        initial["prompt"] = query["prompt"][: PROMPT_MAX * 5]
    if query.get("mode") in MODES:
        initial["mode"] = query["mode"]
    if query.get("aspect_ratio") in ASPECT_RATIOS:
        initial["aspect_ratio"] = query["aspect_ratio"]
    if (query.get("duration") or "").isdigit() and MIN_DURATION <= int(query["duration"]) <= MAX_DURATION:
        initial["duration"] = int(query["duration"])
    return initial


@never_cache  # Back/forward must fetch a fresh idempotency key, not replay the last one.
@login_required
def generate(request: HttpRequest) -> HttpResponse:
    short_of_credits = False
    if request.method == "POST":
        form = GenerationForm(request.POST, user=request.user)
        key = _idempotency_key(request.POST.get("idempotency_key"))
        if form.is_valid():
            try:
                generation, created = generation_create(
                    user=request.user, idempotency_key=key, **form.cleaned_data
                )
            except UpstreamUnconfigured:
                # The API's message names the missing key for scripts' authors; a person on the
                # page gets no operator words.
                form.add_error(None, "Making videos is not available on this site yet. Nothing was held.")
            except IdempotencyKeyOfDeleted as exc:
                form.add_error(None, exc.message)
            except InputGone as exc:
                form.add_error(None, exc.message)
            except TooManyActive as exc:
                form.add_error(None, str(exc))
            except SpendLimitReached as exc:
                form.add_error(
                    None,
                    f"This video costs {format_usd(exc.needed_cents)}, which would take you past your "
                    f"monthly spend limit of {format_usd(exc.limit_cents)} ({format_usd(exc.spent_cents)} "
                    "spent this month). You can change the limit on your account page.",
                )
            except InsufficientCredits as exc:
                short_of_credits = True
                form.add_error(
                    None,
                    f"This video costs {format_usd(exc.needed_cents)} but your balance is "
                    f"{format_usd(exc.balance_cents)}.",
                )
            else:
                # No "on its way" message: it would stay above the status once the video is ready.
                # The status line itself says what is held, and changes with the video.
                if not created:
                    messages.info(
                        request,
                        "This form was already sent: here is the video it started. Nothing more was charged.",
                    )
                return redirect("generation_detail", generation_id=generation.pk)
        key = key or str(uuid.uuid4())
    else:
        form = GenerationForm(initial=_initial_from_query(request.GET))
        key = str(uuid.uuid4())
    return render(
        request, "generations/generate.html", _generate_context(request, form, key, short_of_credits)
    )


def _generate_context(request: HttpRequest, form: GenerationForm, key: str, short_of_credits: bool) -> dict:
    chosen = _chosen(form)
    prompt_attrs = {
        "aria-describedby": "prompt-help prompt-count",
        "placeholder": f"e.g. {EXAMPLE_PROMPTS[0]}",
    }
    if form["prompt"].errors:
        prompt_attrs["aria-describedby"] += " prompt-error"
        prompt_attrs["aria-invalid"] = "true"
        prompt_attrs["autofocus"] = True
    form.fields["prompt"].widget.attrs.update(prompt_attrs)
    credits = credits_for_user(user=request.user)
    balance = credits.balance_cents
    prompt_length = len((form["prompt"].value() or "").strip())  # counted as the form counts it
    inputs = _chosen_inputs(request.user, form.data if form.is_bound else form.initial)
    model = _model_of(inputs)
    seconds = input_seconds(inputs["video"].duration_seconds) if inputs["video"] is not None else 0
    chosen_ids = {str(u.pk) for u in (*inputs["images"], *inputs["audios"], inputs["video"]) if u is not None}
    library = [
        {**upload_item(upload), "chosen": str(upload.pk) in chosen_ids}
        for upload in uploads_for_user(user=request.user)
    ]
    return {
        "form": form,
        "idempotency_key": key,
        "chosen": chosen,
        "modes": _mode_choices(),
        "ratios": _ratio_choices(),
        "duration_range": {"min": MIN_DURATION, "max": MAX_DURATION},
        "examples": [{"text": text, "href": "?" + urlencode({"prompt": text})} for text in EXAMPLE_PROMPTS],
        "quote": _quote_context(
            mode=chosen["mode"],
            duration=chosen["duration"],
            balance_cents=balance,
            model=model,
            input_seconds=seconds,
        ),
        # The numbers the page's script needs to recompute the quote exactly as `quote` does: the
        # rates in thousandths of a cent, whole numbers, so 16.8 * 5 is 84 there too.
        "pricing": {
            "cents_per_second": price_list()["cents_per_second"],
            "balance_cents": balance,
            "millicents_per_second": {
                m: {mode: int(cents_per_second(mode, m) * 1000) for mode in MODES} for m in MODELS
            },
            "model_labels": MODEL_LABELS,
        },
        "inputs": inputs,
        "model": model,
        "model_label": MODEL_LABELS[model],
        # The chosen inputs in order, for the studio's script; the library for "Your uploads".
        "studio": {
            "chosen": {
                "images": [str(u.pk) for u in inputs["images"]],
                "video": str(inputs["video"].pk) if inputs["video"] is not None else None,
                "audios": [str(u.pk) for u in inputs["audios"]],
            },
            "library": library,
            "limits": {"images": MAX_IMAGES, "audios": MAX_AUDIOS},
        },
        "library": library,
        "input_errors": [
            e for name in (*INPUT_FIELDS, "first_last_frame") for e in form.errors.get(name, [])
        ],
        "short_of_credits": short_of_credits,
        # Not enough for even the cheapest video: the page says so and how to get credits, and its
        # Generate button is off (the server refuses such a submit anyway, with 402).
        "cannot_afford_any": balance < cheapest_cents(),
        "cheapest": format_usd(cheapest_cents()),
        "credits": credits,  # the header's too: one read for the whole page
        "prompt_max": PROMPT_MAX,
        "prompt_max_text": f"{PROMPT_MAX:,}",
        "prompt_length": f"{prompt_length:,}",
        "prompt_over": max(0, prompt_length - PROMPT_MAX),
        "prompt_over_text": f"{max(0, prompt_length - PROMPT_MAX):,}",
    }


# --- One generation --------------------------------------------------------------------------


def _again_params(generation: Generation, **changes: object) -> list[tuple[str, object]]:
    params: list[tuple[str, object]] = [
        ("prompt", generation.prompt),
        ("mode", changes.get("mode", generation.mode)),
        ("duration", generation.duration),
        ("aspect_ratio", generation.aspect_ratio),
    ]
    names = {"image": "image_ids", "video": "video_id", "audio": "audio_ids"}
    for item in generation.inputs.all():
        params.append((names[item.role], str(item.upload_id)))
    if generation.first_last_frame:
        params.append(("first_last_frame", "1"))
    return params


def _again_url(generation: Generation) -> str:
    """Remix: the studio filled with everything this generation was made with."""
    return reverse("generate") + "?" + urlencode(_again_params(generation))


ROLE_LABELS = {"image": "Image", "video": "Reference video", "audio": "Sound"}


def _input_items(generation: Generation) -> list[dict]:
    """A generation's inputs for its page: thumbnails, in order, named for their role."""
    items = []
    for role in ("image", "video", "audio"):
        for number, item in enumerate(generation.inputs_of(role), start=1):
            upload = item.upload
            label = f"{ROLE_LABELS[role]} {number}" if role != "video" else ROLE_LABELS[role]
            if generation.first_last_frame and role == "image":
                label = ("First frame", "Last frame")[number - 1] if number <= 2 else label
            items.append(
                {
                    "label": label,
                    "role": role,
                    "upload": upload,
                    "thumb_url": reverse("upload_thumbnail", args=[upload.pk]) if upload.thumbnail else None,
                    "file_url": reverse("upload_file", args=[upload.pk]) if upload.file else None,
                    "gone": upload.is_deleted,
                }
            )
    return items


def _followups(generation: Generation) -> dict:
    """One-click follow-ups on a finished video, each with its price before anything is spent."""
    if generation.status != Generation.Status.SUCCEEDED:
        return {}
    inputs_live = all(not item.upload.is_deleted for item in generation.inputs.all())
    continued = quote(generation.mode, generation.duration, model=IMAGE_TO_VIDEO)
    followups: dict = {"continue_price": format_usd(continued.cost_cents)}
    if generation.mode == "fast" and inputs_live:
        standard = quote(
            "std", generation.duration, model=generation.model, input_seconds=generation.input_seconds
        )
        followups["standard"] = {
            "price": format_usd(standard.cost_cents),
            "fields": _again_params(generation, mode="std"),
            "idempotency_key": str(uuid.uuid4()),
        }
    elif generation.mode == "fast":
        followups["standard_unavailable"] = True
    return followups


def _poster_url(generation: Generation) -> str | None:
    return reverse("generation_poster", args=[generation.pk]) if generation.poster else None


# The stored error ends with the refund (the API's `error` is one sentence for scripts); the page
# says the refund once, in its status line, so the reason is shown without it.
_REFUND_SENTENCE = re.compile(r"\s*Your credits have been returned\.\s*$")


def failure_reason(error: str) -> str:
    return _REFUND_SENTENCE.sub("", error or "")


def _generation_context(request: HttpRequest, generation: Generation) -> dict:
    now = timezone.now()
    finished = generation.is_finished
    elapsed = ((generation.finished_at or now) if finished else now) - generation.created_at
    estimate = None
    if not finished:
        estimate = generation_estimate_seconds(mode=generation.mode, duration=generation.duration)
    share_url = None
    if generation.shared and generation.share_slug:
        share_url = request.build_absolute_uri(reverse("shared_video", args=[generation.share_slug]))
    w, h = _ratio(generation.aspect_ratio)
    return {
        "generation": generation,
        "status": generation.public_status,
        "video_url": video_url(request, generation),
        "poster_url": _poster_url(generation),
        "elapsed_seconds": int(elapsed.total_seconds()),
        "elapsed": duration_text(elapsed.total_seconds()),
        "estimate_seconds": estimate,
        "estimate": duration_text(estimate) if estimate else None,
        "cost": format_usd(generation.cost_cents),
        "rate": format_rate(generation.cents_per_second),
        "billed": billed_text(duration=generation.duration, input_seconds=generation.input_seconds),
        "model_label": MODEL_LABELS.get(generation.model, generation.model),
        "input_items": _input_items(generation),
        "followups": _followups(generation),
        "mode_title": MODE_LABELS.get(generation.mode, generation.mode).partition(" — ")[0],
        "share_url": share_url,
        "failure_reason": failure_reason(generation.error) if generation.status == "failed" else None,
        "again_url": _again_url(generation),
        "ratio_w": w,
        "ratio_h": h,
        "download_name": f"seedance-{generation.pk}.mp4",
    }


@login_required
def generation_detail(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = generation_for_user(user=request.user, generation_id=generation_id)
    return render(request, "generations/detail.html", _generation_context(request, generation))


def generation_status(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    """The fragment the generation page polls. While nothing has changed it answers 204, which
    htmx leaves alone (the elapsed clock ticks in the browser); once finished it sends the
    status without a trigger, so polling stops, plus the player, actions and balance."""
    if not request.user.is_authenticated:
        # Logged out in another tab: move the whole page to the login form, rather than let
        # htmx follow the redirect and paste a login form into the status box.
        to_login = redirect_to_login(reverse("generation_detail", args=[generation_id]))
        return HttpResponseClientRedirect(to_login.url) if request.htmx else to_login
    generation = generation_for_user(user=request.user, generation_id=generation_id)
    if not generation.is_finished and request.GET.get("seen") == generation.public_status:
        return HttpResponse(status=204)
    left_queue = request.GET.get("seen") == "queued" and generation.public_status != "queued"
    context = {**_generation_context(request, generation), "oob": True, "left_queue": left_queue}
    return render(request, "generations/_status_update.html", context)


def generation_poster(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = generation_visible_to(user=request.user, generation_id=generation_id)
    if not generation.poster:
        raise Http404("This video has no poster yet.")
    response = serve_stored(generation.poster.name, content_type="image/jpeg")
    if isinstance(response, FileResponse):
        # The owner's browser may keep it a while; anybody else's asks again each time, so going
        # private hides the poster (og:image) at once, as it does the video.
        owner = request.user.is_authenticated and request.user.pk == generation.user_id
        response["Cache-Control"] = "private, max-age=300" if owner else "no-cache"
    return response


@login_required
@require_POST
def generation_share(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = generation_for_user(user=request.user, generation_id=generation_id)
    visibility = request.POST.get("visibility")
    if visibility is None and "shared" in request.POST:  # the one-button form of earlier pages
        visibility = Visibility.LISTED if request.POST["shared"] == "1" else Visibility.PRIVATE
    if visibility not in Visibility.CHOICES:
        messages.error(
            request, "Choose who may watch it: only you, anyone with the link, or everyone on Explore."
        )
        return redirect("generation_detail", generation_id=generation.pk)
    was = generation.visibility
    try:
        generation_set_visibility(generation=generation, visibility=visibility)
    except NotShareable as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, SHARE_MESSAGES[(was != Visibility.PRIVATE, visibility)])
    return redirect(reverse("generation_detail", args=[generation.pk]) + "#sharing")


Visibility = Generation.Visibility
# (was it shared before?, what it is now) → what the owner is told.
SHARE_MESSAGES = {
    (False, Visibility.PRIVATE): "It stays private: only you can see it.",
    (True, Visibility.PRIVATE): "Private again. Its old link and the video behind it stopped working "
    "at once; sharing it again makes a new link.",
    (False, Visibility.UNLISTED): "Shared by link: anyone with the link can watch it. It is not on Explore.",
    (True, Visibility.UNLISTED): "Taken off Explore. The link still works for anyone who has it.",
    (False, Visibility.LISTED): "Shared: anyone with the link can watch it, and it is listed on Explore.",
    (True, Visibility.LISTED): "Listed on Explore. The link stays the same.",
}


@login_required
@require_POST
def generation_cancel_view(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = generation_for_user(user=request.user, generation_id=generation_id)
    try:
        generation_cancel(generation=generation)
    except GenerationAlreadyStarted as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Cancelled. The {format_usd(generation.cost_cents)} held for it is back.")
    # Back to where the button was (the gallery, or this video's page), never off the site.
    back = request.POST.get("next", "")
    if back.startswith("/") and not back.startswith("//") and url_has_allowed_host_and_scheme(back, None):
        return redirect(back)
    return redirect("generation_detail", generation_id=generation.pk)


@login_required
@require_POST
def generation_remove(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    generation = generation_for_user(user=request.user, generation_id=generation_id)
    try:
        generation_delete(generation=generation)
    except GenerationUnfinished as exc:
        messages.error(request, exc.message)
        return redirect("generation_detail", generation_id=generation.pk)
    messages.success(request, "The video was deleted.")
    return redirect("gallery")


# --- Grids: gallery, explore, shared pages -----------------------------------------------------


def _tile(request: HttpRequest, generation: Generation, *, public: bool) -> dict:
    """What one grid tile needs; built from the loaded row alone, so a page of tiles costs no
    extra queries."""
    href = (
        reverse("shared_video", args=[generation.share_slug])
        if public
        else reverse("generation_detail", args=[generation.pk])
    )
    return {
        "generation": generation,
        "status": generation.public_status,
        "href": href,
        "poster_url": _poster_url(generation),
        "video_url": video_url(request, generation, public=public),
        "owner": generation.user.username if public else None,
        # The owner's own inputs, as small thumbnails; never on public grids.
        "inputs": [] if public else _tile_inputs(generation),
    }


def _tile_inputs(generation: Generation) -> list[dict]:
    items = []
    for item in sorted(
        generation.inputs.all(), key=lambda i: (("image", "video", "audio").index(i.role), i.position)
    ):
        upload = item.upload
        items.append(
            {
                "role": item.role,
                "thumb_url": reverse("upload_thumbnail", args=[upload.pk]) if upload.thumbnail else None,
            }
        )
    return items[:4]


def generation_tile(request: HttpRequest, generation_id: uuid.UUID) -> HttpResponse:
    """The gallery tile an unfinished video polls, as the generation page polls its status: 204
    while nothing has changed; the new tile once it has (with no trigger once finished, so the
    polling stops). 286 — htmx's "stop polling" — once it is gone or the visitor is logged out."""
    if not request.user.is_authenticated:
        return HttpResponse(status=286)
    try:
        generation = generation_for_user(user=request.user, generation_id=generation_id)
    except Http404:
        return HttpResponse(status=286)
    if not generation.is_finished and request.GET.get("seen") == generation.public_status:
        return HttpResponse(status=204)
    # "Ready" on the tile that just turned, so the eye finds it; the others show their poster.
    item = {**_tile(request, generation, public=False), "fresh": True}
    return render(request, "generations/_tile.html", {"item": item})


WATCH_MAX = 10
WATCH_SETTLE = timedelta(seconds=2)


def generations_watch(request: HttpRequest) -> HttpResponse:
    """What the site-wide script (static/js/notify.js) asks every few seconds on any page: how
    many videos are still in progress, and which finished since its last question, so the tab
    title can change and a desktop notification appear when one does."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Log in to follow your videos."}, status=401)
    now = timezone.now()
    since = _parse_since(request.GET.get("since"), default=now)
    # A generation's finished_at is stamped a moment before its transaction commits, so the newest
    # seconds wait for the next question: asking up to `now` could miss one that commits just after.
    upto = max(since, now - WATCH_SETTLE)
    mine = generations_for_user(user=request.user)
    finished = mine.filter(finished_at__gt=since, finished_at__lte=upto).order_by("-finished_at")
    answer = {
        "now": upto.isoformat(),
        "active": mine.filter(status__in=Generation.ACTIVE).count(),
        "finished": [
            {
                "id": str(g.pk),
                "status": g.public_status,
                "prompt": g.prompt[:120],
                "url": reverse("generation_detail", args=[g.pk]),
            }
            for g in finished[:WATCH_MAX]
        ],
    }
    response = JsonResponse(answer)
    response["Cache-Control"] = "no-store"
    return response


def _parse_since(raw: str | None, *, default: datetime) -> datetime:
    try:
        since = datetime.fromisoformat(raw or "")
    except ValueError:
        return default
    if since.tzinfo is None:
        return default
    # Never further back than an hour (a tab left asleep for a day need not hear of everything),
    # nor ahead of the server's own clock.
    return min(max(since, default - timedelta(hours=1)), default)


def _page(request: HttpRequest, queryset) -> Page:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _gallery_filters(query: dict) -> dict:
    """Filters from the query string; an unknown value means "any", never an error page."""
    return {
        "status": query.get("status") if query.get("status") in PUBLIC_STATUSES else None,
        "mode": query.get("mode") if query.get("mode") in MODES else None,
        "aspect_ratio": query.get("aspect_ratio") if query.get("aspect_ratio") in ASPECT_RATIOS else None,
        "q": (query.get("q") or "").strip() or None,
    }


@login_required
def gallery(request: HttpRequest) -> HttpResponse:
    filters = _gallery_filters(request.GET)
    page = _page(request, gallery_generations(user=request.user, **filters))
    context = {
        "page": page,
        "items": [_tile(request, g, public=False) for g in page],
        "filters": filters,
        "filtered": any(filters.values()),
        "statuses": [(s, STATUS_LABELS[s]) for s in PUBLIC_STATUSES],
        "modes": _mode_choices(),
        "ratios": ASPECT_RATIOS,
    }
    return render(request, "generations/gallery.html", context)


def explore(request: HttpRequest) -> HttpResponse:
    q = (request.GET.get("q") or "").strip() or None
    page = _page(request, explore_generations(q=q))
    context = {"page": page, "items": [_tile(request, g, public=True) for g in page], "q": q}
    return render(request, "generations/explore.html", context)


def shared_video(request: HttpRequest, slug: str) -> HttpResponse:
    generation = shared_generation(slug=slug)
    poster = _poster_url(generation)
    w, h = _ratio(generation.aspect_ratio)
    context = {
        "generation": generation,
        "owner": generation.user.username,
        # The public link: it names the share slug, so it dies the moment the video is unshared.
        "video_url": video_url(request, generation, public=True),
        "poster_url": poster,
        "poster_absolute": request.build_absolute_uri(poster) if poster else None,
        "page_url": request.build_absolute_uri(),
        "mode_title": MODE_LABELS.get(generation.mode, generation.mode).partition(" — ")[0],
        "is_owner": request.user.is_authenticated and request.user.pk == generation.user_id,
        "ratio_w": w,
        "ratio_h": h,
    }
    response = render(request, "generations/shared.html", context)
    # Unsharing must take effect at once, so no shared cache may keep a copy.
    response["Cache-Control"] = "no-cache, private"
    return response
