"""The Stripe stand-in as a person and the portal meet it (issue #15, item 4).

The portal runs as a live server; the stand-in's hosted page is used over real HTTP, as a
browser would; the webhooks it sends are signed with the portal's secret and checked by the
portal's own verification (the `stripe` library's), never bypassed.
"""

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.billing.audit import audit_mismatches
from accounts.billing.topups import topup_create
from accounts.models import CreditEntry, TopUp, User
from tests.factories import balance, make_user, manage
from tests.fake_stripe import FakeStripe

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def standin(fake_stripe: FakeStripe, live_server, settings) -> FakeStripe:
    """The stand-in, sending its events to the live portal as `make run` sets it up."""
    settings.SITE_URL = live_server.url
    fake_stripe.webhook_url = f"{live_server.url}/webhooks/stripe/"
    yield fake_stripe
    assert audit_mismatches() == []


def press(topup: TopUp, action: str) -> requests.Response:
    """A person pressing a button on the stand-in's checkout page."""
    return requests.post(topup.checkout_url, data={"action": action}, allow_redirects=False, timeout=30)


def success_url(standin: FakeStripe, topup: TopUp) -> str:
    session = standin.session(topup.stripe_session_id)
    return session["success_url"].replace("{CHECKOUT_SESSION_ID}", topup.stripe_session_id)


def credited_entries(topup: TopUp) -> int:
    return CreditEntry.objects.filter(reference=f"topup:{topup.pk}").count()


def test_paying_on_the_standin_page_credits_once_through_its_signed_webhook(standin, carol, live_server):
    topup = topup_create(user=carol, amount_cents=1000)

    page = requests.get(topup.checkout_url, timeout=30)
    assert page.status_code == 200
    assert "Pay $10.00" in page.text
    assert "Test mode — no real money" in page.text

    answer = press(topup, "pay")

    assert answer.status_code == 303
    assert answer.headers["Location"] == success_url(standin, topup)
    assert [(d["type"], d["status"]) for d in standin.deliveries] == [
        ("checkout.session.completed", 200),
        ("charge.succeeded", 200),
    ]
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PAID
    assert topup.receipt_url
    assert balance(carol) == 1000
    assert credited_entries(topup) == 1

    # Paying again, Stripe delivering again, and the success page asking: still credited once.
    assert press(topup, "pay").status_code == 303
    session = standin.session(topup.stripe_session_id)
    assert standin.send(standin.event("checkout.session.completed", session)) == 200
    client = Client()
    client.force_login(carol)
    assert client.get(success_url(standin, topup).removeprefix(live_server.url)).status_code == 200
    assert balance(carol) == 1000
    assert credited_entries(topup) == 1


def test_a_declined_card_credits_nothing_and_the_session_stays_payable(standin, carol):
    topup = topup_create(user=carol, amount_cents=2500)

    answer = press(topup, "decline")

    assert answer.status_code == 402
    assert "Your card was declined. Nothing was charged." in answer.text
    assert standin.deliveries == []
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PENDING
    assert balance(carol) == 0

    # As on Stripe's page, the person may try another card.
    assert press(topup, "pay").status_code == 303
    assert balance(carol) == 2500


def test_a_refund_on_demand_takes_the_credits_back(standin, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    press(topup, "pay")
    assert balance(carol) == 1000

    answer = press(topup, "refund")

    assert answer.status_code == 303
    assert standin.deliveries[-1]["type"] == "charge.refunded"
    assert standin.deliveries[-1]["status"] == 200
    topup.refresh_from_db()
    assert topup.refunded_cents == 1000
    assert balance(carol) == 0
    assert "Refunded in full." in requests.get(topup.checkout_url, timeout=30).text


def test_a_webhook_signed_with_another_secret_is_refused_and_credits_nothing(standin, carol):
    standin.webhook_secret = "whsec_not_the_portals"
    topup = topup_create(user=carol, amount_cents=1000)

    press(topup, "pay")

    assert [d["status"] for d in standin.deliveries][:2] == [400, 400]
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PENDING
    assert balance(carol) == 0


def test_the_billing_page_shows_the_test_mode_band(fake_stripe, settings):
    alice = make_user("alice")
    client = Client()
    client.force_login(alice)

    page = client.get("/billing/").content.decode()
    assert "Test mode — no real money." in page
    assert "Stripe is in test mode" in page

    settings.STRIPE_STANDIN = True
    page = client.get("/billing/").content.decode()
    assert "Test mode — no real money." in page
    assert "local stand-in for Stripe" in page
    assert "the stand-in’s test page" in page and "Stripe’s secure checkout" not in page

    settings.STRIPE_STANDIN = False
    settings.STRIPE_SECRET_KEY = "sk_live_real"
    page = client.get("/billing/").content.decode()
    assert "Test mode" not in page and "Stripe’s secure checkout" in page


def test_the_standin_command_takes_test_keys_only():
    result = manage(
        "stripe_standin", "--port", "0", "--api-key", "sk_live_real", "--webhook-secret", "whsec_x"
    )
    assert result.returncode != 0
    assert "test keys only" in result.stderr


def test_ensure_operator_makes_a_superuser_once_in_development_only(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="development only"):
        call_command("ensure_operator")
    assert not User.objects.exists()

    settings.DEBUG = True
    call_command("ensure_operator")
    call_command("ensure_operator")
    operator = User.objects.get()
    assert (operator.username, operator.is_staff, operator.is_superuser) == ("admin", True, True)
    assert operator.check_password("admin")
    assert Client().login(username="admin", password="admin")


def test_ensure_operator_never_promotes_an_existing_user(settings):
    settings.DEBUG = True
    make_user("admin")
    with pytest.raises(CommandError, match="is not an operator"):
        call_command("ensure_operator")
    assert not User.objects.get(username="admin").is_staff


def test_a_restarted_standin_keeps_its_sessions(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    again = FakeStripe(api_key=fake_stripe.api_key)
    again.restore(fake_stripe.snapshot())
    again.start()
    try:
        page = requests.get(f"{again.url}/c/pay/{topup.stripe_session_id}", timeout=30)
        assert page.status_code == 200
        assert "Pay $10.00" in page.text
    finally:
        again.stop()
