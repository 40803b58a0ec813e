"""The OpenAPI 3.0 document of the JSON API (CONTRACT §4, §5b), served at `GET /api/v1/openapi.json`.

It describes the API as the code answers it: every path, parameter, body constraint, status code and
error code. tests/test_openapi.py runs schemathesis over it against the real app, so the two cannot
drift apart unnoticed. The limits come from the modules that enforce them.
"""

import functools
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path

from generations.api import PAGE_DEFAULT, PAGE_MAX
from generations.forms import IDEMPOTENCY_KEY_MAX, PROMPT_MAX
from generations.pricing import (
    ASPECT_RATIOS,
    DEFAULT_ASPECT_RATIO,
    DEFAULT_DURATION,
    DEFAULT_MODE,
    MAX_DURATION,
    MIN_DURATION,
    MODES,
)
from generations.selectors import PUBLIC_STATUSES
from seedance_site.api import api_view

Schema = dict[str, Any]

JSON = "application/json"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {JSON: {"schema": schema}}


def _error(description: str, *codes: str, headers: Schema | None = None) -> Schema:
    """A response carrying the contract's error object, narrowed to the codes it can hold here."""
    response: Schema = {
        "description": description,
        "content": _json(
            {
                "allOf": [
                    _ref("Error"),
                    {
                        "type": "object",
                        "properties": {"error": {"properties": {"code": {"enum": list(codes)}}}},
                    },
                ]
            }
        ),
    }
    if headers:
        response["headers"] = headers
    return response


def _responses() -> dict[str, Schema]:
    return {
        "Unauthorized": _error(
            "No valid API token: the header is missing, not `Bearer <token>`, or names no live token.",
            "unauthorized",
            headers={
                "WWW-Authenticate": {
                    "description": 'Always `Bearer realm="api"`.',
                    "required": True,
                    "schema": {"type": "string", "enum": ['Bearer realm="api"']},
                }
            },
        ),
        "RateLimited": _error(
            "Too many requests from this address (API_IP_RATE_LIMIT) or with this token's user "
            "(API_USER_RATE_LIMIT).",
            "rate_limited",
        ),
        "InvalidBody": _error(
            "The body is not a JSON object, or a field is missing or out of bounds; `fields` names them.",
            "invalid_request",
        ),
    }


def _schemas() -> dict[str, Schema]:
    statuses = list(PUBLIC_STATUSES)
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "additionalProperties": False,
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "additionalProperties": False,
                    "properties": {
                        "code": {"type": "string", "pattern": "^[a-z][a-z_]*$"},
                        "message": {"type": "string", "minLength": 1},
                        "fields": {
                            "description": "Only for validation errors: each field's messages.",
                            "type": "object",
                            "minProperties": 1,
                            "additionalProperties": {
                                "type": "array",
                                "minItems": 1,
                                "items": {"type": "string"},
                            },
                        },
                    },
                }
            },
        },
        "Generation": {
            "type": "object",
            "required": [
                "id",
                "status",
                "prompt",
                "mode",
                "duration",
                "aspect_ratio",
                "cost_cents",
                "video_url",
                "error",
                "created_at",
                "finished_at",
            ],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "format": "uuid"},
                "status": {
                    "type": "string",
                    "enum": statuses,
                    "description": "queued: credits held, not yet accepted upstream; running: upstream has "
                    "the job; succeeded: the video is stored here and the credits are charged; failed: the "
                    "credits are back in the balance and `error` says why.",
                },
                "prompt": {"type": "string", "minLength": 1, "maxLength": PROMPT_MAX},
                "mode": {"type": "string", "enum": list(MODES)},
                "duration": {"type": "integer", "minimum": MIN_DURATION, "maximum": MAX_DURATION},
                "aspect_ratio": {"type": "string", "enum": list(ASPECT_RATIOS)},
                "cost_cents": {"type": "integer", "minimum": 0},
                "video_url": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The stored MP4 (a signed link a plain GET fetches for at least an "
                    "hour), or null until the generation has succeeded.",
                },
                "error": {
                    "type": "string",
                    "nullable": True,
                    "description": "Why it failed; null unless `status` is failed.",
                },
                "created_at": {"type": "string", "format": "date-time"},
                "finished_at": {"type": "string", "format": "date-time", "nullable": True},
            },
        },
        "GenerationList": {
            "type": "object",
            "required": ["results", "next"],
            "additionalProperties": False,
            "properties": {
                "results": {
                    "type": "array",
                    "maxItems": PAGE_MAX,
                    "items": _ref("Generation"),
                    "description": "Newest first.",
                },
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The absolute URL of the next page, or null on the last one.",
                },
            },
        },
        "NewGeneration": {
            "type": "object",
            "required": ["prompt"],
            "description": "Unknown fields are ignored. An optional field sent as null is the same as one "
            "left out: it takes its default (OpenAPI 3.0.3: a nullable enum lists null itself).",
            "properties": {
                "prompt": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": PROMPT_MAX,
                    # Not all whitespace, and no NUL (Django's form field refuses it).
                    "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$",
                    "description": "Stripped of surrounding whitespace first; what is left must be "
                    f"1..{PROMPT_MAX} characters, without NUL characters.",
                },
                "mode": {"type": "string", "enum": [*MODES, None], "nullable": True, "default": DEFAULT_MODE},
                "duration": {
                    "type": "integer",
                    "minimum": MIN_DURATION,
                    "maximum": MAX_DURATION,
                    "nullable": True,
                    "default": DEFAULT_DURATION,
                    "description": "Seconds, a JSON integer (a string, float or boolean is refused).",
                },
                "aspect_ratio": {
                    "type": "string",
                    "enum": [*ASPECT_RATIOS, None],
                    "nullable": True,
                    "default": DEFAULT_ASPECT_RATIO,
                },
            },
        },
        "Pricing": {
            "type": "object",
            "required": [
                "currency",
                "cents_per_second",
                "duration",
                "aspect_ratios",
                "default_aspect_ratio",
                "default_mode",
            ],
            "additionalProperties": False,
            "properties": {
                "currency": {"type": "string", "enum": ["usd"]},
                "cents_per_second": {
                    "type": "object",
                    "required": list(MODES),
                    "additionalProperties": False,
                    "properties": {mode: {"type": "integer", "minimum": 0} for mode in MODES},
                },
                "duration": {
                    "type": "object",
                    "required": ["min", "max", "default"],
                    "additionalProperties": False,
                    "properties": {
                        "min": {"type": "integer", "enum": [MIN_DURATION]},
                        "max": {"type": "integer", "enum": [MAX_DURATION]},
                        "default": {"type": "integer", "enum": [DEFAULT_DURATION]},
                    },
                },
                "aspect_ratios": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(ASPECT_RATIOS)},
                    "minItems": len(ASPECT_RATIOS),
                    "maxItems": len(ASPECT_RATIOS),
                },
                "default_aspect_ratio": {"type": "string", "enum": [DEFAULT_ASPECT_RATIO]},
                "default_mode": {"type": "string", "enum": [DEFAULT_MODE]},
            },
        },
        "Account": {
            "type": "object",
            "required": ["username", "balance_cents"],
            "additionalProperties": False,
            "properties": {
                "username": {"type": "string", "minLength": 1},
                "balance_cents": {"type": "integer", "description": "Credits; one credit is one US cent."},
            },
        },
        "CheckoutRequest": {
            "type": "object",
            "required": ["amount_cents"],
            "description": "Unknown fields are ignored.",
            "properties": {
                "amount_cents": {
                    "type": "integer",
                    "minimum": settings.TOPUP_MIN_CENTS,
                    "maximum": settings.TOPUP_MAX_CENTS,
                    "description": "How many credits to buy (1 credit = 1 cent), a JSON integer; "
                    "bounds inclusive.",
                }
            },
        },
        "Checkout": {
            "type": "object",
            "required": ["checkout_url", "session_id"],
            "additionalProperties": False,
            "properties": {
                "checkout_url": {
                    "type": "string",
                    "format": "uri",
                    "description": "Stripe Checkout's page; the credits arrive when Stripe reports it "
                    "paid, exactly once.",
                },
                "session_id": {"type": "string", "pattern": "^cs_"},
            },
        },
    }


def _paths() -> dict[str, Schema]:
    unauthorized = {"$ref": "#/components/responses/Unauthorized"}
    rate_limited = {"$ref": "#/components/responses/RateLimited"}
    invalid_body = {"$ref": "#/components/responses/InvalidBody"}
    generation = {"content": _json(_ref("Generation"))}
    return {
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "openapi",
                "summary": "This document.",
                "security": [],
                "responses": {
                    "200": {"description": "The OpenAPI document.", "content": _json({"type": "object"})},
                    "429": rate_limited,
                },
            }
        },
        "/api/v1/pricing": {
            "get": {
                "operationId": "pricing",
                "summary": "The price list and the choices a generation takes.",
                "security": [],
                "responses": {
                    "200": {"description": "The price list.", "content": _json(_ref("Pricing"))},
                    "429": rate_limited,
                },
            }
        },
        "/api/v1/account": {
            "get": {
                "operationId": "account",
                "summary": "Who the token belongs to, and their balance.",
                "responses": {
                    "200": {"description": "The token's user.", "content": _json(_ref("Account"))},
                    "401": unauthorized,
                    "429": rate_limited,
                },
            }
        },
        "/api/v1/generations": {
            "get": {
                "operationId": "listGenerations",
                "summary": "The user's generations, newest first, a page at a time.",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "description": "Only generations in this state; an unknown one is 400, an empty "
                        "one is the same as none.",
                        "schema": {"type": "string", "enum": [*PUBLIC_STATUSES, ""]},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "Opaque; take it from a `next` URL as given.",
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "description": f"Page size, {PAGE_DEFAULT} unless given.",
                        "schema": {"type": "integer", "minimum": 1, "maximum": PAGE_MAX},
                    },
                ],
                "responses": {
                    "200": {"description": "A page.", "content": _json(_ref("GenerationList"))},
                    "400": _error(
                        "An unknown status, a limit out of range, or a cursor we did not make.",
                        "invalid_request",
                    ),
                    "401": unauthorized,
                    "429": rate_limited,
                },
            },
            "post": {
                "operationId": "createGeneration",
                "summary": "Hold the credits and queue a text-to-video generation.",
                "description": "Checks in this order, and the first that fails answers: 401, 400, 503, 429, "
                "402. Nothing is held or stored for a refused request.",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "description": "Unique per user, for good: a repeat returns the first generation "
                        "with 200, whatever the body, and charges nothing more. A request refused with 4xx "
                        "does not use up its key.",
                        "schema": {
                            "type": "string",
                            "maxLength": IDEMPOTENCY_KEY_MAX,
                            "pattern": "^[^\\x00-\\x1f\\x7f]*$",
                        },
                    }
                ],
                "requestBody": {"required": True, "content": _json(_ref("NewGeneration"))},
                "responses": {
                    "200": {"description": "A repeated Idempotency-Key: the first generation.", **generation},
                    "201": {
                        "description": "Created: the credits are held and the job is queued.",
                        **generation,
                    },
                    "400": invalid_body,
                    "401": unauthorized,
                    "402": _error(
                        "The balance does not cover the price; nothing was held or queued.",
                        "insufficient_credits",
                    ),
                    "429": _error(
                        "Too many requests, too many videos in progress, or videos started too fast.",
                        "rate_limited",
                    ),
                    "503": _error("No ShortAPI key is set on this server.", "upstream_unconfigured"),
                },
            },
        },
        "/api/v1/generations/{id}": {
            "get": {
                "operationId": "getGeneration",
                "summary": "One of the user's generations.",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    }
                ],
                "responses": {
                    "200": {"description": "The generation.", **generation},
                    "401": unauthorized,
                    "404": _error(
                        "No such generation, or another user's (the two look the same).", "not_found"
                    ),
                    "429": rate_limited,
                },
            }
        },
        "/api/v1/checkout": {
            "post": {
                "operationId": "checkout",
                "summary": "Start a Stripe Checkout that buys exactly `amount_cents` credits.",
                "requestBody": {"required": True, "content": _json(_ref("CheckoutRequest"))},
                "responses": {
                    "201": {"description": "Pay on `checkout_url`.", "content": _json(_ref("Checkout"))},
                    "400": invalid_body,
                    "401": unauthorized,
                    "429": rate_limited,
                    "502": _error(
                        "Stripe refused to start the checkout; nothing was charged.", "payments_error"
                    ),
                    "503": _error(
                        "Payments are not set up here (no Stripe keys), or Stripe could not be reached; "
                        "nothing was charged.",
                        "payments_unconfigured",
                        "payments_unavailable",
                    ),
                },
            }
        },
    }


@functools.cache
def openapi_document() -> Schema:
    """Built once, on first use."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Seedance Studio API",
            "version": "1",
            "description": "Text-to-video generations paid with prepaid credits (1 credit = 1 US cent). "
            "Send `Authorization: Bearer <token>` (tokens come from the account page). Bodies are JSON. "
            'Every error is `{"error": {"code", "message", "fields"?}}`; `fields` only for validation '
            "errors. A method a path does not take is 405 `method_not_allowed` with an `Allow` header.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
            "responses": _responses(),
        },
    }


@functools.cache
def _document_bytes() -> bytes:
    return json.dumps(openapi_document()).encode()


@api_view(methods=("GET",), auth=False)
def openapi_json(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_document_bytes(), content_type=JSON)


# Included from seedance_site/urls.py's `api_v1` list, so the route lives beside its view.
urlpatterns = [path("openapi.json", openapi_json, name="api_openapi")]
