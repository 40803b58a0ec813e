"""The one module that talks to Stripe (CONTRACT §2, §5b).

Every call goes through a `stripe.StripeClient` built here: the API version is pinned (so an
upgrade of the library cannot silently change the shape of what we read), `STRIPE_API_BASE`
is honoured (tests and staging point it elsewhere), and every request has a connect and a
read timeout. Failures are sorted, because each asks for different handling:
- `StripeRetryLater`: Stripe could not be reached or was busy; the same call may work later.
- `StripeGiveUp`: Stripe refused the request (bad key, bad parameters); retrying will not help.
Session creation carries an idempotency key, so the library's own retries after a lost answer
can never make two sessions for one top-up: there is no "unknown outcome" left for callers.

The rest of the code sees plain dicts, never `StripeObject`s.
"""

import functools
import json
import logging
from typing import Any

import stripe
from django.conf import settings

logger = logging.getLogger(__name__)

# The version the installed library (stripe==16.1.0) was generated for. Webhook endpoints in
# the Stripe dashboard should use the same version, so events look like what we read here.
API_VERSION = "2026-10-28.endive"
WEBHOOK_TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE  # 300 s, Stripe's own default


class StripeNotConfigured(Exception):
    pass


class StripeCallFailed(Exception):
    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class StripeRetryLater(StripeCallFailed):
    pass


class StripeGiveUp(StripeCallFailed):
    pass


class WebhookSignatureInvalid(Exception):
    pass


def missing_settings() -> list[str]:
    """The names of the settings that top-ups need and lack (for the billing page and the API)."""
    return [
        name for name in ("STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET") if not getattr(settings, name, "")
    ]


def configured() -> bool:
    return not missing_settings()


def test_mode() -> bool:
    """Stripe's test mode (a test key; the stand-in takes only those): no real money moves."""
    return settings.STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_"))


@functools.lru_cache(maxsize=4)
def _client(
    api_key: str, api_base: str, connect_timeout: float, read_timeout: float, retries: int
) -> stripe.StripeClient:
    # Cached per configuration: the requests-based HTTP client keeps a connection pool per
    # thread, which a client built on every call would throw away.
    base_addresses = {"api": api_base} if api_base else None
    return stripe.StripeClient(
        api_key,
        stripe_version=API_VERSION,
        base_addresses=base_addresses,
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=(connect_timeout, read_timeout)),
    )


def client() -> stripe.StripeClient:
    if not settings.STRIPE_SECRET_KEY:
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set.")
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE.rstrip("/"),
        settings.STRIPE_CONNECT_TIMEOUT,
        settings.STRIPE_READ_TIMEOUT,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def _sorted_error(exc: stripe.StripeError, action: str) -> StripeCallFailed:
    status = getattr(exc, "http_status", None)
    # Stripe's own message can name parameters, never card data; it is safe to log and show
    # operators. Users get a sentence of ours instead.
    detail = getattr(exc, "user_message", None) or str(exc) or exc.__class__.__name__
    message = f"Stripe {action} failed: {detail}"
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        isinstance(exc, stripe.APIError) and (status is None or status >= 500)
    ):
        return StripeRetryLater(message, http_status=status)
    if status is not None and (status >= 500 or status == 409):
        return StripeRetryLater(message, http_status=status)
    return StripeGiveUp(message, http_status=status)


def checkout_session_create(
    *,
    topup_id: int,
    amount_cents: int,
    success_url: str,
    cancel_url: str,
    customer_email: str = "",
) -> dict[str, Any]:
    """A Checkout Session in `payment` mode that buys `amount_cents` credits (1 credit = 1 cent)."""
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": "usd",
                    "unit_amount": amount_cents,
                    "product_data": {"name": f"{amount_cents:,} Seedance credits"},
                },
                "quantity": 1,
            }
        ],
        "client_reference_id": str(topup_id),
        "metadata": {"topup_id": str(topup_id)},
        # Also on the PaymentIntent, so charge events can name the top-up on their own.
        "payment_intent_data": {"metadata": {"topup_id": str(topup_id)}},
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if customer_email:
        params["customer_email"] = customer_email
    try:
        session = client().v1.checkout.sessions.create(
            params, options={"idempotency_key": f"seedance-topup-{topup_id}"}
        )
    except stripe.StripeError as exc:
        error = _sorted_error(exc, "checkout session create")
        logger.warning("topup %s: %s", topup_id, error)
        raise error from exc
    return session.to_dict()


def checkout_session_retrieve(session_id: str) -> dict[str, Any]:
    """The session, with its PaymentIntent's latest charge expanded (for the receipt link)."""
    try:
        session = client().v1.checkout.sessions.retrieve(
            session_id, {"expand": ["payment_intent.latest_charge"]}
        )
    except stripe.StripeError as exc:
        error = _sorted_error(exc, "checkout session retrieve")
        logger.warning("session %s: %s", session_id, error)
        raise error from exc
    return session.to_dict()


def webhook_event_verify(*, payload: bytes, signature: str | None) -> dict[str, Any]:
    """The event in `payload`, once its `Stripe-Signature` proves Stripe sent it recently.

    The signature covers the raw bytes, so this must see the body exactly as it arrived.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise StripeNotConfigured("STRIPE_WEBHOOK_SECRET is not set.")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, WEBHOOK_TOLERANCE_SECONDS)
        event = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as exc:
        raise WebhookSignatureInvalid(str(exc).split(".")[0]) from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event.get("type"):
        raise WebhookSignatureInvalid("The body is not a Stripe event.")
    return event
