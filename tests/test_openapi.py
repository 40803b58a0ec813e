"""The JSON API's OpenAPI document, and a schemathesis run of the real app against it (issue 6).

The app runs in-process through its production WSGI handler (DEBUG off, so an unhandled exception
is the 500 page a user would get) on a committed database (`transaction=True`): every request sees
what the ones before it stored, as in production. Generations are only queued in Redis: nothing
runs upstream. Stripe keys are unset, so a valid checkout is the documented 503.

Every response is checked by schemathesis' default checks: not a server error, status code,
content type, headers and body as documented, schema-valid requests accepted, schema-violating
ones refused, auth enforced (none and a wrong token are tried), other methods answered 405 with
`Allow`.
"""

import base64
import os
import uuid
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import hypothesis
import pytest
import schemathesis
from django.test import Client
from django.urls import reverse
from django.utils import timezone

# The built-in check a documented idempotent replay has to skip (see `test_fuzz`).
from schemathesis.specs.openapi.checks import negative_data_rejection

from accounts.models import User
from accounts.services import api_token_create
from generations.models import Generation
from seedance_site.openapi import openapi_document
from seedance_site.wsgi import application
from tests.conftest import make_user

OPENAPI_URL = "/api/v1/openapi.json"

# CONTRACT §4, plus the document itself.
CONTRACT_OPERATIONS = {
    ("GET", "/api/v1/pricing"),
    ("GET", "/api/v1/account"),
    ("GET", "/api/v1/generations"),
    ("POST", "/api/v1/generations"),
    ("GET", "/api/v1/generations/{id}"),
    ("POST", "/api/v1/checkout"),
    ("GET", OPENAPI_URL),
}

# Examples per operation for the generated phases; the whole file runs in well under a minute.
# OPENAPI_FUZZ_EXAMPLES=500 digs deeper by hand.
MAX_EXAMPLES = int(os.environ.get("OPENAPI_FUZZ_EXAMPLES", "40"))


def app(environ, start_response):
    """The production WSGI handler, with the client address every WSGI server sets (werkzeug's test
    client, which schemathesis drives, leaves REMOTE_ADDR out; the per-address limit needs it)."""
    environ.setdefault("REMOTE_ADDR", "127.0.0.1")
    return application(environ, start_response)


def only_a_cursor_we_did_not_make(ctx, response, case) -> None:
    """`cursor` is opaque: any string fits its schema, but only one the server made is taken
    (CONTRACT §5b). So a schema-valid list request may be refused for its cursor, and nothing else."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 400:
        return
    if case.operation.label == "GET /api/v1/generations":
        fields = response.json()["error"].get("fields", {})
        assert (case.query or {}).get("cursor") and set(fields) == {"cursor"}, (
            f"a schema-valid request was refused: {response.text}"
        )


# Built from the same dict the view serves (the first test shows they are equal), so nothing is
# fetched at collection time. Not `schemathesis.pytest.from_fixture`: its lazy loader sets
# `Node._nodeid`, which pytest 9.2 no longer has.
schema = schemathesis.openapi.from_dict(
    openapi_document(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "database": "none",
                # The token is ours to send (below); `ignored_auth` still tries none and a wrong one.
                "with-security-parameters": False,
            },
            "checks": {
                # No 500 anywhere. A 5xx the document promises (503 with no ShortAPI or Stripe
                # keys, 502 when Stripe refuses) is not a crash; status_code_conformance still
                # fails any 5xx that an operation does not document.
                "not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "502", "503"]},
            },
            "operations": [
                {
                    # A made-up cursor is 400 by design; `only_a_cursor_we_did_not_make` holds
                    # such a 400 to naming the cursor alone.
                    "include-operation-id": "listGenerations",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": [
                                "2xx",
                                "3xx",
                                "400",
                                "401",
                                "403",
                                "404",
                                "409",
                                "429",
                                "5xx",
                            ]
                        }
                    },
                }
            ],
        }
    ),
)
schema.app = app  # requests go in-process through the WSGI handler


def _operations(loaded) -> set[tuple[str, str]]:
    return {(op.ok().method.upper(), op.ok().path) for op in loaded.get_all_operations()}


def test_document_is_valid_openapi_and_lists_every_contract_path(client) -> None:
    assert reverse("api_openapi") == OPENAPI_URL
    response = client.get(OPENAPI_URL)  # no token needed
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = openapi_document()
    assert response.json() == document

    assert document["openapi"].startswith("3.0.")
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == CONTRACT_OPERATIONS
    assert document["components"]["securitySchemes"]["bearerAuth"] == {"type": "http", "scheme": "bearer"}
    open_paths = {
        path for path, item in document["paths"].items() for op in item.values() if op.get("security") == []
    }
    assert open_paths == {"/api/v1/pricing", OPENAPI_URL}

    loaded = schemathesis.openapi.from_wsgi(OPENAPI_URL, app)
    loaded.validate()  # against the OpenAPI 3.0 meta-schema; raises if the document is not valid
    # Loaded from a URL, schemathesis leaves that URL's own operation out; `schema` has it.
    assert _operations(loaded) == CONTRACT_OPERATIONS - {("GET", OPENAPI_URL)}
    assert _operations(schema) == CONTRACT_OPERATIONS


@pytest.fixture
def fuzzer(transactional_db, settings) -> User:
    settings.SHORTAPI_KEY = "openapi-test-key"  # jobs are queued in Redis; no worker runs them
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    # The run must not be cut short by the limits (their 429 is still documented and checked).
    settings.API_USER_RATE_LIMIT = "1000000/m"
    settings.API_IP_RATE_LIMIT = "1000000/m"
    settings.SUBMIT_RATE_LIMIT = "1000000/m"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100_000
    return make_user("fuzzer", 100_000_000)


@pytest.fixture
def fuzzer_token(fuzzer: User) -> str:
    _, token = api_token_create(user=fuzzer, name="schemathesis")
    return token


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@schema.parametrize()
# One user and one database for all of an operation's examples, on purpose: later requests see
# what earlier ones stored (generations to list, idempotency keys already used).
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_fuzz(case, fuzzer_token: str, used_keys: dict[str, str]) -> None:
    auth = {"Authorization": f"Bearer {fuzzer_token}"}
    checks = {"additional_checks": [only_a_cursor_we_did_not_make]}
    key = str((case.headers or {}).get("Idempotency-Key", "")).strip()
    replay = case.operation.label == "POST /api/v1/generations" and key in used_keys
    prompt = (case.body or {}).get("prompt") if isinstance(case.body, dict) else None
    padded = isinstance(prompt, str) and prompt != prompt.strip()
    if replay or padded:
        # A used key returns the first generation with 200 "whatever the body" (CONTRACT §5b), so
        # a schema-violating body is not refused here: that is the rule, not a miss. And the
        # prompt's 1..2,000 characters are counted after stripping, which no JSON Schema can say.
        checks["excluded_checks"] = [negative_data_rejection]
    response = case.call_and_validate(headers=auth, **checks)
    if case.operation.label == "POST /api/v1/generations" and response.status_code in (200, 201):
        # 200 exactly for a used key, and then the same generation; 201 for a new one.
        assert response.status_code == (200 if replay else 201), response.text
        if replay:
            assert response.json()["id"] == used_keys[key]
        elif key:
            used_keys[key] = response.json()["id"]


@pytest.fixture
def used_keys() -> dict[str, str]:
    """Idempotency-Key -> the generation it made, across one operation's examples."""
    return {}


def _generation(user, status: str, **fields) -> Generation:
    now = timezone.now()
    return Generation.objects.create(
        user=user,
        prompt=f"a {status} fox",
        mode="fast",
        duration=6,
        aspect_ratio="9:16",
        cost_cents=120,
        cents_per_second=20,
        status=status,
        deadline_at=now + timedelta(hours=1),
        **fields,
    )


@pytest.mark.django_db(transaction=True)
def test_every_state_of_a_generation_fits_the_document(fuzzer: User, fuzzer_token: str) -> None:
    """Generations in every state, as the list (page by page, through `next`) and the detail show
    them, fit the Generation schema; another user's is the documented 404."""
    user = fuzzer
    now = timezone.now()
    S = Generation.Status
    mine = [
        _generation(user, S.QUEUED),
        _generation(user, S.SUBMITTING),
        _generation(user, S.RUNNING, submitted_at=now),
        _generation(user, S.FETCHING, submitted_at=now),
        _generation(user, S.SUCCEEDED, video="videos/2026/01/fox.mp4", finished_at=now),
        _generation(user, S.FAILED, error="Upstream refused the prompt.", finished_at=now),
    ]
    theirs = _generation(make_user("other"), S.SUCCEEDED, video="videos/2026/01/other.mp4", finished_at=now)
    auth = {"Authorization": f"Bearer {fuzzer_token}"}

    detail = schema["/api/v1/generations/{id}"]["GET"]
    for generation in mine:
        response = detail.Case(path_parameters={"id": str(generation.pk)}).call_and_validate(headers=auth)
        assert response.status_code == 200
        assert response.json()["status"] == Generation.PUBLIC_STATUS[generation.status]
    for generation in (theirs, uuid.uuid4()):
        missing = detail.Case(path_parameters={"id": str(getattr(generation, "pk", generation))})
        assert missing.call_and_validate(headers=auth).status_code == 404

    listing = schema["/api/v1/generations"]["GET"]
    seen: list[dict] = []
    query = {"limit": 4}
    for _ in range(5):
        response = listing.Case(query=query).call_and_validate(headers=auth)
        assert response.status_code == 200
        page = response.json()
        seen += page["results"]
        if page["next"] is None:
            break
        query = dict(parse_qsl(urlsplit(page["next"]).query))
    assert [g["id"] for g in seen] == [str(g.pk) for g in reversed(mine)]
    failed = next(g for g in seen if g["status"] == "failed")
    succeeded = next(g for g in seen if g["status"] == "succeeded")
    assert failed["error"] and failed["finished_at"] and failed["video_url"] is None
    assert succeeded["video_url"].startswith("http") and succeeded["error"] is None


# Requests the fuzzer does not make (its strings hold no lone surrogates, its digits are ASCII, its
# JSON is shallow), found by reading the code. Each was once a 500; each is a clear 400 now.


def _cursor(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        pytest.param(
            "get",
            "/api/v1/generations",
            {"data": {"limit": "²"}},
            id="limit-superscript-digit",
        ),
        pytest.param(
            "post",
            "/api/v1/generations",
            {"data": '{"prompt": "a\\ud800"}', "content_type": "application/json"},
            id="prompt-lone-surrogate",
        ),
        pytest.param(
            "post",
            "/api/v1/checkout",
            {"data": "[" * 100_000, "content_type": "application/json"},
            id="deeply-nested-json",
        ),
        pytest.param(
            "get",
            "/api/v1/generations",
            {"data": {"cursor": _cursor(f"0001-01-01T00:00:00+14:00|{uuid.UUID(int=1)}")}},
            id="cursor-date-out-of-range",
        ),
        pytest.param(
            "post",
            "/api/v1/generations",
            {
                "data": '{"prompt": "a"}',
                "content_type": "application/json",
                "headers": {"Idempotency-Key": "a\x00b"},
            },
            id="idempotency-key-nul",
        ),
    ],
)
def test_requests_the_fuzzer_does_not_make(
    fuzzer_token: str, settings, method: str, path: str, kwargs
) -> None:
    client = Client(raise_request_exception=False, headers={"Authorization": f"Bearer {fuzzer_token}"})
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 400, response.content[:200]
    assert response.json()["error"]["code"] == "invalid_request"
