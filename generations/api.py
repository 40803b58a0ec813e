"""The JSON API for generations (CONTRACT §4, §5b)."""

import re
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, JsonResponse

from accounts.credits import InsufficientCredits
from generations.forms import GenerationForm, idempotency_key_error
from generations.pricing import format_usd, price_list
from generations.selectors import (
    PUBLIC_STATUSES,
    apply_cursor,
    encode_cursor,
    generation_for_user,
    generation_json,
    generations_for_user,
)
from generations.services import TooManyActive, UpstreamUnconfigured, generation_create
from seedance_site.api import api_error, api_view, form_error

PAGE_DEFAULT = 20
PAGE_MAX = 100


@api_view(methods=("GET",), auth=False)
def pricing(request: HttpRequest) -> JsonResponse:
    return JsonResponse(price_list())


def _type_errors(body: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if "prompt" in body and not isinstance(body["prompt"], str):
        errors["prompt"] = ["The prompt must be a string."]
    for name in ("mode", "aspect_ratio"):
        if body.get(name) is not None and not isinstance(body[name], str):
            errors[name] = [f"“{name}” must be a string."]
    duration = body.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        errors["duration"] = ["Duration must be a whole number of seconds (a JSON integer) between 4 and 15."]
    return errors


@api_view(methods=("GET", "POST"))
def generations(request: HttpRequest) -> JsonResponse:
    if request.method == "GET":
        return _list(request)
    return _create(request)


def _create(request: HttpRequest) -> JsonResponse:
    key = request.headers.get("Idempotency-Key", "").strip() or None
    problem = idempotency_key_error(key) if key is not None else None
    if problem:
        return api_error("invalid_request", problem, status=400, fields={"Idempotency-Key": [problem]})
    if key is not None:
        existing = request.user.generations.filter(idempotency_key=key).first()
        if existing is not None:
            return JsonResponse(generation_json(existing, request), status=200)
    body = request.json
    type_errors = _type_errors(body)
    if type_errors:
        return api_error(
            "invalid_request", next(iter(type_errors.values()))[0], status=400, fields=type_errors
        )
    data = {
        name: body[name]
        for name in ("prompt", "mode", "duration", "aspect_ratio")
        if body.get(name) is not None
    }
    form = GenerationForm(data)
    if not form.is_valid():
        return form_error(form)
    try:
        generation, created = generation_create(user=request.user, idempotency_key=key, **form.cleaned_data)
    except UpstreamUnconfigured as exc:
        return api_error("upstream_unconfigured", exc.message, status=503)
    except TooManyActive as exc:  # or SubmittingTooFast
        return api_error("rate_limited", str(exc), status=429)
    except InsufficientCredits as exc:
        return api_error(
            "insufficient_credits",
            f"This video costs {format_usd(exc.needed_cents)} ({exc.needed_cents} credits); "
            f"your balance is {exc.balance_cents} credits. Top up on the Billing page.",
            status=402,
        )
    return JsonResponse(generation_json(generation, request), status=201 if created else 200)


def _list(request: HttpRequest) -> JsonResponse:
    status = request.GET.get("status") or None
    if status is not None and status not in PUBLIC_STATUSES:
        return api_error(
            "invalid_request",
            f"Unknown status “{status}”; use one of {', '.join(PUBLIC_STATUSES)}.",
            status=400,
            fields={"status": [f"Must be one of {', '.join(PUBLIC_STATUSES)}."]},
        )
    raw_limit = request.GET.get("limit")
    limit = PAGE_DEFAULT
    if raw_limit is not None:
        if not re.fullmatch(r"[0-9]{1,3}", raw_limit) or not 1 <= int(raw_limit) <= PAGE_MAX:
            return api_error(
                "invalid_request",
                f"limit must be a whole number from 1 to {PAGE_MAX}.",
                status=400,
                fields={"limit": [f"A whole number from 1 to {PAGE_MAX}."]},
            )
        limit = int(raw_limit)
    queryset = generations_for_user(user=request.user, status=status)
    cursor = request.GET.get("cursor")
    if cursor:
        try:
            queryset = apply_cursor(queryset, cursor)
        except ValueError as exc:
            return api_error("invalid_request", str(exc), status=400, fields={"cursor": [str(exc)]})
    page = list(queryset[: limit + 1])
    next_url = None
    if len(page) > limit:
        page = page[:limit]
        params = {k: v for k, v in {"status": status, "limit": raw_limit}.items() if v}
        params["cursor"] = encode_cursor(page[-1])
        next_url = request.build_absolute_uri(f"{request.path}?{urlencode(params)}")
    return JsonResponse({"results": [generation_json(g, request) for g in page], "next": next_url})


@api_view(methods=("GET",))
def generation_detail(request: HttpRequest, generation_id: str) -> JsonResponse:
    try:
        generation = generation_for_user(user=request.user, generation_id=generation_id)
    except Http404:
        return api_error("not_found", "No generation with this id.", status=404)
    return JsonResponse(generation_json(generation, request))
