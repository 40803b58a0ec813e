"""The top-up services' guards, called as the webhook handlers call them (each event straight to its
service, so the event store's dedupe cannot hide a branch): a session, charge or dispute that is not
ours, not whole, or not yet credited is refused or ignored, and the books stay as they were."""

import pytest

from accounts.billing import topups
from accounts.billing.topups import BillingError
from accounts.models import CreditEntry, TopUp
from tests.factories import balance, owed

pytestmark = pytest.mark.usefixtures("books_balance")


def bought(fake_stripe, user, amount_cents: int = 1000) -> TopUp:
    """A top-up paid for and credited, as the checkout webhook leaves it."""
    topup = topups.topup_create(user=user, amount_cents=amount_cents)
    topups.topup_fulfil(session=fake_stripe.mark_paid(topup.stripe_session_id))
    topup.refresh_from_db()
    assert topup.state == "paid"
    return topup


def entries(user) -> list[tuple[str, int]]:
    return list(CreditEntry.objects.filter(user=user).order_by("id").values_list("kind", "amount_cents"))


# --- Checkout sessions ---------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [499, 50_001, 0, -1000])
def test_a_topup_outside_the_bounds_is_refused_before_stripe_is_asked(fake_stripe, alice, amount):
    with pytest.raises(ValueError, match="outside the top-up bounds"):
        topups.topup_create(user=alice, amount_cents=amount)
    assert not TopUp.objects.exists()
    assert fake_stripe.sessions == {}


def test_a_session_without_an_id_is_refused(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    session.pop("id")
    with pytest.raises(BillingError, match="no id"):
        topups.topup_fulfil(session=session)
    assert not CreditEntry.objects.filter(kind="topup").exists()


def test_a_session_that_is_not_ours_is_ignored(db):
    assert topups.topup_fulfil(session={"id": "cs_someone_elses", "payment_status": "paid"}) is None
    assert topups.topup_mark(session={"id": "cs_someone_elses"}, state="expired") is None
    assert not CreditEntry.objects.exists()


def test_a_topup_is_marked_expired_or_failed_and_nothing_else(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    session = fake_stripe.session(topup.stripe_session_id)
    with pytest.raises(ValueError, match="expired or failed"):
        topups.topup_mark(session=session, state="paid")
    assert TopUp.objects.get(pk=topup.pk).state == "pending"


def test_syncing_a_topup_without_a_session_asks_stripe_nothing(fake_stripe, alice):
    topup = TopUp.objects.create(user=alice, amount_cents=1000)
    assert topups.topup_sync(topup=topup) is topup
    assert fake_stripe.sessions == {}


def test_syncing_refuses_stripe_answering_about_another_session(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    fake_stripe.mark_paid(topup.stripe_session_id)
    fake_stripe.sessions[topup.stripe_session_id]["id"] = "cs_someone_elses"
    with pytest.raises(BillingError, match="answered with session"):
        topups.topup_sync(topup=topup)
    assert balance(alice) == 10_000
    assert TopUp.objects.get(pk=topup.pk).state == "pending"


def test_syncing_an_expired_checkout_marks_it_expired(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    fake_stripe.mark_expired(topup.stripe_session_id)
    assert topups.topup_sync(topup=topup).state == "expired"
    assert balance(alice) == 10_000


def test_syncing_a_completed_unpaid_checkout_remembers_its_payment_and_credits_nothing(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    session = fake_stripe.mark_completed_unpaid(topup.stripe_session_id)
    synced = topups.topup_sync(topup=topup)
    assert synced.state == "pending"
    assert synced.stripe_payment_intent == session["payment_intent"]
    assert balance(alice) == 10_000


# --- Charges: receipts and refunds -------------------------------------------------------------------


def test_a_charge_that_is_not_ours_is_ignored(db):
    for charge in (
        {"id": "ch_x", "payment_intent": "pi_unknown", "amount_refunded": 500},
        {"id": "ch_x", "metadata": {"topup_id": "not-a-number"}, "amount_refunded": 500},
        {"id": "ch_x", "metadata": {"topup_id": "987654"}, "amount_refunded": 500},
    ):
        assert topups.topup_refund(charge=charge) is None
        assert topups.topup_receipt_record(charge=charge) is None
    assert not CreditEntry.objects.exists()


def test_a_charge_found_by_its_metadata_gives_the_topup_its_payment_intent(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    charge = {
        "id": "ch_1",
        "payment_intent": "pi_first_seen_here",
        "metadata": {"topup_id": str(topup.pk)},
        "receipt_url": "https://pay.stripe.com/receipts/r1",
    }
    assert topups.topup_receipt_record(charge=charge).pk == topup.pk
    topup.refresh_from_db()
    assert (topup.stripe_payment_intent, topup.receipt_url) == (
        "pi_first_seen_here",
        "https://pay.stripe.com/receipts/r1",
    )
    # A charge whose PaymentIntent differs from the one the top-up has is another payment's.
    other = {**charge, "payment_intent": "pi_other", "receipt_url": "https://pay.stripe.com/receipts/r2"}
    assert topups.topup_receipt_record(charge=other) is None
    assert TopUp.objects.get(pk=topup.pk).receipt_url == "https://pay.stripe.com/receipts/r1"


def test_a_refund_before_the_payment_is_credited_is_refused_for_a_retry(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    fake_stripe.mark_paid(topup.stripe_session_id)  # Stripe knows; our webhook has not come yet
    charge = fake_stripe.charge(topup.stripe_session_id)
    with pytest.raises(BillingError, match="not credited yet"):
        topups.topup_refund(charge=charge)
    assert balance(alice) == 10_000 and owed(alice) == 0


# --- Disputes --------------------------------------------------------------------------------------


def test_a_dispute_without_an_id_is_refused(fake_stripe, alice):
    topup = bought(fake_stripe, alice)
    dispute = fake_stripe.dispute(topup.stripe_session_id)
    dispute.pop("id")
    with pytest.raises(BillingError, match="no id"):
        topups.topup_dispute_open(dispute=dispute)
    with pytest.raises(BillingError, match="no id"):
        topups.topup_dispute_close(dispute=dispute)
    assert balance(alice) == 11_000


def test_a_dispute_before_the_payment_is_credited_is_refused_for_a_retry(fake_stripe, alice):
    topup = topups.topup_create(user=alice, amount_cents=1000)
    # A bank debit: the session completed (we learnt its PaymentIntent), the money not yet in.
    topups.topup_fulfil(session=fake_stripe.mark_completed_unpaid(topup.stripe_session_id))
    fake_stripe.mark_paid(topup.stripe_session_id)  # Stripe has it; our webhook has not come yet
    dispute = fake_stripe.dispute(topup.stripe_session_id)
    with pytest.raises(BillingError, match="not credited yet"):
        topups.topup_dispute_open(dispute=dispute)
    assert balance(alice) == 10_000 and owed(alice) == 0


def test_a_dispute_of_nothing_left_to_dispute_takes_nothing(fake_stripe, alice):
    topup = bought(fake_stripe, alice)
    topups.topup_refund(charge=fake_stripe.refund(topup.stripe_session_id, 1000))
    before = (balance(alice), entries(alice))
    dispute = fake_stripe.dispute(topup.stripe_session_id, amount_cents=1000)

    assert topups.topup_dispute_open(dispute=dispute).state == "refunded"
    assert (balance(alice), entries(alice)) == before


def test_a_dispute_that_is_not_ours_is_ignored(db):
    dispute = {"id": "dp_x", "payment_intent": "pi_unknown", "amount": 500, "status": "won"}
    assert topups.topup_dispute_open(dispute=dispute) is None
    assert topups.topup_dispute_close(dispute=dispute) is None
    assert not CreditEntry.objects.exists()
