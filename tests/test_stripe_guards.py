"""Stripe's reports are matched to our top-ups strictly (accounts.billing.topups): a session that
names another top-up is not credited, and a refund reported again with nothing new refunded takes
nothing, even when it arrives as a new event (event dedupe cannot swallow it). Real HTTP to the fake
Stripe, events signed and POSTed to the webhook. Each test kills a mutant the rest of the suite let
through (tests/MUTATION.md)."""

import pytest

from accounts.billing.audit import audit_mismatches
from accounts.billing.models import CreditEntry, StripeEvent, TopUp
from accounts.billing.selectors import credits_for_user
from accounts.billing.topups import BillingError, topup_create, topup_fulfil, topup_refund
from tests.fake_stripe import (  # noqa: F401 - the fixtures `fake_stripe` and `stripe_server`
    deliver,
    fake_stripe_fixture,
    stripe_server_fixture,
)

pytestmark = pytest.mark.django_db


def balance(user) -> int:
    return credits_for_user(user=user).balance_cents


def test_a_paid_session_naming_another_topup_credits_nothing(fake_stripe, carol, bob):
    mine = topup_create(user=carol, amount_cents=1000)
    theirs = topup_create(user=bob, amount_cents=1000)
    session = fake_stripe.mark_paid(mine.stripe_session_id)
    session["client_reference_id"] = str(theirs.pk)  # tampered with, or a bug on either side

    with pytest.raises(BillingError, match=f"names top-up {theirs.pk}"):
        topup_fulfil(session=session)
    response = deliver(fake_stripe.event("checkout.session.completed", session))

    assert response.status_code == 500  # stored as failed: Stripe retries, an operator looks
    assert StripeEvent.objects.get().state == StripeEvent.State.FAILED
    assert balance(carol) == 0 and balance(bob) == 10_000
    assert TopUp.objects.get(pk=mine.pk).state == TopUp.State.PENDING
    assert not CreditEntry.objects.filter(kind=CreditEntry.Kind.TOPUP).exists()


def test_a_paid_session_naming_its_own_topup_is_credited(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    assert session["client_reference_id"] == str(topup.pk)
    assert topup_fulfil(session=session).state == TopUp.State.PAID
    assert balance(carol) == 1000


def test_a_refund_reported_again_by_a_new_event_takes_nothing_more(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=2000)
    assert (
        deliver(
            fake_stripe.event("checkout.session.completed", fake_stripe.mark_paid(topup.stripe_session_id))
        ).status_code
        == 200
    )
    charge = fake_stripe.refund(topup.stripe_session_id, 500)
    assert deliver(fake_stripe.event("charge.refunded", charge)).status_code == 200
    assert balance(carol) == 1500

    # Stripe sends charge.refunded again for the same charge under a new event id (an update of the
    # refund, or a replay from the dashboard): amount_refunded has not grown, so nothing is taken.
    response = deliver(fake_stripe.event("charge.refunded", fake_stripe.charge(topup.stripe_session_id)))

    assert response.status_code == 200
    assert list(StripeEvent.objects.values_list("state", flat=True).order_by("id")) == ["processed"] * 3
    assert balance(carol) == 1500
    topup.refresh_from_db()
    assert (topup.state, topup.refunded_cents) == (TopUp.State.PARTIALLY_REFUNDED, 500)
    assert audit_mismatches() == []


def test_an_older_refund_report_arriving_late_takes_nothing(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=2000)
    topup_fulfil(session=fake_stripe.mark_paid(topup.stripe_session_id))
    older = fake_stripe.refund(topup.stripe_session_id, 500)
    newer = fake_stripe.refund(topup.stripe_session_id, 700)
    topup_refund(charge=newer)
    assert balance(carol) == 2000 - 1200
    assert topup_refund(charge=older).refunded_cents == 1200
    assert balance(carol) == 2000 - 1200
