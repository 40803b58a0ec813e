"""The tests' Stripe: the portal's own stand-in (`accounts.billing.stripe_standin`), served on a
free port for the session, and the glue that points the portal at it.

The `stripe` library is pointed at it through `STRIPE_API_BASE`, so the requests it sends
(form-encoded bodies, `expand[]` in the query, `Stripe-Version`, `Idempotency-Key`) are the
ones it would send to Stripe. Tests move sessions along (`mark_paid`, `mark_expired`, ...),
make it misbehave (`fail_next`, `delay`), and build the events Stripe would then send
(`event`), which they sign with `sign` exactly as Stripe does: refunds (`refund`) and disputes
(`dispute`, `close_dispute`) included. The hosted page and its signed webhooks are the
stand-in's own (`tests/test_stripe_standin.py`).
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from accounts.billing.stripe_standin import StripeStandin, decode_form, sign

__all__ = ["API_KEY", "WEBHOOK_SECRET", "FakeStripe", "decode_form", "deliver", "sign"]

API_KEY = "sk_test_fake_key"
# The tests' name for it, from when the two were apart.
FakeStripe = StripeStandin

# --- pytest glue: the server, settings that point the portal at it, signed deliveries ---------

WEBHOOK_SECRET = "whsec_test_fake_secret"


# Imported by test modules under these names; the fixtures are called `stripe_server` and
# `fake_stripe`, so that a test's parameter does not shadow the import.
@pytest.fixture(scope="session", name="stripe_server")
def stripe_server_fixture() -> Iterator[FakeStripe]:
    server = StripeStandin(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET).start()
    yield server
    server.stop()


@pytest.fixture(name="fake_stripe")
def fake_stripe_fixture(stripe_server: FakeStripe, settings) -> FakeStripe:
    stripe_server.reset()
    stripe_server.webhook_url = ""  # events are delivered by hand unless a test asks otherwise
    stripe_server.webhook_secret = WEBHOOK_SECRET
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = stripe_server.url
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    settings.STRIPE_CONNECT_TIMEOUT = 2.0
    settings.STRIPE_READ_TIMEOUT = 5.0
    settings.SITE_URL = "http://testserver"
    return stripe_server


def deliver(
    event: dict[str, Any],
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    signature: str | None = None,
    client: Client | None = None,
):
    """POST `event` to the webhook as Stripe would: the raw JSON body, signed."""
    body = json.dumps(event).encode()
    header = signature if signature is not None else sign(body, secret, timestamp)
    headers = {"Stripe-Signature": header} if header else {}
    return (client or Client()).post(
        "/webhooks/stripe/", data=body, content_type="application/json", headers=headers
    )
