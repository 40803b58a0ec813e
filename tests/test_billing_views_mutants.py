"""accounts.billing.views, held to exactly what its views do: who may call them and how (the
decorators, applied by assignment so that mutmut mutates the views' bodies), what each page and
the Stripe webhook answer. Each test kills mutants `tests/mutants.py accounts.billing.views` let
through, or pins what the decorators promise (tests/MUTATION.md)."""

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.messages import get_messages
from django.test import Client

from accounts.billing import views
from accounts.billing.topups import topup_create
from accounts.billing.views import CHECKOUT_LIMITED
from accounts.models import TopUp
from generations.models import Generation
from tests.factories import api_for, generation_row, html
from tests.fake_stripe import deliver

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def logged_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def said(response) -> list[str]:
    """The messages the response leaves for the next page."""
    return [message.message for message in get_messages(response.wsgi_request)]


# --- the decorators: login first, then the method --------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_starting_a_checkout_needs_a_login_before_anything_else(fake_stripe, method):
    response = getattr(Client(), method)("/billing/checkout/", {"amount_cents": "1000"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/billing/checkout/")
    assert TopUp.objects.count() == 0


def test_starting_a_checkout_is_a_post(fake_stripe, alice):
    assert logged_in(alice).get("/billing/checkout/", {"amount_cents": "1000"}).status_code == 405
    assert TopUp.objects.count() == 0


def test_starting_a_checkout_needs_the_csrf_token(fake_stripe, alice):
    response = logged_in(alice, enforce_csrf_checks=True).post("/billing/checkout/", {"amount_cents": "1000"})

    assert response.status_code == 403
    assert TopUp.objects.count() == 0


@pytest.mark.parametrize("path", ["/billing/", "/billing/success/?session_id=cs_test_x"])
def test_the_billing_pages_send_a_stranger_to_the_login_page(fake_stripe, path):
    response = Client().get(path)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/billing/")


def test_the_stripe_webhook_is_a_post_and_needs_no_csrf_token(fake_stripe):
    client = Client(enforce_csrf_checks=True)

    assert client.get("/webhooks/stripe/").status_code == 405
    # No signature: refused by the view itself (400), not by the CSRF middleware (403).
    assert client.post("/webhooks/stripe/", b"{}", content_type="application/json").status_code == 400


# --- the success and cancel pages ------------------------------------------------------------------


def test_a_session_stripe_has_not_confirmed_yet_is_not_called_unconfirmed(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    fake_stripe.mark_completed_unpaid(topup.stripe_session_id)

    page = html(logged_in(carol).get(f"/billing/success/?session_id={topup.stripe_session_id}"))

    assert "Stripe has not confirmed your payment of $10 yet" in page
    assert "could not confirm" not in page


def test_the_cancel_page_is_rendered_for_the_signed_in_user(fake_stripe, alice):
    page = html(logged_in(alice).get("/billing/cancel/"))

    assert "Nothing was charged" in page
    assert "Account menu for alice" in page


def test_a_paid_session_with_its_receipt_is_not_asked_about_again(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    fake_stripe.mark_paid(topup.stripe_session_id)
    client = logged_in(carol)
    assert "Thank you" in html(client.get(f"/billing/success/?session_id={topup.stripe_session_id}"))
    topup.refresh_from_db()
    assert topup.credited and topup.receipt_url
    asked = len(fake_stripe.requests)

    page = html(client.get(f"/billing/success/?session_id={topup.stripe_session_id}"))

    assert "Thank you" in page and topup.receipt_url in page
    assert len(fake_stripe.requests) == asked


def test_a_success_page_stripe_could_not_confirm_logs_the_topup_and_why(fake_stripe, carol, caplog):
    topup = topup_create(user=carol, amount_cents=1000)
    fake_stripe.mark_paid(topup.stripe_session_id)
    fake_stripe.fail_next(503)
    caplog.set_level(logging.WARNING, logger="accounts.billing.views")

    logged_in(carol).get(f"/billing/success/?session_id={topup.stripe_session_id}")

    [line] = [r.getMessage() for r in caplog.records if r.name == "accounts.billing.views"]
    assert line == (
        f"success page for topup {topup.pk}: "
        "Stripe checkout session retrieve failed: Stripe stand-in failure (503)."
    )


# --- starting a checkout ---------------------------------------------------------------------------


@time_machine.travel("2026-11-29 12:00:10Z", tick=False)
def test_a_checkout_past_the_limit_shared_with_the_api_shows_the_billing_page_with_why(
    fake_stripe, alice, settings
):
    settings.CHECKOUT_RATE_LIMIT = "2/h"
    web = logged_in(alice)
    assert api_for(alice).post("/api/v1/checkout", {"amount_cents": 1000}).status_code == 201
    assert web.post("/billing/checkout/", {"amount_cents": "1000"}).status_code == 302

    response = web.post("/billing/checkout/", {"amount_cents": "1000"})

    assert response.status_code == 429
    page = html(response)
    assert page.count(CHECKOUT_LIMITED) == 1
    assert "Account menu for alice" in page
    assert TopUp.objects.filter(user=alice).count() == 2


def test_a_checkout_without_stripe_keys_says_top_ups_are_unavailable(fake_stripe, alice, settings):
    settings.STRIPE_SECRET_KEY = ""
    client = logged_in(alice)

    response = client.post("/billing/checkout/", {"amount_cents": "1000"})

    assert (response.status_code, response["Location"]) == (302, "/billing/")
    assert said(response) == ["Top-ups are unavailable: payments are not set up on this server."]
    assert TopUp.objects.count() == 0


def test_a_checkout_stripe_could_not_start_says_nothing_was_charged(fake_stripe, alice):
    fake_stripe.fail_next(503)
    client = logged_in(alice)

    response = client.post("/billing/checkout/", {"amount_cents": "1000"})

    assert (response.status_code, response["Location"]) == (302, "/billing/")
    assert said(response) == [
        "Stripe could not start the checkout. Nothing was charged; try again in a minute."
    ]


# --- the spending chart ----------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_spending_chart_shows_each_modes_cost_a_day_and_the_peak(alice, bob):
    generation_row(alice, mode="std", duration=5)
    fast = generation_row(alice, mode="fast", duration=10)
    Generation.objects.filter(pk=fast.pk).update(created_at=datetime(2026, 11, 28, 9, 0, tzinfo=UTC))
    generation_row(bob, mode="std", duration=15)

    chart = str(views.spending_chart(user=alice))

    assert 'class="chart-title">What your videos cost, last 30 days</figcaption>' in chart
    assert (
        '<li><span class="chart-key c0" aria-hidden="true"></span>Standard</li>'
        '<li><span class="chart-key c1" aria-hidden="true"></span>Fast</li>'
    ) in chart
    assert "in all; the most on Nov 28.</desc>" in chart and ">$3.20 in all;" in chart
    bars = [
        '<rect class="c1" x="271" y="0" width="8" height="100"><title>Nov 28: Standard: $0; Fast: $2<',
        '<rect class="c0" x="291" y="40" width="8" height="60"><title>Nov 30: Standard: $1.20; Fast: $0<',
    ]
    assert all(bar in chart for bar in bars)
    assert '<th scope="row">Nov 30</th><td>$1.20</td><td>$0</td>' in chart


def test_the_spending_chart_of_nobodys_videos_says_nothing_was_spent(alice):
    chart = str(views.spending_chart(user=alice))

    assert ">No videos in the last 30 days, so nothing spent yet.<" in chart
    assert "in all;" not in chart


# --- the billing page ------------------------------------------------------------------------------


def topup_row(user, n: int, state: str, age: timedelta, **fields) -> TopUp:
    """A top-up as the payments table lists it (no credits move: only the page reads it)."""
    fields.setdefault("checkout_url", f"https://pay.example/{n}")
    row = TopUp.objects.create(
        user=user, amount_cents=1000 + n, state=state, stripe_session_id=f"cs_test_row{n}", **fields
    )
    TopUp.objects.filter(pk=row.pk).update(created_at=NOW - age)
    return row


@time_machine.travel(NOW, tick=False)
def test_the_payments_table_offers_to_resume_only_a_pending_checkout_whose_link_still_works(
    fake_stripe, alice
):
    topup_row(alice, 1, TopUp.State.PENDING, timedelta(hours=22, minutes=59))
    topup_row(alice, 2, TopUp.State.PENDING, timedelta(hours=23))  # Stripe's link is as good as dead
    topup_row(alice, 3, TopUp.State.FAILED, timedelta(minutes=1))
    topup_row(alice, 4, TopUp.State.PENDING, timedelta(minutes=2), checkout_url="")

    page = html(logged_in(alice).get("/billing/"))

    assert re.findall(r'<a href="([^"]+)">Continue to payment</a>', page) == ["https://pay.example/1"]


@time_machine.travel(NOW, tick=False)
def test_the_payments_table_shows_the_last_20_with_their_amounts_and_refunds(fake_stripe, alice):
    for n in range(20):
        topup_row(alice, n, TopUp.State.PAID, timedelta(days=1 + n))
    topup_row(alice, 99, TopUp.State.PARTIALLY_REFUNDED, timedelta(hours=1), refunded_cents=250)

    page = html(logged_in(alice).get("/billing/"))

    assert len(re.findall(r'<td class="num">\$10(\.\d\d)?</td>', page)) == 20  # the newest 20 of 21
    assert '<td class="num">$10.99</td>' in page and '<td class="num">$10.18</td>' in page
    assert '<td class="num">$10.19</td>' not in page
    assert '<span class="muted small">$2.50 back</span>' in page


@pytest.mark.parametrize(
    ("standin", "banner"),
    [
        (False, "Stripe is in test mode: pay with a test card such as 4242 4242 4242 4242"),
        (True, "Checkout opens a local stand-in for Stripe"),
    ],
)
def test_the_billing_page_says_no_real_money_moves_and_the_amounts_it_takes(
    fake_stripe, alice, settings, standin, banner
):
    settings.STRIPE_STANDIN = standin

    page = html(logged_in(alice).get("/billing/"))

    assert banner in page
    assert "Any amount from $5 to $500; you get 100 credits per dollar." in page


def test_the_billing_page_charts_the_users_own_spending(fake_stripe, alice):
    generation_row(alice, mode="std", duration=5)

    page = html(logged_in(alice).get("/billing/"))

    assert ">$1.20 in all; the most on " in page


# --- the Stripe webhook: what it answers -----------------------------------------------------------


def test_the_webhook_answers_what_it_did_with_a_paid_session(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    event = fake_stripe.event("checkout.session.completed", fake_stripe.mark_paid(topup.stripe_session_id))

    response = deliver(event)

    assert (response.status_code, response.json()) == (200, {"received": True, "state": "processed"})


def test_the_webhook_without_its_secret_says_payments_are_unconfigured(fake_stripe, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver(fake_stripe.event("checkout.session.completed", {"id": "cs_test_x"}))

    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": "payments_unconfigured", "message": "STRIPE_WEBHOOK_SECRET is not set."}
    }


def test_the_webhook_says_why_a_signature_does_not_verify(fake_stripe):
    response = deliver(
        fake_stripe.event("checkout.session.completed", {"id": "cs_test_x"}), signature="t=1,v1=00"
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_signature"
    assert error["message"].startswith("The Stripe signature does not verify: ")
    assert len(error["message"]) > len("The Stripe signature does not verify: .")


def test_the_webhook_asks_stripe_to_retry_an_event_it_could_not_handle(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    session["amount_total"] = 100

    response = deliver(fake_stripe.event("checkout.session.completed", session))

    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "event_failed", "message": "The event could not be handled; it will be retried."}
    }
