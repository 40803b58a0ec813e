"""Plumbing shared by every JSON API view: the contract's error shape, Bearer auth, JSON bodies."""

import functools
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import is_ratelimited

from accounts.services import api_token_authenticate

View = Callable[..., HttpResponse]


def api_error(
    code: str, message: str, *, status: int, fields: dict[str, list[str]] | None = None
) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    response = JsonResponse({"error": error}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def form_error(form: Any) -> JsonResponse:
    fields = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
    first = next(iter(fields.values()))[0] if fields else "The request is not valid."
    return api_error("invalid_request", first, status=400, fields=fields)


def api_over_limit(request: HttpRequest) -> bool:
    """Per address always, and per user once we know who it is: a shared office address and a
    single runaway script are both kept in check."""
    by_ip = is_ratelimited(request, group="api-ip", key="ip", rate=settings.API_IP_RATE_LIMIT, increment=True)
    by_user = request.user.is_authenticated and is_ratelimited(
        request, group="api-user", key="user", rate=settings.API_USER_RATE_LIMIT, increment=True
    )
    return bool(by_ip or by_user)


def bearer_user(request: HttpRequest):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return api_token_authenticate(token.strip())


def api_view(*, methods: tuple[str, ...], auth: bool = True) -> Callable[[View], View]:
    """CSRF-exempt (Bearer tokens are not ambient credentials), method-checked, authenticated."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = api_error("method_not_allowed", f"Use {' or '.join(methods)} here.", status=405)
                response["Allow"] = ", ".join(methods)
                return response
            if auth:
                user = bearer_user(request)
                if user is None:
                    return api_error(
                        "unauthorized",
                        "Send a valid API token as 'Authorization: Bearer <token>'.",
                        status=401,
                    )
                request.user = user
            if api_over_limit(request):
                return api_error(
                    "rate_limited", "Too many requests. Slow down and try again in a minute.", status=429
                )
            if request.method == "POST":
                try:
                    raw = request.body
                except RequestDataTooBig:
                    return api_error("request_too_large", "The request body is too large.", status=413)
                try:
                    body = json.loads(raw or b"{}")
                    # A lone surrogate (e.g. "\ud800") is valid JSON but not text any database
                    # can store: refuse it here rather than fail at the INSERT.
                    json.dumps(body, ensure_ascii=False).encode("utf-8")
                except (ValueError, UnicodeError, RecursionError):
                    return api_error("invalid_request", "The body must be valid JSON text.", status=400)
                if not isinstance(body, dict):
                    return api_error("invalid_request", "The body must be a JSON object.", status=400)
                request.json = body
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
