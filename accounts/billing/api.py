"""`POST /api/v1/checkout` (CONTRACT §4): buy credits through a Stripe Checkout page."""

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict, StrictInt

from accounts.billing import stripe_client
from accounts.billing.forms import TopUpForm
from accounts.billing.models import TopUp
from accounts.billing.topups import PaymentsUnconfigured, topup_create
from accounts.billing.views import CHECKOUT_LIMITED
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
from seedance_site.ratelimits import over_user_limit

router = Router(tags=["Billing"])

UNCONFIGURED = error_code("payments_unconfigured", "Payments are not set up here (no Stripe keys).")
UNAVAILABLE = error_code("payments_unavailable", "Stripe could not be reached; nothing was charged.")
REFUSED = error_code("payments_error", "Stripe refused to start the checkout; nothing was charged.")


class CheckoutRequest(Schema):
    """Unknown fields are ignored."""

    # Optional to pydantic, so that TopUpForm says a missing amount is missing, in its words.
    model_config = ConfigDict(json_schema_extra={"required": ["amount_cents"]})

    amount_cents: StrictInt | None = documented(
        nullable=False,
        minimum=settings.TOPUP_MIN_CENTS,
        maximum=settings.TOPUP_MAX_CENTS,
        description="Credits to buy (1 credit = 1 cent), a JSON integer; bounds inclusive.",
    )


class Checkout(Answer):
    checkout_url: str = Field(
        json_schema_extra={"format": "uri"},
        description="Stripe Checkout's page; the credits arrive when Stripe reports it paid, exactly once.",
    )
    session_id: str = Field(pattern="^cs_")

    @staticmethod
    def resolve_session_id(topup: TopUp) -> str:
        return topup.stripe_session_id


@router.post(
    "/checkout",
    response={201: Checkout, **errors((502, REFUSED), (503, UNCONFIGURED), (503, UNAVAILABLE), body=True)},
    openapi_extra=request_body(CheckoutRequest),
    operation_id="checkout",
    summary="Start a Stripe Checkout that buys exactly `amount_cents` credits",
)
def checkout(request: HttpRequest) -> Status:
    amount = typed(CheckoutRequest, json_object(request)).amount_cents
    form = TopUpForm({"amount_cents": amount} if amount is not None else {})
    if not form.is_valid():
        raise form_error(form)
    if over_user_limit(request, group="checkout", rate=settings.CHECKOUT_RATE_LIMIT):
        raise ApiError(429, "rate_limited", CHECKOUT_LIMITED)
    try:
        topup: TopUp = topup_create(user=request.auth, amount_cents=form.cleaned_data["amount_cents"])
    except PaymentsUnconfigured:
        raise ApiError(
            503, UNCONFIGURED, "Top-ups are unavailable: payments are not set up on this server."
        ) from None
    except stripe_client.StripeRetryLater:
        raise ApiError(
            503, UNAVAILABLE, "Stripe could not be reached. Nothing was charged; try again in a minute."
        ) from None
    except stripe_client.StripeGiveUp:
        raise ApiError(
            502, REFUSED, "Stripe refused to start the checkout. Nothing was charged; try again later."
        ) from None
    return Status(201, topup)
