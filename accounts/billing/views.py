"""The billing pages and the Stripe webhook (CONTRACT §5)."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.billing import stripe_client
from accounts.billing.forms import CustomTopUpForm, TopUpForm, usd
from accounts.billing.selectors import recent_entries_for_user, topup_for_user, topups_for_user
from accounts.billing.stripe_events import StripeEventFailed, stripe_event_process, stripe_event_receive
from accounts.billing.topups import BillingError, PaymentsUnconfigured, topup_create, topup_sync
from accounts.models import TopUp, User
from generations.pricing import MODE_LABELS
from generations.reports import daily_spending_for_user
from seedance_site.api import api_error
from seedance_site.charts import Series, chart, day_label
from seedance_site.ratelimits import over_user_limit

logger = logging.getLogger(__name__)

# Each checkout is a call to Stripe, so starting many is limited per user (web and API together).
CHECKOUT_LIMITED = "You have started many checkouts in a short time. Wait a while, then try again."

# Stripe keeps an unpaid Checkout Session open for 24 hours; after that its link is dead.
CHECKOUT_LINK_LIFETIME = timedelta(hours=23)


def _billing_page(
    request: HttpRequest,
    *,
    pack_form: TopUpForm | None = None,
    custom_form: CustomTopUpForm | None = None,
    status: int = 200,
) -> HttpResponse:
    now = timezone.now()
    topups = list(topups_for_user(user=request.user)[:20])
    for topup in topups:
        topup.amount_label = usd(topup.amount_cents)
        topup.refunded_label = usd(topup.refunded_cents)
        topup.resumable = (
            topup.state == TopUp.State.PENDING
            and bool(topup.checkout_url)
            and now - topup.created_at < CHECKOUT_LINK_LIFETIME
        )
    context = {
        "missing": stripe_client.missing_settings(),
        # Stripe's test mode or the local stand-in: say plainly that no real money moves.
        "test_mode": stripe_client.test_mode() or settings.STRIPE_STANDIN,
        "standin": settings.STRIPE_STANDIN,
        "packs": [{"cents": cents, "label": usd(cents)} for cents in settings.TOPUP_PACKS_CENTS],
        "pack_form": pack_form or TopUpForm(),
        "custom_form": custom_form or CustomTopUpForm(),
        "min_label": usd(settings.TOPUP_MIN_CENTS),
        "max_label": usd(settings.TOPUP_MAX_CENTS),
        "topups": topups,
        "entries": recent_entries_for_user(user=request.user),
        "spending_chart": spending_chart(user=request.user),
    }
    return render(request, "billing/billing.html", context, status=status)


def spending_chart(*, user: User) -> SafeString:
    """The last 30 days of what the user's videos cost, a bar a day, split by mode."""
    days, by_mode = daily_spending_for_user(user=user)
    total = sum(sum(values) for values in by_mode.values())
    peak_day = max(range(len(days)), key=lambda i: sum(v[i] for v in by_mode.values()))
    return chart(
        title=f"What your videos cost, last {len(days)} days",
        labels=[day_label(day) for day in days],
        series=[
            Series(MODE_LABELS[mode].split(" — ")[0], [c / 100 for c in cents], 0 if mode == "std" else 1)
            for mode, cents in by_mode.items()
        ],
        value_format=lambda dollars: usd(round(dollars * 100)),
        summary=(f"{usd(total)} in all; the most on {day_label(days[peak_day])}." if total else ""),
        empty="No videos in the last 30 days, so nothing spent yet.",
    )


def billing(request: HttpRequest) -> HttpResponse:
    return _billing_page(request)


# Decorators applied by assignment: mutmut skips decorated functions (tests/MUTATION.md).
billing = login_required(billing)


def billing_checkout(request: HttpRequest) -> HttpResponse:
    # Pack buttons send amount_cents; the "other amount" form sends dollars.
    custom = "amount_usd" in request.POST
    form: TopUpForm | CustomTopUpForm = CustomTopUpForm(request.POST) if custom else TopUpForm(request.POST)
    if not form.is_valid():
        if custom:
            return _billing_page(request, custom_form=form, status=400)
        return _billing_page(request, pack_form=form, status=400)
    if over_user_limit(request, group="checkout", rate=settings.CHECKOUT_RATE_LIMIT):
        messages.error(request, CHECKOUT_LIMITED)
        return _billing_page(request, status=429)
    try:
        topup = topup_create(user=request.user, amount_cents=form.cleaned_data["amount_cents"])
    except PaymentsUnconfigured:
        messages.error(request, "Top-ups are unavailable: payments are not set up on this server.")
        return redirect("billing")
    except stripe_client.StripeCallFailed:
        messages.error(
            request, "Stripe could not start the checkout. Nothing was charged; try again in a minute."
        )
        return redirect("billing")
    return redirect(topup.checkout_url)


billing_checkout = login_required(require_POST(billing_checkout))  # as billing above


def billing_success(request: HttpRequest) -> HttpResponse:
    topup = topup_for_user(user=request.user, session_id=request.GET.get("session_id", ""))
    unconfirmed = False
    # Stripe's redirect often beats its webhook: ask Stripe now, through the same idempotent
    # fulfilment, so the credits are there on this very page.
    if topup.state == TopUp.State.PENDING or (topup.credited and not topup.receipt_url):
        try:
            topup = topup_sync(topup=topup)
        except (stripe_client.StripeCallFailed, stripe_client.StripeNotConfigured, BillingError) as exc:
            logger.warning("success page for topup %s: %s", topup.pk, exc)
            unconfirmed = topup.state == TopUp.State.PENDING
    context = {"topup": topup, "amount_label": usd(topup.amount_cents), "unconfirmed": unconfirmed}
    return render(request, "billing/success.html", context)


billing_success = login_required(billing_success)  # as billing above


def billing_cancel(request: HttpRequest) -> HttpResponse:
    return render(request, "billing/cancel.html")


def stripe_webhook(request: HttpRequest) -> HttpResponse:
    """Stripe's events. CSRF-exempt: the signature, not a cookie, proves who sent it."""
    if not settings.STRIPE_WEBHOOK_SECRET:
        return api_error("payments_unconfigured", "STRIPE_WEBHOOK_SECRET is not set.", status=503)
    try:
        payload = stripe_client.webhook_event_verify(
            payload=request.body, signature=request.headers.get("Stripe-Signature")
        )
    except stripe_client.WebhookSignatureInvalid as exc:
        return api_error("invalid_signature", f"The Stripe signature does not verify: {exc}.", status=400)
    event = stripe_event_receive(event=payload)
    try:
        event = stripe_event_process(event_id=event.pk)
    except StripeEventFailed:
        # 500 makes Stripe deliver the event again later (with backoff, for up to three days).
        return api_error("event_failed", "The event could not be handled; it will be retried.", status=500)
    return JsonResponse({"received": True, "state": event.state})


stripe_webhook = csrf_exempt(require_POST(stripe_webhook))  # as billing above
