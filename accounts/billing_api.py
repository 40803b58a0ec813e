"""`POST /api/v1/checkout` (CONTRACT §4): buy credits through a Stripe Checkout page."""

from django.http import HttpRequest, JsonResponse

from accounts import stripe_client
from accounts.billing import PaymentsUnconfigured, topup_create
from accounts.billing_forms import TopUpForm, amount_error
from seedance_site.api import api_error, api_view, form_error


@api_view(methods=("POST",))
def checkout(request: HttpRequest) -> JsonResponse:
    amount = request.json.get("amount_cents")
    # A JSON integer only: Django's form would take "1000" or 1000.0 as well (CONTRACT §5b).
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
        message = f"“amount_cents” must be a whole number of cents (a JSON integer). {amount_error()}"
        return api_error("invalid_request", message, status=400, fields={"amount_cents": [message]})
    form = TopUpForm({"amount_cents": amount} if amount is not None else {})
    if not form.is_valid():
        return form_error(form)
    try:
        topup = topup_create(user=request.user, amount_cents=form.cleaned_data["amount_cents"])
    except PaymentsUnconfigured:
        return api_error(
            "payments_unconfigured",
            "Top-ups are unavailable: payments are not set up on this server.",
            status=503,
        )
    except stripe_client.StripeRetryLater:
        return api_error(
            "payments_unavailable",
            "Stripe could not be reached. Nothing was charged; try again in a minute.",
            status=503,
        )
    except stripe_client.StripeGiveUp:
        return api_error(
            "payments_error",
            "Stripe refused to start the checkout. Nothing was charged; try again later.",
            status=502,
        )
    return JsonResponse(
        {"checkout_url": topup.checkout_url, "session_id": topup.stripe_session_id}, status=201
    )
