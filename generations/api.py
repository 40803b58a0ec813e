"""The JSON API for generations and the price list (CONTRACT §4, §5b).

The body schema checks JSON types only; GenerationForm, shared with the web page, checks the values,
so the two can never disagree. The document's limits come from the constants the form enforces.
"""

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.db.models import prefetch_related_objects
from django.http import HttpRequest
from django.urls import reverse
from ninja import Field, Header, Query, Router, Schema, Status
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    create_model,
)
from pydantic_core import PydanticCustomError

from accounts.billing.ledger import InsufficientCredits
from accounts.spending import SpendLimitReached
from generations import models
from generations.forms import (
    IDEMPOTENCY_KEY_MAX,
    MAX_AUDIOS,
    MAX_IMAGES,
    PROMPT_MAX,
    GenerationForm,
    idempotency_key_error,
)
from generations.pricing import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODE,
    MAX_DURATION,
    MIN_DURATION,
    MODELS,
    MODES,
    format_usd,
    price_list,
)
from generations.selectors import (
    PUBLIC_STATUSES,
    apply_cursor,
    encode_cursor,
    generation_for_user,
    generations_for_user,
    video_url,
)
from generations.services import (
    GenerationAlreadyStarted,
    IdempotencyKeyOfDeleted,
    InputGone,
    TooManyActive,
    UpstreamUnconfigured,
    generation_cancel,
    generation_create,
    generation_for_key,
)
from generations.user_webhooks import WEBHOOK_URL_MAX
from seedance_site.api import (
    Answer,
    ApiError,
    documented,
    error_code,
    errors,
    form_error,
    json_object,
    request_body,
    typed,
)

router = Router(tags=["Generations"])

PAGE_DEFAULT = 20
PAGE_MAX = 100
INSUFFICIENT_CREDITS = error_code(
    "insufficient_credits", "The balance does not cover the price; nothing was held or queued."
)
UPSTREAM_UNCONFIGURED = error_code(
    "upstream_unconfigured", "No ShortAPI key is set on this server; nothing was held or queued."
)
SPEND_LIMIT_REACHED = error_code(
    "spend_limit_reached",
    "The price would take this calendar month's spending (UTC) past your monthly spend limit; nothing "
    "was held or queued. Raise or remove the limit with `PATCH /api/v1/account`.",
)
ALREADY_STARTED = error_code(
    "already_started",
    "The video service has the generation already, or it has ended: it cannot be cancelled.",
)
IDEMPOTENCY_KEY_REUSED = error_code(
    "idempotency_key_reused",
    "The Idempotency-Key started a generation that has since been deleted; keys are never reused, "
    "so send a new one.",
)


# --- The price list ---------------------------------------------------------------------------

CentsPerSecond = create_model("CentsPerSecond", __base__=Answer, **{mode: (int, ...) for mode in MODES})


class DurationRange(Answer):
    min: Literal[MIN_DURATION]
    max: Literal[MAX_DURATION]
    default: Literal[DEFAULT_DURATION]


# A decimal rate (omni-reference: 16.8) or a whole one (24, and 14 shown as 14, not 14.0).
Rate = Annotated[int | float, WithJsonSchema({"type": "number", "minimum": 0})]
ModelCentsPerSecond = create_model(
    "ModelCentsPerSecond", __base__=Answer, **{mode: (Rate, ...) for mode in MODES}
)


class ModelPrice(Answer):
    cents_per_second: ModelCentsPerSecond


PricingModels = create_model(
    "PricingModels",
    __base__=Answer,
    __doc__="Per model (CONTRACT §4b). Omni-reference bills the input video's whole seconds plus the "
    "output's, rounded up to a whole credit: ceil(rate × (ceil(input seconds) + duration)).",
    **{model.replace("-", "_"): (ModelPrice, Field(alias=model)) for model in MODELS},
)


class Pricing(Answer):
    currency: Literal["usd"]
    cents_per_second: CentsPerSecond
    duration: DurationRange
    aspect_ratios: list[Literal[ASPECT_RATIOS]]
    default_aspect_ratio: Literal[DEFAULT_ASPECT_RATIO]
    default_mode: Literal[DEFAULT_MODE]
    models: PricingModels


@router.get(
    "/pricing",
    auth=None,
    by_alias=True,
    response={200: Pricing, **errors(auth=False)},
    tags=["Pricing"],
    operation_id="pricing",
    summary="The price list and the choices a generation takes",
)
def pricing(request: HttpRequest) -> dict[str, Any]:
    return price_list()


# --- A generation, as every answer shows it -----------------------------------------------------

IsoDateTime = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),  # as Python writes it, microseconds and all
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Generation(Answer):
    """queued: credits held, not yet accepted upstream; running: upstream has the job; succeeded:
    the video is stored here and the credits are charged; failed: the credits are back in the
    balance and `error` says why."""

    id: UUID
    status: Literal[tuple(PUBLIC_STATUSES)]
    prompt: str = Field(min_length=1, max_length=PROMPT_MAX)
    mode: Literal[MODES]
    duration: int = Field(ge=MIN_DURATION, le=MAX_DURATION)
    aspect_ratio: Literal[ASPECT_RATIOS]
    cost_cents: int = Field(ge=0)
    video_url: str | None = Field(
        json_schema_extra={"format": "uri"},
        description="The stored MP4, a signed link a plain GET fetches for at least an hour; "
        "null until the generation has succeeded.",
    )
    error: str | None = Field(description="Why it failed; null unless `status` is failed.")
    created_at: IsoDateTime
    finished_at: IsoDateTime | None
    model: Literal[MODELS] = Field(description="Follows from the inputs: a video, images, or neither.")
    image_ids: list[UUID] = Field(max_length=MAX_IMAGES, description="The image uploads, in order.")
    video_id: UUID | None = Field(description="The reference video (omni-reference), or null.")
    audio_ids: list[UUID] = Field(max_length=MAX_AUDIOS, description="The audio uploads, in order.")
    first_last_frame: bool = Field(description="The first image is the first frame, the second the last.")
    webhook_url: str | None = Field(
        max_length=WEBHOOK_URL_MAX,
        description="Where the generation is POSTed, signed, when it ends; null for none.",
    )
    visibility: Literal["private", "unlisted", "listed"] = Field(
        description="Who may watch it: `private` (only you), `unlisted` (anyone with `share_url`) or "
        "`listed` (on Explore too). Set on the video's page."
    )
    share_url: str | None = Field(
        json_schema_extra={"format": "uri"},
        description="The public page while it is shared (unlisted or listed); null when private. "
        "Making it private ends this link at once.",
    )

    # Links in a generation are built from SITE_URL (CONTRACT §2), never from the request's host: the
    # same object then reads the same from GET, from a list and in a webhook's body (built with no
    # request), and a link handed to a script names the public root, not whichever name reached us.
    @staticmethod
    def resolve_share_url(generation: models.Generation) -> str | None:
        if not (generation.shared and generation.share_slug):
            return None
        return settings.SITE_URL + reverse("shared_video", args=[generation.share_slug])

    @staticmethod
    def resolve_status(generation: models.Generation) -> str:
        return generation.public_status

    @staticmethod
    def resolve_image_ids(generation: models.Generation) -> list[UUID]:
        return [item.upload_id for item in generation.inputs_of("image")]

    @staticmethod
    def resolve_video_id(generation: models.Generation) -> UUID | None:
        return next((item.upload_id for item in generation.inputs_of("video")), None)

    @staticmethod
    def resolve_audio_ids(generation: models.Generation) -> list[UUID]:
        return [item.upload_id for item in generation.inputs_of("audio")]

    @staticmethod
    def resolve_video_url(generation: models.Generation) -> str | None:
        return video_url(None, generation)

    @staticmethod
    def resolve_error(generation: models.Generation) -> str | None:
        return generation.error or None if generation.status == models.Generation.Status.FAILED else None

    @staticmethod
    def resolve_webhook_url(generation: models.Generation) -> str | None:
        return generation.webhook_url or None


class GenerationList(Answer):
    results: list[Generation] = Field(max_length=PAGE_MAX, description="Newest first.")
    next: str | None = Field(
        json_schema_extra={"format": "uri"}, description="The next page's absolute URL; null on the last."
    )


# --- Submitting -----------------------------------------------------------------------------


def _idempotency_key(value: str | None) -> str | None:
    key = (value or "").strip() or None
    problem = key and idempotency_key_error(key)
    if problem:
        raise PydanticCustomError("invalid", problem)
    return key


IdempotencyKey = Annotated[
    str | None,
    AfterValidator(_idempotency_key),
    WithJsonSchema({"type": "string", "maxLength": IDEMPOTENCY_KEY_MAX, "pattern": "^[^\\x00-\\x1f\\x7f]*$"}),
]


UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _upload_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(UUID_PATTERN, value):
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise PydanticCustomError("invalid", "“{value}” is not an upload id.", {"value": shown})
    return value


def _upload_ids(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        _upload_id(value)
    return values


def _not_empty(message: str):
    """An empty string is not left out (that is null, or no key): the document's enum refuses it,
    so the API does too, in the form's words, where the web form's blank radio means the default."""

    def check(value: str | None) -> str | None:
        if value == "":
            raise PydanticCustomError("invalid", message)
        return value

    return AfterValidator(check)


Mode = Annotated[
    StrictStr | None, _not_empty(GenerationForm.base_fields["mode"].error_messages["invalid_choice"])
]
AspectRatio = Annotated[
    StrictStr | None, _not_empty(GenerationForm.base_fields["aspect_ratio"].error_messages["invalid_choice"])
]
UploadId = Annotated[StrictStr | None, AfterValidator(_upload_id)]
UploadIds = Annotated[list[StrictStr] | None, AfterValidator(_upload_ids)]


class NewGeneration(Schema):
    """Unknown fields are ignored; an optional field sent as null takes its default."""

    # Optional to pydantic, so that GenerationForm says a missing prompt is missing, in its words.
    model_config = ConfigDict(json_schema_extra={"required": ["prompt"]})

    prompt: StrictStr | None = documented(
        nullable=False,
        minLength=1,
        maxLength=PROMPT_MAX,
        # Not all whitespace, and no NUL (Django's form field refuses it).
        pattern="^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$",
        description=f"Stripped of surrounding whitespace, then 1..{PROMPT_MAX} characters.",
    )
    mode: Mode = documented(DEFAULT_MODE, enum=[*MODES, None])
    duration: StrictInt | None = documented(
        DEFAULT_DURATION,
        minimum=MIN_DURATION,
        maximum=MAX_DURATION,
        description="Seconds, a JSON integer (a string, float or boolean is refused).",
    )
    aspect_ratio: AspectRatio = documented(DEFAULT_ASPECT_RATIO, enum=[*ASPECT_RATIOS, None])
    image_ids: UploadIds = documented(
        items={"type": "string", "format": "uuid", "pattern": UUID_PATTERN},
        maxItems=MAX_IMAGES,
        description=f"Your image uploads, in order (1..{MAX_IMAGES}): image-to-video, or references beside "
        "a video. An empty list or null is the same as leaving it out.",
    )
    video_id: UploadId = documented(
        format="uuid",
        pattern=UUID_PATTERN,
        description="Your video upload (2..15 s): makes it omni-reference.",
    )
    audio_ids: UploadIds = documented(
        items={"type": "string", "format": "uuid", "pattern": UUID_PATTERN},
        maxItems=MAX_AUDIOS,
        description=f"Your audio uploads (1..{MAX_AUDIOS}), only beside an image or a video.",
    )
    first_last_frame: StrictBool | None = documented(
        False,
        description="The first image opens the video and the second (if any) ends it: 1..2 images, no "
        "video or audio; `aspect_ratio` is checked but not sent.",
    )
    webhook_url: StrictStr | None = documented(
        maxLength=WEBHOOK_URL_MAX,
        # The form checks the rest (a host name or address, a port in range) and says what is wrong.
        pattern="^([Hh][Tt][Tt][Pp][Ss]?://\\S+)?$",
        description="http(s); empty or null for none. When the generation ends (succeeded or failed) "
        "its JSON is POSTed there, signed by the Standard Webhooks scheme with your account's "
        "`webhook_secret`, and retried for over a day until a 2xx comes back within 10 s. A host "
        "resolving to a private, loopback or link-local address is refused.",
    )


@router.post(
    "/generations",
    response={
        200: Generation,
        201: Generation,
        **errors(
            (402, SPEND_LIMIT_REACHED),
            (402, INSUFFICIENT_CREDITS),
            (409, IDEMPOTENCY_KEY_REUSED),
            (503, UPSTREAM_UNCONFIGURED),
            body=True,
        ),
    },
    openapi_extra={
        **request_body(NewGeneration),
        "responses": {
            200: {"description": "A repeated Idempotency-Key: the first generation, and nothing charged."},
            201: {"description": "Created: the credits are held and the job is queued."},
        },
    },
    operation_id="createGeneration",
    summary="Hold the credits and queue a generation (text-to-video, image-to-video or omni-reference)",
)
def create_generation(
    request: HttpRequest,
    idempotency_key: IdempotencyKey = Header(
        None,
        alias="Idempotency-Key",
        description="Unique per user, for good: a repeat returns the first generation with 200, whatever "
        "the body, and charges nothing more. A request refused with 4xx does not use up its key.",
    ),
) -> Status:
    """201 with a new generation; 200 with the first one for a repeated Idempotency-Key. Checks in
    this order, and the first that fails answers: 401, 400, 503, 429, 402 `spend_limit_reached`, 402
    `insufficient_credits`. Nothing is held or stored for a refused request. 429 also when too many
    videos are in progress or started too fast."""
    user = request.auth
    body = json_object(request)
    if idempotency_key is not None:
        try:
            existing = generation_for_key(user=user, idempotency_key=idempotency_key)
        except IdempotencyKeyOfDeleted as exc:
            raise ApiError(409, IDEMPOTENCY_KEY_REUSED, exc.message) from None
        if existing is not None:
            return Status(200, existing)
    form = GenerationForm(typed(NewGeneration, body).model_dump(exclude_none=True), user=user)
    if not form.is_valid():
        raise form_error(form)
    try:
        generation, created = generation_create(
            user=user, idempotency_key=idempotency_key, **form.cleaned_data
        )
    except IdempotencyKeyOfDeleted as exc:  # deleted between the check above and now
        raise ApiError(409, IDEMPOTENCY_KEY_REUSED, exc.message) from None
    except UpstreamUnconfigured as exc:
        raise ApiError(503, UPSTREAM_UNCONFIGURED, exc.message) from None
    except TooManyActive as exc:  # or SubmittingTooFast
        raise ApiError(429, "rate_limited", str(exc)) from None
    except InputGone as exc:
        raise ApiError(400, "invalid_request", exc.message, {exc.field: [exc.message]}) from None
    except SpendLimitReached as exc:
        raise ApiError(
            402,
            SPEND_LIMIT_REACHED,
            f"This video costs {format_usd(exc.needed_cents)}; you have spent {format_usd(exc.spent_cents)} "
            f"of your {format_usd(exc.limit_cents)} monthly limit this month. Raise the limit on your "
            "account page.",
        ) from None
    except InsufficientCredits as exc:
        raise ApiError(
            402,
            INSUFFICIENT_CREDITS,
            f"This video costs {format_usd(exc.needed_cents)} ({exc.needed_cents} credits); "
            f"your balance is {exc.balance_cents} credits. Top up on the Billing page.",
        ) from None
    prefetch_related_objects([generation], "inputs")  # one query for image_ids, video_id, audio_ids
    return Status(201 if created else 200, generation)


# --- Reading ----------------------------------------------------------------------------------


def _page_size(value: object) -> object:
    # Stricter than int(): "+5", " 5", "5_0", "5.0" and "²" are not page sizes. Checked here, range
    # too, so that every bad limit is told in one sentence rather than in pydantic's words.
    text = str(value)
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= PAGE_MAX):
        raise PydanticCustomError(
            "invalid", "The page size, limit, must be a whole number from 1 to {most}.", {"most": PAGE_MAX}
        )
    return value


def _known_status(value: object) -> object:
    if value not in ("", *PUBLIC_STATUSES):
        *first, last = PUBLIC_STATUSES
        raise PydanticCustomError("invalid", f"Status must be one of {', '.join(first)} or {last}.")
    return value


@router.get(
    "/generations",
    response={200: GenerationList, **errors(400)},
    operation_id="listGenerations",
    summary="Your generations, newest first, a page at a time",
)
def list_generations(
    request: HttpRequest,
    status: Annotated[Literal[("", *PUBLIC_STATUSES)], BeforeValidator(_known_status)] = Query(
        "", description="Only generations in this state."
    ),
    cursor: str = Query("", description="Opaque: take it from a `next` URL as given."),
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX), BeforeValidator(_page_size)] = Query(
        PAGE_DEFAULT, description="Page size."
    ),
) -> dict[str, Any]:
    """400 for an unknown status, a limit out of range, or a cursor the server did not make."""
    queryset = generations_for_user(user=request.auth, status=status or None)
    if cursor:
        try:
            queryset = apply_cursor(queryset, cursor)
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc), {"cursor": [str(exc)]}) from None
    page = list(queryset[: limit + 1])
    next_url = None
    if len(page) > limit:
        page = page[:limit]
        params = {"status": status, "limit": limit if limit != PAGE_DEFAULT else None}
        query = urlencode({**{k: v for k, v in params.items() if v}, "cursor": encode_cursor(page[-1])})
        next_url = request.build_absolute_uri(f"{request.path}?{query}")
    return {"results": page, "next": next_url}


@router.get(
    "/generations/{id}",
    response={200: Generation, **errors((404, "not_found"))},
    operation_id="getGeneration",
    summary="One of your generations",
)
def get_generation(
    request: HttpRequest, id: Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
):
    """404 for an unknown id and for another user's: the two look the same."""
    return generation_for_user(user=request.auth, generation_id=id)


@router.post(
    "/generations/{id}/cancel",
    response={200: Generation, **errors((404, "not_found"), (409, ALREADY_STARTED))},
    operation_id="cancelGeneration",
    summary="Cancel a generation that is still queued, and get its credits back",
)
def cancel_generation(
    request: HttpRequest, id: Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
):
    """200 with the generation, now `failed` ("Cancelled by you") and its credits back in the
    balance, exactly once. 409 `already_started` once the video service has it (or it has ended);
    404 for an unknown id and for another user's."""
    generation = generation_for_user(user=request.auth, generation_id=id)
    try:
        return generation_cancel(generation=generation)
    except GenerationAlreadyStarted as exc:
        raise ApiError(409, ALREADY_STARTED, exc.message) from None
