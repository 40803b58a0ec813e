"""The JSON API's plumbing on django-ninja (CONTRACT §4, §5b): the contract's error shape for every
error, ours and ninja's alike; Bearer tokens; the rate limits; JSON bodies; the document and docs page.

The apps' routers are mounted in seedance_site/urls.py. Errors never take ninja's default shapes
({"detail": ...}, 422, a bare-text 405): a script sees one shape whatever went wrong.
"""

import functools
import json
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import pydantic
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.views.decorators.http import require_GET
from django_ratelimit.core import is_ratelimited
from ninja import NinjaAPI, Schema, Swagger
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle
from pydantic import ConfigDict, Field, WithJsonSchema, create_model

from accounts.models import User
from accounts.services import api_token_authenticate

Fields = dict[str, list[str]]
Body = TypeVar("Body", bound=pydantic.BaseModel)

# What each error code means; the document says it beside every response that may carry the code.
ERROR_CODES = {
    "invalid_request": "The body, a parameter or a header is not valid; `fields` names each and says why.",
    "unauthorized": "No valid API token: send `Authorization: Bearer <token>` (tokens: the account page).",
    "not_found": "No such object, or another user's: the two look the same.",
    "request_too_large": "The body is larger than the server takes (1 MiB).",
    "rate_limited": "Too many requests from this address or with this token's user; wait a minute.",
}


def error_code(code: str, meaning: str) -> str:
    """An app's own error code, with what it means for the document."""
    ERROR_CODES[code] = meaning
    return code


class ApiError(Exception):
    """Raised anywhere under an operation to answer in the contract's error shape."""

    def __init__(self, status: int, code: str, message: str, fields: Fields | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


def api_error(code: str, message: str, *, status: int, fields: Fields | None = None) -> JsonResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = fields
    response = JsonResponse({"error": error}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def form_error(form: Any) -> ApiError:
    fields = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
    return ApiError(400, "invalid_request", next(iter(fields.values()))[0], fields)


# --- Schemas: answers, errors, bodies ---------------------------------------------------------


class Answer(Schema):
    """An answer: exactly these keys (ninja dumps only the schema's fields), as the document says."""

    model_config = ConfigDict(json_schema_extra={"additionalProperties": False})


@functools.cache
def _error_schema(*codes: str) -> type[Schema]:
    """`{"error": {...}}` with the codes one response may carry, and what they mean."""
    name = "Or".join("".join(p.title() for p in c.removesuffix("_error").split("_")) for c in codes)
    detail = {
        "type": "object",
        "required": ["code", "message"],
        "additionalProperties": False,
        "properties": {
            "code": {"type": "string", "enum": list(codes)},
            "message": {"type": "string", "minLength": 1},
            "fields": {
                "description": "Validation errors only: each field's messages.",
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            },
        },
    }
    meaning = " ".join(f"`{code}`: {ERROR_CODES[code]}" for code in codes)
    error = Annotated[dict[str, Any], WithJsonSchema(detail)]
    return create_model(f"{name}Error", __base__=Answer, __doc__=meaning, error=(error, ...))


def errors(*own: int | tuple[int, str], auth: bool = True, body: bool = False) -> dict[int, Any]:
    """An operation's error responses: 429 for all, 401 with auth, 400 and 413 with a body, and its
    own (`400` alone is `invalid_request`); codes sharing a status are listed together."""
    codes: dict[int, list[str]] = {429: ["rate_limited"], **({401: ["unauthorized"]} if auth else {})}
    if body:
        codes.update({400: ["invalid_request"], 413: ["request_too_large"]})
    for entry in own:
        status, code = entry if isinstance(entry, tuple) else (entry, "invalid_request")
        if code not in codes.setdefault(status, []):
            codes[status].append(code)
    return {status: _error_schema(*names) for status, names in sorted(codes.items())}


def documented(default: Any = None, *, nullable: bool = True, **schema: Any) -> Any:
    """A body field pydantic checks the JSON type of only (it is `<strict type> | None`): the values
    are the forms' to check, in their words. The document shows `schema`, the limits the forms
    enforce, and their default (pydantic's None means "left out")."""

    def extra(field: dict[str, Any]) -> None:
        kinds = [branch["type"] for branch in field.pop("anyOf")]
        field.pop("default")
        field.update(type=kinds if nullable else kinds[0], **schema)
        if default is not None:
            field["default"] = default

    return Field(None, json_schema_extra=extra)


def json_object(request: HttpRequest) -> dict[str, Any]:
    """The body, a JSON object (an empty body is `{}`), for a schema to check with `typed`.

    Read inside the operation, not as a ninja Body parameter, which ninja validates before the
    operation runs: the contract answers a used Idempotency-Key whatever the body holds.
    """
    try:
        body = json.loads(request.body or b"{}")
        # A lone surrogate ("\ud800") is valid JSON but not text any database can store.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeError, RecursionError):
        raise ApiError(400, "invalid_request", "The body must be valid JSON text.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "The body must be a JSON object.")
    return body


def typed(schema: type[Body], body: dict[str, Any]) -> Body:
    try:
        return schema.model_validate(body)
    except pydantic.ValidationError as exc:
        raise _invalid(exc.errors(include_url=False)) from None


def request_body(schema: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The document's requestBody for a body read by `json_object`."""
    content = {"application/json": {"schema": schema.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}}


_TYPE_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be a whole number (a JSON integer)",
}


def _invalid(errors: Any) -> ApiError:
    """Pydantic's errors, said for people, with `fields` named as the request names them."""
    fields: Fields = {}
    for error in errors:
        # ninja puts where a parameter came from first ("query", "header"…); the name is the rest.
        # `fields` names the field as the request does ("image_ids"); the message says which item.
        path = [str(p) for p in error["loc"] if p not in ("query", "path", "header")] or ["body"]
        field, name = path[0], ".".join(path)
        if error["type"] == "invalid":  # our own PydanticCustomError: a whole sentence already
            message = error["msg"]
        else:
            what = _TYPE_MESSAGES.get(error["type"]) or error["msg"].replace("Input should be", "must be")
            message = f"“{name}” {what}."
        fields.setdefault(field, []).append(message)
    return ApiError(400, "invalid_request", next(iter(fields.values()))[0], fields)


# --- Who, and how often -----------------------------------------------------------------------


class BearerToken(HttpBearer):
    """The only way in: a session cookie never authenticates the API, so a cross-site request has
    nothing to ride on and no CSRF check is needed."""

    def __call__(self, request: HttpRequest) -> User | None:
        # Not ninja's own parsing, which logs a header it cannot read (a token, sent without
        # "Bearer ") when DEBUG is on: secrets never reach the log.
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return self.authenticate(request, token) if scheme.lower() == "bearer" else None

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_token_authenticate(token.strip())
        if user is not None:
            request.user = user  # never whoever a session cookie names
        return user


class RateLimit(BaseThrottle):
    """Per address always, and per user once we know who it is: a shared office address and a
    single runaway script are both kept in check. django-ratelimit's atomic counters in Redis."""

    def allow_request(self, request: HttpRequest) -> bool:
        ip = settings.API_IP_RATE_LIMIT
        over = is_ratelimited(request, group="api-ip", key="ip", rate=ip, increment=True)
        if (user := getattr(request, "auth", None)) is not None:
            rate = settings.API_USER_RATE_LIMIT
            key = f"user:{user.pk}"
            over |= is_ratelimited(request, group="api-user", key=lambda *_: key, rate=rate, increment=True)
        return not over


# --- The API ----------------------------------------------------------------------------------


class Api(NinjaAPI):
    def get_content_type(self) -> str:
        return "application/json"  # as before, and as RFC 8259 has it: JSON takes no charset

    @functools.cached_property
    def _document(self) -> Any:
        document = super().get_openapi_schema()
        # An error response says what its codes mean here, not only the HTTP reason phrase.
        schemas = document["components"]["schemas"]
        for operation in (op for item in document["paths"].values() for op in item.values()):
            for response in operation["responses"].values():
                ref = (
                    response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
                )
                if ref.endswith("Error"):
                    response["description"] = schemas[ref.rsplit("/", 1)[-1]]["description"]
        return document

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        return self._document  # built once: it depends on the code only


api = Api(
    title="Seedance Studio API",
    version="1",
    description=(
        "Text-to-video generations paid with prepaid credits (1 credit = 1 US cent). Send "
        "`Authorization: Bearer <token>`; tokens come from your account page. Bodies are JSON. Every "
        'error is `{"error": {"code", "message", "fields"?}}`, `fields` only for validation errors. '
        "A method a path does not take is 405 `method_not_allowed` with an `Allow` header."
    ),
    urls_namespace="api",
    auth=BearerToken(),
    throttle=RateLimit(),
    docs=Swagger(settings={"validatorUrl": None, "tryItOutEnabled": True}),
    docs_decorator=require_GET,
)


def _answer(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return api_error(exc.code, exc.message, status=exc.status, fields=exc.fields)


api.add_exception_handler(ApiError, _answer)
# Parameters ninja checked. A pydantic error from an answer is our bug, a 500: not handled here.
api.add_exception_handler(ValidationError, lambda r, e: _answer(r, _invalid(e.errors)))
api.add_exception_handler(Http404, lambda r, e: api_error("not_found", str(e) or "Not found.", status=404))
api.add_exception_handler(HttpError, lambda r, e: api_error("error", str(e), status=e.status_code))
for _exc, (_status, _code, _message) in {
    AuthenticationError: (401, "unauthorized", "Send a valid API token as 'Authorization: Bearer <token>'."),
    Throttled: (429, "rate_limited", "Too many requests. Slow down and try again in a minute."),
    RequestDataTooBig: (413, "request_too_large", "The request body is too large."),
}.items():
    api.add_exception_handler(_exc, lambda r, e, s=_status, c=_code, m=_message: api_error(c, m, status=s))


def _our_405(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """ninja (and require_GET) answer a method a path lacks with a bare-text 405."""

    @functools.wraps(view)  # keeps ninja's csrf_exempt: the API takes no cookies
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if not isinstance(response, HttpResponseNotAllowed):
            return response
        methods = sorted(m.strip() for m in response["Allow"].split(","))  # GET before POST
        error = api_error("method_not_allowed", f"Use {' or '.join(methods)} here.", status=405)
        error["Allow"] = ", ".join(methods)
        return error

    return wrapper


def urls() -> tuple[list[Any], str, str]:
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        pattern.callback = _our_405(pattern.callback)
    return patterns, app_name, namespace
