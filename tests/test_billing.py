"""Stripe top-ups: signed webhooks turn paid sessions into credits exactly once (issue 5).

Real HTTP throughout: the portal's Stripe calls go to the fake Stripe on loopback, and the
webhook receives JSON bodies signed exactly as Stripe signs them.
"""

import json
import threading
import time

import pytest
from django.db import connections
from django.test import Client

from accounts.billing.audit import audit_mismatches
from accounts.billing.ledger import credits_grant
from accounts.billing.topups import topup_create, topup_fulfil
from accounts.models import CreditEntry, StripeEvent, TopUp, User
from tests.factories import balance, make_user, manage, owed
from tests.fake_stripe import WEBHOOK_SECRET, FakeStripe, deliver, sign

# After every test here, each balance still equals the sum of its ledger.
pytestmark = pytest.mark.usefixtures("books_balance")


def topup_entries(topup: TopUp):
    return CreditEntry.objects.filter(reference=f"topup:{topup.pk}").order_by("id")


def buy(fake: FakeStripe, user: User, amount_cents: int = 1000) -> TopUp:
    topup = topup_create(user=user, amount_cents=amount_cents)
    assert topup.stripe_session_id in fake.sessions
    return topup


def paid_event(fake: FakeStripe, topup: TopUp, **kwargs):
    return fake.event("checkout.session.completed", fake.mark_paid(topup.stripe_session_id), **kwargs)


# --- paying ---------------------------------------------------------------------------------------


def test_paid_session_credits_the_amount_once(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 2500)

    response = deliver(paid_event(fake_stripe, topup))

    assert response.status_code == 200
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PAID
    assert topup.paid_at is not None
    assert topup.stripe_payment_intent.startswith("pi_test_")
    assert balance(carol) == 2500
    (entry,) = topup_entries(topup)
    assert entry.kind == CreditEntry.Kind.TOPUP
    assert entry.amount_cents == 2500
    assert entry.idempotency_key == f"stripe:checkout:{topup.stripe_session_id}"
    event = StripeEvent.objects.get()
    assert (event.type, event.state, event.attempts) == ("checkout.session.completed", "processed", 1)


def test_completed_but_unpaid_session_credits_nothing_until_async_payment_succeeds(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    unpaid = fake_stripe.mark_completed_unpaid(topup.stripe_session_id)

    assert deliver(fake_stripe.event("checkout.session.completed", unpaid)).status_code == 200
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PENDING
    assert balance(carol) == 0

    later = fake_stripe.mark_paid(topup.stripe_session_id)
    assert deliver(fake_stripe.event("checkout.session.async_payment_succeeded", later)).status_code == 200
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PAID
    assert balance(carol) == 1000
    assert topup_entries(topup).count() == 1


def test_async_payment_succeeded_is_paid_by_its_type(fake_stripe, carol):
    # CONTRACT §5b: this event type means paid, whatever the payload's payment_status says.
    topup = buy(fake_stripe, carol, 1000)
    session = fake_stripe.mark_completed_unpaid(topup.stripe_session_id)

    deliver(fake_stripe.event("checkout.session.async_payment_succeeded", session))

    assert balance(carol) == 1000


def test_redelivered_event_is_processed_once(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    event = paid_event(fake_stripe, topup)

    first, second, third = deliver(event), deliver(event), deliver(event)

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert balance(carol) == 1000
    assert topup_entries(topup).count() == 1
    stored = StripeEvent.objects.get()
    assert (stored.state, stored.attempts) == ("processed", 1)


def test_two_event_types_for_one_session_credit_once(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 5000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)

    deliver(fake_stripe.event("checkout.session.completed", session))
    deliver(fake_stripe.event("checkout.session.async_payment_succeeded", session))

    assert balance(carol) == 5000
    assert topup_entries(topup).count() == 1
    assert list(StripeEvent.objects.values_list("state", flat=True)) == ["processed", "processed"]


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_deliveries_credit_once(fake_stripe):
    carol = make_user("carol")
    topup = buy(fake_stripe, carol, 10_000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    completed = fake_stripe.event("checkout.session.completed", session)
    # The same event redelivered, plus other events about the same payment, all at once.
    events = [completed] * 4 + [
        fake_stripe.event("checkout.session.completed", session),
        fake_stripe.event("checkout.session.completed", session),
        fake_stripe.event("checkout.session.async_payment_succeeded", session),
        fake_stripe.event("checkout.session.async_payment_succeeded", session),
    ]
    start = threading.Barrier(len(events))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post(event) -> None:
        try:
            client = Client()
            start.wait(timeout=10)
            statuses.append(deliver(event, client=client).status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert statuses == [200] * 8
    assert balance(carol) == 10_000
    assert topup_entries(topup).count() == 1
    assert StripeEvent.objects.count() == 5
    assert set(StripeEvent.objects.values_list("state", "attempts")) == {("processed", 1)}
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PAID


def test_paid_amount_that_differs_from_the_topup_fails_the_event_and_credits_nothing(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    session["amount_total"] = 100  # what Stripe says was paid wins over what we asked for

    response = deliver(fake_stripe.event("checkout.session.completed", session))

    assert response.status_code == 500
    assert balance(carol) == 0
    event = StripeEvent.objects.get()
    assert event.state == StripeEvent.State.FAILED
    assert "Nothing credited" in event.error
    topup.refresh_from_db()
    assert topup.state == TopUp.State.PENDING


# --- expired and failed ----------------------------------------------------------------------------


def test_expired_session_marks_the_topup_and_credits_nothing(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)

    response = deliver(
        fake_stripe.event("checkout.session.expired", fake_stripe.mark_expired(topup.stripe_session_id))
    )

    assert response.status_code == 200
    topup.refresh_from_db()
    assert topup.state == TopUp.State.EXPIRED
    assert balance(carol) == 0
    assert StripeEvent.objects.get().state == StripeEvent.State.PROCESSED


def test_async_payment_failed_marks_the_topup_failed(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    session = fake_stripe.mark_completed_unpaid(topup.stripe_session_id)
    deliver(fake_stripe.event("checkout.session.completed", session))

    deliver(fake_stripe.event("checkout.session.async_payment_failed", session))

    topup.refresh_from_db()
    assert topup.state == TopUp.State.FAILED
    assert balance(carol) == 0


def test_late_expiry_event_does_not_undo_a_payment(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    deliver(paid_event(fake_stripe, topup))

    deliver(fake_stripe.event("checkout.session.expired", fake_stripe.session(topup.stripe_session_id)))

    topup.refresh_from_db()
    assert topup.state == TopUp.State.PAID
    assert balance(carol) == 1000


# --- signatures -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="missing"),
        pytest.param("t=1700000000,v1=00", id="garbage"),
        pytest.param("v1=abc", id="no-timestamp"),
    ],
)
def test_missing_or_malformed_signature_is_rejected_and_nothing_stored(fake_stripe, carol, signature):
    topup = buy(fake_stripe, carol, 1000)

    response = deliver(paid_event(fake_stripe, topup), signature=signature)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.objects.count() == 0
    assert balance(carol) == 0


def test_signature_made_with_another_secret_is_rejected(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)

    response = deliver(paid_event(fake_stripe, topup), secret="whsec_someone_else")

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert balance(carol) == 0


def test_signature_over_another_body_is_rejected(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    event = paid_event(fake_stripe, topup)
    genuine = sign(json.dumps(event).encode(), WEBHOOK_SECRET)
    event["data"]["object"]["amount_total"] = 1  # tampered after signing

    response = deliver(event, signature=genuine)

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_stale_signature_is_rejected(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)

    response = deliver(paid_event(fake_stripe, topup), timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert balance(carol) == 0


def test_signature_inside_the_tolerance_is_accepted(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)

    response = deliver(paid_event(fake_stripe, topup), timestamp=int(time.time()) - 240)

    assert response.status_code == 200
    assert balance(carol) == 1000


def test_webhook_answers_503_and_stores_nothing_without_a_secret(fake_stripe, carol, settings):
    topup = buy(fake_stripe, carol, 1000)
    event = paid_event(fake_stripe, topup)
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = deliver(event)

    assert response.status_code == 503
    assert StripeEvent.objects.count() == 0
    assert balance(carol) == 0


def test_webhook_is_csrf_exempt(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)

    response = deliver(paid_event(fake_stripe, topup), client=Client(enforce_csrf_checks=True))

    assert response.status_code == 200


def test_webhook_accepts_only_post(fake_stripe):
    assert Client().get("/webhooks/stripe/").status_code == 405


# --- events we do not act on ---------------------------------------------------------------------


def test_unknown_event_type_is_stored_as_ignored(fake_stripe):
    response = deliver(fake_stripe.event("customer.created", {"id": "cus_test_1", "object": "customer"}))

    assert response.status_code == 200
    event = StripeEvent.objects.get()
    assert (event.type, event.state) == ("customer.created", StripeEvent.State.IGNORED)


def test_event_about_a_session_that_is_not_ours_is_ignored(fake_stripe, carol):
    session = {
        "id": "cs_test_elsewhere",
        "object": "checkout.session",
        "payment_status": "paid",
        "amount_total": 900,
    }

    response = deliver(fake_stripe.event("checkout.session.completed", session))

    assert response.status_code == 200
    assert StripeEvent.objects.get().state == StripeEvent.State.IGNORED
    assert balance(carol) == 0


# --- refunds -------------------------------------------------------------------------------------


def paid_topup(fake: FakeStripe, user: User, amount_cents: int = 1000) -> TopUp:
    topup = buy(fake, user, amount_cents)
    assert deliver(paid_event(fake, topup)).status_code == 200
    return topup


def test_full_refund_takes_the_credits_back(fake_stripe, carol):
    topup = paid_topup(fake_stripe, carol, 2500)

    response = deliver(
        fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 2500))
    )

    assert response.status_code == 200
    topup.refresh_from_db()
    assert (topup.state, topup.refunded_cents, topup.shortfall_cents) == ("refunded", 2500, 0)
    assert topup.receipt_url == f"{fake_stripe.url}/receipts/{topup.stripe_session_id}"
    assert balance(carol) == 0
    assert [e.amount_cents for e in topup_entries(topup)] == [2500, -2500]


def test_partial_refunds_take_back_only_what_each_refund_adds(fake_stripe, bob):
    topup = paid_topup(fake_stripe, bob, 1000)
    first = fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 300))

    deliver(first)

    topup.refresh_from_db()
    assert (topup.state, topup.refunded_cents) == ("partially_refunded", 300)
    assert balance(bob) == 10_000 + 1000 - 300

    second = fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 700))
    deliver(second)
    deliver(first)  # a late redelivery of the older refund takes nothing more

    topup.refresh_from_db()
    assert (topup.state, topup.refunded_cents, topup.shortfall_cents) == ("refunded", 1000, 0)
    assert balance(bob) == 10_000
    assert [e.amount_cents for e in topup_entries(topup)] == [1000, -300, -700]


def test_refund_of_spent_credits_takes_what_is_left_and_the_rest_is_owed(fake_stripe, carol):
    topup = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-700, reason="spent on videos")

    response = deliver(
        fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 1000))
    )

    assert response.status_code == 200
    topup.refresh_from_db()
    assert (topup.state, topup.refunded_cents, topup.shortfall_cents) == ("refunded", 1000, 700)
    assert (balance(carol), owed(carol)) == (0, 700)
    # One event, one entry: its value is what Stripe refunded; 700 of it became owed.
    taken = topup_entries(topup).last()
    assert (taken.kind, taken.amount_cents, taken.owed_cents, taken.balance_after, taken.owed_after) == (
        "take_back",
        -1000,
        700,
        0,
        700,
    )


def test_refund_with_nothing_left_makes_the_whole_refund_owed(fake_stripe, carol):
    topup = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-1000, reason="spent on videos")

    deliver(fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 1000)))

    topup.refresh_from_db()
    assert (topup.refunded_cents, topup.shortfall_cents) == (1000, 1000)
    assert (balance(carol), owed(carol)) == (0, 1000)
    assert [(e.amount_cents, e.owed_cents) for e in topup_entries(topup)] == [(1000, 0), (-1000, 1000)]


def test_the_next_credits_to_arrive_pay_what_is_owed_first(fake_stripe, carol):
    topup = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-1000, reason="spent on videos")
    deliver(fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 1000)))
    assert owed(carol) == 1000

    grant = credits_grant(user=carol, amount_cents=400, reason="a gesture")
    assert (grant.amount_cents, grant.owed_cents, balance(carol), owed(carol)) == (400, -400, 0, 600)

    second = paid_topup(fake_stripe, carol, 1000)  # a top-up pays the rest, then fills the balance

    (credited,) = topup_entries(second)
    assert (credited.amount_cents, credited.owed_cents) == (1000, -600)
    assert (balance(carol), owed(carol)) == (400, 0)


def test_nothing_can_be_charged_while_something_is_owed(fake_stripe, carol):
    from accounts.billing.ledger import InsufficientCredits, credits_charge

    topup = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-900, reason="spent on videos")
    deliver(fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 1000)))

    with pytest.raises(InsufficientCredits):
        credits_charge(user_id=carol.pk, amount_cents=1, description="x", idempotency_key="k", reference="")
    assert (balance(carol), owed(carol)) == (0, 900)


@pytest.mark.django_db(transaction=True)
def test_grant_credits_cannot_take_back_into_debt(fake_stripe):
    # An operator's take-back is never a debt: CONTRACT §3 says it fails and changes nothing.
    carol = make_user("carol")
    topup = paid_topup(fake_stripe, carol, 1000)
    deliver(fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 400)))

    result = manage("grant_credits", "carol", "-601", "--reason", "too much")

    assert result.returncode == 1
    assert (balance(carol), owed(carol)) == (600, 0)
    result = manage("grant_credits", "carol", "-600", "--reason", "all of it")
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "0"


def test_refund_before_the_payment_is_credited_fails_so_stripe_retries_it(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    refund = fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 1000))

    assert deliver(refund).status_code == 500
    assert StripeEvent.objects.get(stripe_id=refund["id"]).state == StripeEvent.State.FAILED
    assert balance(carol) == 0

    deliver(fake_stripe.event("checkout.session.completed", session))
    assert balance(carol) == 1000
    assert deliver(refund).status_code == 200  # Stripe's retry

    stored = StripeEvent.objects.get(stripe_id=refund["id"])
    assert (stored.state, stored.attempts) == ("processed", 2)
    assert balance(carol) == 0


def test_charge_succeeded_records_the_receipt_link(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)
    charge = fake_stripe.charge(topup.stripe_session_id)

    # Before the session's own event: the charge names the top-up through its metadata.
    deliver(fake_stripe.event("charge.succeeded", charge))
    deliver(fake_stripe.event("checkout.session.completed", session))

    topup.refresh_from_db()
    assert topup.receipt_url == charge["receipt_url"]
    assert topup.stripe_payment_intent == charge["payment_intent"]
    assert topup.state == TopUp.State.PAID


# --- disputes (chargebacks) ---------------------------------------------------------------------


def disputed(fake: FakeStripe, topup: TopUp, amount_cents: int | None = None, **kwargs):
    return fake.event("charge.dispute.created", fake.dispute(topup.stripe_session_id, amount_cents), **kwargs)


def closed(fake: FakeStripe, topup: TopUp, status: str, **kwargs):
    return fake.event("charge.dispute.closed", fake.close_dispute(topup.stripe_session_id, status), **kwargs)


def test_dispute_takes_the_disputed_amount_back(fake_stripe, bob):
    topup = paid_topup(fake_stripe, bob, 2500)

    response = deliver(disputed(fake_stripe, topup))

    assert response.status_code == 200
    topup.refresh_from_db()
    assert (topup.state, topup.disputed_cents, topup.shortfall_cents) == ("disputed", 2500, 0)
    assert (balance(bob), owed(bob)) == (10_000, 0)
    taken = topup_entries(topup).last()
    assert (taken.kind, taken.amount_cents) == ("take_back", -2500)
    assert StripeEvent.objects.get(type="charge.dispute.created").state == StripeEvent.State.PROCESSED


def test_dispute_of_spent_credits_takes_what_is_left_and_the_rest_is_owed(fake_stripe, carol):
    topup = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-800, reason="spent on videos")

    deliver(disputed(fake_stripe, topup))

    topup.refresh_from_db()
    assert (topup.disputed_cents, topup.shortfall_cents) == (1000, 800)
    assert (balance(carol), owed(carol)) == (0, 800)


def test_dispute_of_the_unrefunded_rest_after_a_partial_refund(fake_stripe, bob):
    topup = paid_topup(fake_stripe, bob, 1000)
    deliver(fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 300)))

    deliver(disputed(fake_stripe, topup))

    topup.refresh_from_db()
    assert (topup.refunded_cents, topup.disputed_cents) == (300, 700)
    assert balance(bob) == 10_000


def test_dispute_won_gives_the_credits_back_paying_what_is_owed_first(fake_stripe, carol):
    topup = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-800, reason="spent on videos")
    deliver(disputed(fake_stripe, topup))
    assert (balance(carol), owed(carol)) == (0, 800)

    response = deliver(closed(fake_stripe, topup, "won"))

    assert response.status_code == 200
    topup.refresh_from_db()
    assert (topup.state, topup.disputed_cents) == ("paid", 0)
    # As before the dispute: 200 left of the 1,000 bought, nothing owed.
    assert (balance(carol), owed(carol)) == (200, 0)
    given = topup_entries(topup).last()
    assert (given.kind, given.amount_cents, given.owed_cents) == ("restore", 1000, -800)


def test_dispute_lost_keeps_the_credits_taken(fake_stripe, bob):
    topup = paid_topup(fake_stripe, bob, 1000)
    deliver(disputed(fake_stripe, topup))

    deliver(closed(fake_stripe, topup, "lost"))

    topup.refresh_from_db()
    assert (topup.state, topup.disputed_cents) == ("disputed", 1000)
    assert balance(bob) == 10_000
    assert topup_entries(topup).count() == 2


def test_dispute_events_redelivered_or_repeated_count_once(fake_stripe, bob):
    topup = paid_topup(fake_stripe, bob, 1000)
    created = disputed(fake_stripe, topup)
    # The same event again, and another event about the same dispute.
    again = fake_stripe.event("charge.dispute.created", created["data"]["object"])
    for event in (created, created, again):
        assert deliver(event).status_code == 200
    assert balance(bob) == 10_000
    won = closed(fake_stripe, topup, "won")
    for event in (won, won, fake_stripe.event("charge.dispute.closed", won["data"]["object"])):
        assert deliver(event).status_code == 200
    assert balance(bob) == 11_000
    assert [e.kind for e in topup_entries(topup)] == ["topup", "take_back", "restore"]


def test_dispute_closed_before_its_opening_is_counted_fails_so_stripe_retries(fake_stripe, bob):
    topup = paid_topup(fake_stripe, bob, 1000)
    created = disputed(fake_stripe, topup)
    won = closed(fake_stripe, topup, "won")

    assert deliver(won).status_code == 500
    assert balance(bob) == 11_000
    deliver(created)
    assert balance(bob) == 10_000
    assert deliver(won).status_code == 200  # Stripe's retry

    assert balance(bob) == 11_000


def test_dispute_about_a_payment_that_is_not_ours_is_ignored(fake_stripe, bob):
    dispute = {"id": "dp_test_elsewhere", "object": "dispute", "amount": 900, "payment_intent": "pi_x"}

    response = deliver(fake_stripe.event("charge.dispute.created", dispute))

    assert response.status_code == 200
    assert StripeEvent.objects.get().state == StripeEvent.State.IGNORED
    assert balance(bob) == 10_000


@pytest.mark.django_db(transaction=True)
def test_eight_concurrent_dispute_deliveries_take_back_once(fake_stripe):
    carol = make_user("carol")
    topup = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-600, reason="spent on videos")
    created = disputed(fake_stripe, topup)
    # The same event four times, and four other events about the same dispute, all at once.
    events = [created] * 4 + [
        fake_stripe.event("charge.dispute.created", created["data"]["object"]) for _ in range(4)
    ]
    start = threading.Barrier(len(events))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def post(event) -> None:
        try:
            client = Client()
            start.wait(timeout=10)
            statuses.append(deliver(event, client=client).status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert statuses == [200] * 8
    topup.refresh_from_db()
    assert (topup.state, topup.disputed_cents, topup.shortfall_cents) == ("disputed", 1000, 600)
    assert (balance(carol), owed(carol)) == (0, 600)
    assert topup_entries(topup).filter(kind="take_back").count() == 1
    stored = StripeEvent.objects.filter(type="charge.dispute.created")
    assert set(stored.values_list("state", "attempts")) == {("processed", 1)}


# --- the service on its own, and the audit command -----------------------------------------------


def test_fulfil_is_idempotent_when_called_directly(fake_stripe, carol):
    topup = buy(fake_stripe, carol, 1000)
    session = fake_stripe.mark_paid(topup.stripe_session_id)

    for _ in range(3):
        assert topup_fulfil(session=session).state == TopUp.State.PAID

    assert balance(carol) == 1000


@pytest.mark.django_db(transaction=True)
def test_audit_credits_passes_after_payments_refunds_debts_and_disputes(fake_stripe):
    alice, bob, carol = make_user("alice", 10_000), make_user("bob", 100), make_user("carol")
    paid = paid_topup(fake_stripe, alice, 5000)
    deliver(fake_stripe.event("charge.refunded", fake_stripe.refund(paid.stripe_session_id, 2000)))
    short = paid_topup(fake_stripe, carol, 1000)
    credits_grant(user=carol, amount_cents=-900, reason="spent")
    deliver(fake_stripe.event("charge.refunded", fake_stripe.refund(short.stripe_session_id, 1000)))
    expired = buy(fake_stripe, carol, 500)
    deliver(
        fake_stripe.event("checkout.session.expired", fake_stripe.mark_expired(expired.stripe_session_id))
    )
    won, lost = paid_topup(fake_stripe, bob, 700), paid_topup(fake_stripe, bob, 600)
    credits_grant(user=bob, amount_cents=-1000, reason="spent")
    for topup, outcome in ((won, "won"), (lost, "lost")):
        deliver(disputed(fake_stripe, topup))
        deliver(closed(fake_stripe, topup, outcome))

    result = manage("audit_credits")

    assert result.returncode == 0, result.stdout + result.stderr
    assert audit_mismatches() == []
    assert (balance(alice), balance(carol), owed(carol)) == (13_000, 0, 900)
    assert (balance(bob), owed(bob)) == (0, 200)
