"""Stripe's reports are matched to our top-ups strictly (accounts.billing.topups): a session that
names another top-up is not credited, and a refund reported again with nothing new refunded takes
nothing, even when it arrives as a new event (event dedupe cannot swallow it). Real HTTP to the fake
Stripe, events signed and POSTed to the webhook. Each test kills a mutant the rest of the suite let
through (tests/MUTATION.md)."""

import pytest

from accounts.billing.audit import audit_mismatches
from accounts.billing.models import CreditEntry, StripeEvent, TopUp
from accounts.billing.stripe_events import StripeEventFailed, stripe_event_process, stripe_event_receive
from accounts.billing.topups import BillingError, topup_create, topup_fulfil, topup_mark, topup_refund
from tests.factories import balance
from tests.fake_stripe import deliver

pytestmark = pytest.mark.django_db


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


# --- the stored event's life: handled once, a failure kept and tried again -------------------------


def test_an_event_is_handled_once_and_again_only_when_forced(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    event = fake_stripe.event("checkout.session.completed", fake_stripe.mark_paid(topup.stripe_session_id))
    row = stripe_event_receive(event=event)
    assert stripe_event_receive(event=event).pk == row.pk  # a redelivery finds the first row

    done = stripe_event_process(event_id=row.pk)
    assert (done.state, done.attempts, done.error) == (
        StripeEvent.State.PROCESSED,
        1,
        f"Top-up {topup.pk}: paid.",
    )
    assert done.processed_at is not None
    assert stripe_event_process(event_id=row.pk).attempts == 1  # done: not handled again
    forced = stripe_event_process(event_id=row.pk, force=True)
    assert (forced.state, forced.attempts) == (StripeEvent.State.PROCESSED, 2)
    assert balance(carol) == 1000  # handled twice, credited once


def test_an_event_type_we_do_not_act_on_is_stored_as_ignored(fake_stripe):
    row = stripe_event_receive(event=fake_stripe.event("customer.created", {"id": "cus_1"}))
    done = stripe_event_process(event_id=row.pk)
    assert (done.state, done.error, done.attempts) == (
        StripeEvent.State.IGNORED,
        "We do not act on this event type.",
        1,
    )
    assert done.processed_at is not None


def test_a_failing_event_is_stored_failed_with_its_error_and_handled_again_next_time(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    session["amount_total"] = 999
    row = stripe_event_receive(event=fake_stripe.event("checkout.session.completed", session))

    with pytest.raises(
        StripeEventFailed, match=f"Stripe event {row.stripe_id} \\(checkout.session.completed\\)"
    ):
        stripe_event_process(event_id=row.pk)
    row.refresh_from_db()
    assert (row.state, row.attempts, row.processed_at) == (StripeEvent.State.FAILED, 1, None)
    assert row.error.startswith("BillingError: Session ")
    with pytest.raises(StripeEventFailed):
        stripe_event_process(event_id=row.pk)  # not done: handled again, without force
    row.refresh_from_db()
    assert row.attempts == 2
    assert balance(carol) == 0


@pytest.mark.parametrize(
    ("event_type", "state"),
    [
        ("checkout.session.async_payment_failed", TopUp.State.FAILED),
        ("checkout.session.expired", TopUp.State.EXPIRED),
    ],
)
def test_an_unpaid_session_event_marks_the_topup(fake_stripe, carol, event_type, state):
    topup = topup_create(user=carol, amount_cents=1000)
    row = stripe_event_receive(
        event=fake_stripe.event(event_type, fake_stripe.session(topup.stripe_session_id))
    )
    assert stripe_event_process(event_id=row.pk).state == StripeEvent.State.PROCESSED
    assert TopUp.objects.get(pk=topup.pk).state == state


@pytest.mark.parametrize(
    "event_type",
    ["checkout.session.completed", "checkout.session.expired", "charge.refunded", "charge.dispute.created"],
)
def test_an_event_about_something_not_ours_is_ignored_and_says_so(fake_stripe, event_type):
    obj = {"id": "cs_or_ch_not_ours", "object": "x", "payment_intent": "pi_not_ours", "metadata": {}}
    if event_type.startswith("charge.dispute"):
        obj["id"] = "dp_not_ours"
    row = stripe_event_receive(event=fake_stripe.event(event_type, obj))
    done = stripe_event_process(event_id=row.pk)
    assert done.state == StripeEvent.State.IGNORED
    assert done.error.startswith("No top-up of ours matches this ")


# --- what the stored event tells an operator (killed mutants: tests/MUTATION.md) ---------------------


@pytest.mark.parametrize(
    ("event_type", "what"),
    [
        ("checkout.session.completed", "session"),
        ("checkout.session.async_payment_succeeded", "session"),
        ("checkout.session.async_payment_failed", "session"),
        ("checkout.session.expired", "session"),
        ("charge.succeeded", "charge"),
        ("charge.refunded", "charge"),
        ("charge.dispute.created", "dispute"),
        ("charge.dispute.closed", "dispute"),
    ],
)
def test_the_note_on_an_event_not_ours_names_what_it_was_about(fake_stripe, event_type, what):
    obj = {"id": f"{what}_not_ours", "payment_intent": "pi_not_ours", "metadata": {}, "status": "won"}
    row = stripe_event_receive(event=fake_stripe.event(event_type, obj))
    done = stripe_event_process(event_id=row.pk)
    assert (done.state, done.error) == (StripeEvent.State.IGNORED, f"No top-up of ours matches this {what}.")


@pytest.mark.parametrize(
    ("event_type", "state", "reason"),
    [
        ("checkout.session.async_payment_failed", TopUp.State.FAILED, "The payment did not go through."),
        ("checkout.session.expired", TopUp.State.EXPIRED, "The checkout expired unpaid."),
    ],
)
def test_an_unpaid_session_event_says_why_on_the_topup(fake_stripe, carol, event_type, state, reason):
    topup = topup_create(user=carol, amount_cents=1000)
    row = stripe_event_receive(
        event=fake_stripe.event(event_type, fake_stripe.session(topup.stripe_session_id))
    )
    stripe_event_process(event_id=row.pk)
    assert TopUp.objects.values_list("state", "error").get(pk=topup.pk) == (state, reason)


def test_a_failed_event_carries_its_row_and_its_cause_and_is_logged(fake_stripe, carol, caplog):
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    session["amount_total"] = 999
    row = stripe_event_receive(event=fake_stripe.event("checkout.session.completed", session))

    with caplog.at_level("INFO", logger="accounts.billing.stripe_events"):
        with pytest.raises(StripeEventFailed) as caught:
            stripe_event_process(event_id=row.pk)
    cause = (
        f"Session {topup.stripe_session_id} paid 999 usd; top-up {topup.pk} is 1000 usd. Nothing credited."
    )
    assert caught.value.event.pk == row.pk
    assert str(caught.value) == f"Stripe event {row.stripe_id} (checkout.session.completed) failed: {cause}"
    assert [r.getMessage() for r in caplog.records if r.name == "accounts.billing.stripe_events"] == [
        f"stripe event {row.stripe_id} (checkout.session.completed) failed: BillingError: {cause}"
    ]


def test_a_handled_event_is_logged_with_its_id_type_and_state(fake_stripe, caplog):
    row = stripe_event_receive(event=fake_stripe.event("customer.created", {"id": "cus_1"}))
    with caplog.at_level("INFO", logger="accounts.billing.stripe_events"):
        stripe_event_process(event_id=row.pk)
    assert [r.getMessage() for r in caplog.records if r.name == "accounts.billing.stripe_events"] == [
        f"stripe event {row.stripe_id} (customer.created): ignored"
    ]


def test_an_over_long_type_and_note_are_cut_to_their_columns(fake_stripe, carol):
    long_type = "x" * 150
    assert len(stripe_event_receive(event=fake_stripe.event(long_type, {})).type) == 100
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    session["amount_total"] = "9" * 3000  # quoted back in the failure's note
    row = stripe_event_receive(event=fake_stripe.event("checkout.session.completed", session))
    with pytest.raises(StripeEventFailed):
        stripe_event_process(event_id=row.pk)
    row.refresh_from_db()
    assert row.error.startswith("BillingError: Session ") and len(row.error) == 2000


def test_processing_an_event_stamps_it_updated(fake_stripe, time_machine):
    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    row = stripe_event_receive(event=fake_stripe.event("customer.created", {"id": "cus_2"}))
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    done = stripe_event_process(event_id=row.pk)
    assert done.updated_at == done.processed_at
    assert done.updated_at.isoformat() == "2026-11-30T10:05:00+00:00"


# --- accounts.billing.topups: marks, receipts and disputes (killed mutants: tests/MUTATION.md) ---------


def paid(fake_stripe, user, amount_cents: int) -> TopUp:
    topup = topup_create(user=user, amount_cents=amount_cents)
    return topup_fulfil(session=fake_stripe.mark_paid(topup.stripe_session_id))


def test_marking_one_session_expired_leaves_every_other_pending_topup_alone(fake_stripe, carol, bob):
    mine = topup_create(user=carol, amount_cents=1000)
    theirs = topup_create(user=bob, amount_cents=1000)
    topup_mark(session=fake_stripe.session(mine.stripe_session_id), state=TopUp.State.EXPIRED, reason="gone")
    assert TopUp.objects.get(pk=mine.pk).state == TopUp.State.EXPIRED
    assert TopUp.objects.get(pk=theirs.pk).state == TopUp.State.PENDING


def test_a_mark_keeps_the_payment_intent_and_a_reason_cut_to_500_and_stamps_the_row(
    fake_stripe, carol, time_machine
):
    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.session(topup.stripe_session_id)
    session["payment_intent"] = "pi_marked"
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    topup_mark(session=session, state=TopUp.State.FAILED, reason="r" * 600)
    topup.refresh_from_db()
    assert (topup.state, topup.error, topup.stripe_payment_intent) == ("failed", "r" * 500, "pi_marked")
    assert topup.updated_at.isoformat() == "2026-11-30T10:05:00+00:00"


def test_a_mark_without_a_reason_leaves_no_note(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    topup_mark(session=fake_stripe.session(topup.stripe_session_id), state=TopUp.State.EXPIRED)
    assert TopUp.objects.values_list("state", "error").get(pk=topup.pk) == ("expired", "")


def test_a_topup_is_marked_only_expired_or_failed(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    with pytest.raises(ValueError) as caught:
        topup_mark(session=fake_stripe.session(topup.stripe_session_id), state="paid")
    assert str(caught.value) == "A TopUp is marked expired or failed, not 'paid'."
    assert TopUp.objects.get(pk=topup.pk).state == TopUp.State.PENDING


def test_a_receipt_for_a_charge_not_ours_is_ignored(db):
    from accounts.billing.topups import topup_receipt_record

    charge = {
        "id": "ch_x",
        "payment_intent": "pi_not_ours",
        "metadata": {},
        "receipt_url": "https://r.example/1",
    }
    assert topup_receipt_record(charge=charge) is None


def test_a_dispute_before_the_payment_is_credited_names_the_topup_and_its_state(fake_stripe, carol):
    from accounts.billing.topups import topup_dispute_open

    topup = topup_create(user=carol, amount_cents=1000)
    dispute = {
        "id": "dp_early",
        "amount": 1000,
        "payment_intent": None,
        "metadata": {"topup_id": str(topup.pk)},
    }
    with pytest.raises(BillingError) as caught:
        topup_dispute_open(dispute=dispute)
    assert str(caught.value) == f"Top-up {topup.pk} is disputed but not credited yet (pending)."


def test_a_dispute_reported_again_by_a_new_event_counts_once_on_the_topup(fake_stripe, bob):
    from accounts.billing.topups import topup_dispute_open

    topup = paid(fake_stripe, bob, 1000)
    dispute = fake_stripe.dispute(topup.stripe_session_id, 400)
    topup_dispute_open(dispute=dispute)
    assert topup_dispute_open(dispute=dict(dispute)).disputed_cents == 400
    assert balance(bob) == 10_000 + 600


def test_two_disputes_never_take_back_more_than_was_paid_and_not_refunded(fake_stripe, bob):
    from accounts.billing.topups import topup_dispute_open

    topup = paid(fake_stripe, bob, 1000)
    topup_refund(charge=fake_stripe.refund(topup.stripe_session_id, 200))
    topup_dispute_open(dispute=fake_stripe.dispute(topup.stripe_session_id, 500))
    second = topup_dispute_open(dispute=fake_stripe.dispute(topup.stripe_session_id, 900))
    assert (second.refunded_cents, second.disputed_cents) == (200, 800)
    assert balance(bob) == 10_000  # 1,000 bought, all of it refunded or disputed


def test_one_of_two_disputes_won_leaves_the_topup_disputed(fake_stripe, bob, time_machine, caplog):
    from accounts.billing.topups import topup_dispute_close, topup_dispute_open

    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    topup = paid(fake_stripe, bob, 1000)
    first = fake_stripe.dispute(topup.stripe_session_id, 300)
    topup_dispute_open(dispute=first)
    topup_dispute_open(dispute=fake_stripe.dispute(topup.stripe_session_id, 200))
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    with caplog.at_level("INFO", logger="accounts.billing.topups"):
        closed = topup_dispute_close(dispute=dict(first, status="won"))
    assert (closed.state, closed.disputed_cents) == (TopUp.State.DISPUTED, 200)
    assert closed.updated_at.isoformat() == "2026-11-30T10:05:00+00:00"
    assert f"topup {topup.pk}: dispute won, 300 credits given back" in [
        r.getMessage() for r in caplog.records
    ]


@pytest.mark.parametrize(("refund", "state"), [(0, "paid"), (300, "partially_refunded")])
def test_a_dispute_won_puts_the_topup_back_as_its_refunds_left_it(fake_stripe, bob, refund, state):
    from accounts.billing.topups import topup_dispute_close, topup_dispute_open

    topup = paid(fake_stripe, bob, 1000)
    dispute = fake_stripe.dispute(topup.stripe_session_id, 400)
    topup_dispute_open(dispute=dispute)
    if refund:
        topup_refund(charge=fake_stripe.refund(topup.stripe_session_id, refund))
    assert topup_dispute_close(dispute=dict(dispute, status="won")).state == state


def test_a_dispute_closed_before_its_opening_says_which(fake_stripe, bob):
    from accounts.billing.topups import topup_dispute_close

    topup = paid(fake_stripe, bob, 1000)
    dispute = dict(fake_stripe.dispute(topup.stripe_session_id, 400), status="won")
    with pytest.raises(BillingError) as caught:
        topup_dispute_close(dispute=dispute)
    assert str(caught.value) == f"Dispute {dispute['id']} closed before its opening was counted."


def test_a_refund_touches_its_own_topup_only(fake_stripe, carol, bob):
    mine, theirs = paid(fake_stripe, carol, 1000), paid(fake_stripe, bob, 1000)
    topup_refund(charge=fake_stripe.refund(mine.stripe_session_id, 300))
    assert TopUp.objects.values_list("state", "refunded_cents").get(pk=theirs.pk) == ("paid", 0)
    assert TopUp.objects.values_list("state", "refunded_cents").get(pk=mine.pk) == ("partially_refunded", 300)


def test_a_refund_entry_is_keyed_by_its_charge_or_else_its_payment_intent(fake_stripe, carol):
    topup = paid(fake_stripe, carol, 1000)
    charge = fake_stripe.refund(topup.stripe_session_id, 300)
    topup_refund(charge=charge)
    anonymous = dict(fake_stripe.refund(topup.stripe_session_id, 200), id=None)
    topup_refund(charge=anonymous)
    keys = CreditEntry.objects.filter(kind=CreditEntry.Kind.TAKE_BACK).order_by("id")
    assert list(keys.values_list("idempotency_key", flat=True)) == [
        f"stripe:refund:{charge['id']}:300",
        f"stripe:refund:{topup.stripe_payment_intent}:500",
    ]


@pytest.mark.parametrize("reported", [{"amount_refunded": 0}, {"amount_refunded": None}])
def test_a_refund_report_of_nothing_takes_nothing(fake_stripe, carol, reported):
    topup = paid(fake_stripe, carol, 1000)
    topup_refund(charge={**fake_stripe.charge(topup.stripe_session_id), **reported})
    assert balance(carol) == 1000
    assert TopUp.objects.values_list("state", "refunded_cents").get(pk=topup.pk) == ("paid", 0)


def test_a_refund_of_one_cent_takes_one_credit(fake_stripe, carol, time_machine):
    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    topup = paid(fake_stripe, carol, 1000)
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    refunded = topup_refund(charge=fake_stripe.refund(topup.stripe_session_id, 1))
    assert (refunded.refunded_cents, balance(carol)) == (1, 999)
    assert refunded.updated_at.isoformat() == "2026-11-30T10:05:00+00:00"


def test_a_refund_before_the_payment_is_credited_names_the_topup_and_its_state(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    charge = {"id": "ch_early", "amount_refunded": 1000, "payment_intent": None}
    charge["metadata"] = {"topup_id": str(topup.pk)}
    with pytest.raises(BillingError) as caught:
        topup_refund(charge=charge)
    assert str(caught.value) == f"Top-up {topup.pk} is refunded but not credited yet (pending)."


def test_a_refund_of_spent_credits_is_logged_with_what_is_owed(fake_stripe, carol, caplog):
    from accounts.billing.ledger import credits_grant

    topup = paid(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-800, reason="spent on videos")
    with caplog.at_level("WARNING", logger="accounts.billing.topups"):
        topup_refund(charge=fake_stripe.refund(topup.stripe_session_id, 1000))
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"topup {topup.pk} refunded: user {carol.pk} owes 800 credits (already held or spent)"
    ]


def test_a_charge_reported_before_its_session_names_its_topup_by_metadata(fake_stripe, carol):
    """charge.succeeded can come before the session's own event: the metadata names the top-up, and
    the charge's payment intent is kept on it; a charge whose intent differs from the one the top-up
    has, or naming a top-up that does not exist, is not ours."""
    from accounts.billing.topups import topup_receipt_record

    topup = topup_create(user=carol, amount_cents=1000)
    charge = {"id": "ch_1", "payment_intent": "pi_early", "metadata": {"topup_id": str(topup.pk)}}
    assert topup_receipt_record(charge=charge).pk == topup.pk
    assert TopUp.objects.get(pk=topup.pk).stripe_payment_intent == "pi_early"
    other = {"id": "ch_2", "payment_intent": "pi_other", "metadata": {"topup_id": str(topup.pk)}}
    assert topup_receipt_record(charge=other) is None
    ghost = {"id": "ch_3", "payment_intent": "pi_ghost", "metadata": {"topup_id": "987654"}}
    assert topup_receipt_record(charge=ghost) is None


def test_a_session_reported_unpaid_keeps_its_payment_intent_and_stamps_the_row(
    fake_stripe, carol, time_machine
):
    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.session(topup.stripe_session_id)
    session["payment_intent"] = "pi_later"
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    assert topup_fulfil(session=session).stripe_payment_intent == "pi_later"
    assert TopUp.objects.get(pk=topup.pk).updated_at.isoformat() == "2026-11-30T10:05:00+00:00"


def test_a_dispute_without_an_id_is_refused(db):
    from accounts.billing.topups import topup_dispute_open

    with pytest.raises(BillingError) as caught:
        topup_dispute_open(dispute={"amount": 100, "payment_intent": "pi_x"})
    assert str(caught.value) == "The event's dispute has no id."


@pytest.mark.parametrize("amount", [0, None])
def test_a_dispute_of_nothing_takes_nothing(fake_stripe, bob, amount):
    from accounts.billing.topups import topup_dispute_open

    topup = paid(fake_stripe, bob, 1000)
    dispute = dict(fake_stripe.dispute(topup.stripe_session_id), amount=amount)
    assert topup_dispute_open(dispute=dispute).disputed_cents == 0
    assert balance(bob) == 11_000


def test_a_dispute_of_one_cent_takes_one_credit_and_is_logged(fake_stripe, bob, time_machine, caplog):
    from accounts.billing.topups import topup_dispute_open

    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    topup = paid(fake_stripe, bob, 1000)
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    with caplog.at_level("WARNING", logger="accounts.billing.topups"):
        disputed = topup_dispute_open(dispute=fake_stripe.dispute(topup.stripe_session_id, 1))
    assert (disputed.state, disputed.disputed_cents, balance(bob)) == ("disputed", 1, 10_999)
    assert disputed.updated_at.isoformat() == "2026-11-30T10:05:00+00:00"
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"topup {topup.pk} disputed: 1 credits taken back from user {bob.pk} (0 owed)"
    ]


def test_a_session_without_an_id_is_refused(db):
    with pytest.raises(BillingError) as caught:
        topup_fulfil(session={"payment_status": "paid"})
    assert str(caught.value) == "The event's session has no id."


def receipt_kept(fake_stripe, user, url, settings, api_base) -> str:
    """The receipt link a charge.succeeded reporting `url` leaves on a paid top-up, with
    STRIPE_API_BASE set to `api_base` (once the top-up is bought from the fake Stripe)."""
    from accounts.billing.topups import topup_receipt_record

    topup = paid(fake_stripe, user, 1000)
    settings.STRIPE_API_BASE = api_base
    TopUp.objects.filter(pk=topup.pk).update(receipt_url="")
    charge = {"id": "ch_r", "payment_intent": topup.stripe_payment_intent, "receipt_url": url}
    topup_receipt_record(charge=charge)
    return TopUp.objects.get(pk=topup.pk).receipt_url


@pytest.mark.parametrize(
    ("api_base", "url", "kept"),
    [
        ("", "https://pay.stripe.com/receipts/1", True),  # Stripe's own: https
        ("", "http://pay.example.com/receipts/1", False),  # not https, no stand-in
        ("", "/receipts/1", False),  # a relative link is no receipt
        ("", None, False),
        ("http://127.0.0.1:12345/", "http://127.0.0.1:12345/receipts/1", True),  # the stand-in's own
        ("http://127.0.0.1:12345", "http://127.0.0.1:12345/receipts/1", True),
        ("http://127.0.0.1:12345/", "http://other.example/receipts/1", False),
    ],
)
def test_a_receipt_link_is_kept_only_from_stripe_or_the_stand_in(
    fake_stripe, carol, settings, api_base, url, kept
):
    assert receipt_kept(fake_stripe, carol, url, settings, api_base) == (url if kept else "")


def test_a_paid_session_with_its_payment_intent_expanded_brings_the_receipt(fake_stripe, carol, settings):
    topup = topup_create(user=carol, amount_cents=1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    settings.STRIPE_API_BASE = ""
    receipt = "https://pay.stripe.com/receipts/expanded"
    session["payment_intent"] = {
        "id": "pi_expanded",
        "object": "payment_intent",
        "latest_charge": {"id": "ch_x", "object": "charge", "receipt_url": receipt},
    }
    done = topup_fulfil(session=session)
    assert (done.stripe_payment_intent, done.receipt_url) == ("pi_expanded", receipt)
    again = topup_fulfil(session=session)
    assert (again.stripe_payment_intent, again.receipt_url) == ("pi_expanded", receipt)


def test_a_later_report_without_a_payment_intent_keeps_the_one_we_have(fake_stripe, carol):
    topup = paid(fake_stripe, carol, 1000)
    known = topup.stripe_payment_intent
    assert known
    session = dict(fake_stripe.session(topup.stripe_session_id), payment_intent=None)
    assert topup_fulfil(session=session).stripe_payment_intent == known


def test_a_payment_after_a_failure_clears_the_error_and_is_claimed_once(
    fake_stripe, carol, time_machine, caplog
):
    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    topup = topup_create(user=carol, amount_cents=1000)
    topup_mark(session=fake_stripe.session(topup.stripe_session_id), state="failed", reason="declined")
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    topup_fulfil(session=session, paid=False)  # its payment details first, at 10:00
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    with caplog.at_level("INFO", logger="accounts.billing.topups"):
        done = topup_fulfil(session=session)
    assert (done.state, done.error) == ("paid", "")
    assert done.paid_at.isoformat() == done.updated_at.isoformat() == "2026-11-30T10:05:00+00:00"
    time_machine.move_to("2026-11-30 10:10:00+00:00", tick=False)
    with caplog.at_level("INFO", logger="accounts.billing.topups"):
        again = topup_fulfil(session=session)
    assert again.paid_at.isoformat() == "2026-11-30T10:05:00+00:00"  # claimed once
    paid_lines = [r.getMessage() for r in caplog.records if " paid: " in r.getMessage()]
    assert paid_lines == [f"topup {topup.pk} paid: 1000 credits for user {carol.pk}"]


@pytest.mark.parametrize("session_id", [42, None, {"object": "checkout.session"}])
def test_a_session_whose_id_is_not_a_string_is_refused(db, session_id):
    with pytest.raises(BillingError, match=r"^The event's session has no id\.$"):
        topup_fulfil(session={"id": session_id, "payment_status": "paid"})


def test_a_paid_session_with_an_empty_reference_is_credited(fake_stripe, carol):
    topup = topup_create(user=carol, amount_cents=1000)
    session = dict(fake_stripe.mark_paid(topup.stripe_session_id), client_reference_id="")
    assert topup_fulfil(session=session).state == TopUp.State.PAID
    assert balance(carol) == 1000


@pytest.mark.parametrize(("amount", "allowed"), [(499, False), (500, True), (50_000, True), (50_001, False)])
def test_a_topup_is_made_only_within_its_bounds(fake_stripe, carol, settings, amount, allowed):
    settings.TOPUP_MIN_CENTS, settings.TOPUP_MAX_CENTS = 500, 50_000
    if allowed:
        assert topup_create(user=carol, amount_cents=amount).amount_cents == amount
        return
    with pytest.raises(ValueError) as caught:
        topup_create(user=carol, amount_cents=amount)
    assert str(caught.value) == f"amount_cents {amount} is outside the top-up bounds."
    assert not TopUp.objects.exists()


# --- topup_sync: the success page asking Stripe, and the payments switched off ----------------------


def test_asking_stripe_about_an_expired_checkout_marks_it_expired(fake_stripe, carol):
    from accounts.billing.topups import topup_sync

    topup = topup_create(user=carol, amount_cents=1000)
    fake_stripe.mark_expired(topup.stripe_session_id)
    synced = topup_sync(topup=topup)
    assert (synced.state, synced.error) == ("expired", "The checkout expired.")
    assert TopUp.objects.values_list("state", "error").get(pk=topup.pk) == (
        "expired",
        "The checkout expired.",
    )


def test_asking_stripe_about_an_open_checkout_keeps_what_it_says_and_stamps_the_row(
    fake_stripe, carol, time_machine
):
    from accounts.billing.topups import topup_sync

    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    topup = topup_create(user=carol, amount_cents=1000)
    fake_stripe.mark_completed_unpaid(topup.stripe_session_id)
    fake_stripe.sessions[topup.stripe_session_id]["payment_intent"] = "pi_on_its_way"
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    synced = topup_sync(topup=topup)
    assert (synced.state, synced.stripe_payment_intent) == ("pending", "pi_on_its_way")
    assert synced.updated_at.isoformat() == "2026-11-30T10:05:00+00:00"


def test_stripe_answering_about_another_session_is_refused(fake_stripe, carol):
    from accounts.billing.topups import topup_sync

    topup = topup_create(user=carol, amount_cents=1000)
    fake_stripe.sessions[topup.stripe_session_id]["id"] = "cs_someone_else"
    with pytest.raises(BillingError) as caught:
        topup_sync(topup=topup)
    assert str(caught.value) == "Stripe answered with session 'cs_someone_else'."
    assert TopUp.objects.get(pk=topup.pk).state == TopUp.State.PENDING


@pytest.mark.parametrize(
    ("unset", "missing"),
    [
        (["STRIPE_SECRET_KEY"], ["STRIPE_SECRET_KEY"]),
        (["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"], ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"]),
    ],
)
def test_a_topup_without_stripe_keys_names_what_is_missing(carol, settings, unset, missing):
    from accounts.billing.topups import PaymentsUnconfigured

    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", "whsec_x"
    for name in unset:
        setattr(settings, name, "")
    with pytest.raises(PaymentsUnconfigured) as caught:
        topup_create(user=carol, amount_cents=1000)
    assert caught.value.missing == missing
    assert str(caught.value) == f"Top-ups are unavailable: {', '.join(missing)} not set."
    assert not TopUp.objects.exists()


def test_a_checkout_stripe_refuses_fails_its_own_topup_only(fake_stripe, carol, bob, time_machine):
    from accounts.billing.stripe_client import StripeCallFailed

    time_machine.move_to("2026-11-30 10:00:00+00:00", tick=False)
    theirs = topup_create(user=bob, amount_cents=1000)
    time_machine.move_to("2026-11-30 10:05:00+00:00", tick=False)
    fake_stripe.fail_next(400, error_type="invalid_request_error")
    with pytest.raises(StripeCallFailed):
        topup_create(user=carol, amount_cents=1000)
    mine = TopUp.objects.get(user=carol)
    assert (mine.state, mine.updated_at.isoformat()) == ("failed", "2026-11-30T10:05:00+00:00")
    assert mine.error
    assert TopUp.objects.get(pk=theirs.pk).state == TopUp.State.PENDING
