"""Stripe's webhook events, stored first and handled once (dj-stripe's way; CONTRACT §5, §5b).

`stripe_event_receive` stores a verified event under its Stripe id, so a redelivery finds the
first row. `stripe_event_process` handles it in a transaction under a lock on that row: a
redelivery of a handled event changes nothing, a failed one is handled again (by Stripe's
retry, or an operator's "process again"). The handlers are the services in
accounts.billing.topups, each idempotent on its own as well.
"""

import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.billing.models import StripeEvent, TopUp
from accounts.billing.topups import (
    topup_dispute_close,
    topup_dispute_open,
    topup_fulfil,
    topup_mark,
    topup_receipt_record,
    topup_refund,
)

logger = logging.getLogger(__name__)

# Event types we act on; anything else is stored as ignored and answered 200.
SESSION_COMPLETED = "checkout.session.completed"
SESSION_ASYNC_SUCCEEDED = "checkout.session.async_payment_succeeded"
SESSION_ASYNC_FAILED = "checkout.session.async_payment_failed"
SESSION_EXPIRED = "checkout.session.expired"
CHARGE_SUCCEEDED = "charge.succeeded"
CHARGE_REFUNDED = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"
DISPUTE_CLOSED = "charge.dispute.closed"


class StripeEventFailed(Exception):
    def __init__(self, event: StripeEvent, cause: BaseException) -> None:
        self.event = event
        super().__init__(f"Stripe event {event.stripe_id} ({event.type}) failed: {cause}")


# --- Webhook events ----------------------------------------------------------------------------

Outcome = tuple[str, str]  # (StripeEvent state, a note for operators)


def _outcome(topup: TopUp | None, what: str) -> Outcome:
    if topup is None:
        return StripeEvent.State.IGNORED, f"No top-up of ours matches this {what}."
    return StripeEvent.State.PROCESSED, f"Top-up {topup.pk}: {topup.state}."


def _on_session_completed(session: Mapping[str, Any]) -> Outcome:
    # With a delayed payment method the session completes unpaid; async_payment_* follows.
    return _outcome(topup_fulfil(session=session), "session")


def _on_async_succeeded(session: Mapping[str, Any]) -> Outcome:
    return _outcome(topup_fulfil(session=session, paid=True), "session")


def _on_async_failed(session: Mapping[str, Any]) -> Outcome:
    topup = topup_mark(session=session, state=TopUp.State.FAILED, reason="The payment did not go through.")
    return _outcome(topup, "session")


def _on_expired(session: Mapping[str, Any]) -> Outcome:
    topup = topup_mark(session=session, state=TopUp.State.EXPIRED, reason="The checkout expired unpaid.")
    return _outcome(topup, "session")


def _on_charge_succeeded(charge: Mapping[str, Any]) -> Outcome:
    return _outcome(topup_receipt_record(charge=charge), "charge")


def _on_charge_refunded(charge: Mapping[str, Any]) -> Outcome:
    return _outcome(topup_refund(charge=charge), "charge")


def _on_dispute_created(dispute: Mapping[str, Any]) -> Outcome:
    return _outcome(topup_dispute_open(dispute=dispute), "dispute")


def _on_dispute_closed(dispute: Mapping[str, Any]) -> Outcome:
    return _outcome(topup_dispute_close(dispute=dispute), "dispute")


HANDLERS: dict[str, Callable[[Mapping[str, Any]], Outcome]] = {
    SESSION_COMPLETED: _on_session_completed,
    SESSION_ASYNC_SUCCEEDED: _on_async_succeeded,
    SESSION_ASYNC_FAILED: _on_async_failed,
    SESSION_EXPIRED: _on_expired,
    CHARGE_SUCCEEDED: _on_charge_succeeded,
    CHARGE_REFUNDED: _on_charge_refunded,
    DISPUTE_CREATED: _on_dispute_created,
    DISPUTE_CLOSED: _on_dispute_closed,
}
DONE = (StripeEvent.State.PROCESSED, StripeEvent.State.IGNORED)


def stripe_event_receive(*, event: Mapping[str, Any]) -> StripeEvent:
    """Store a verified event under its Stripe id; a redelivery returns the stored row."""
    row, _ = StripeEvent.objects.get_or_create(
        stripe_id=event["id"], defaults={"type": str(event["type"])[:100], "payload": dict(event)}
    )
    return row


def stripe_event_process(*, event_id: int, force: bool = False) -> StripeEvent:
    """Handle a stored event once; `force` handles a done one again (the handlers are idempotent).

    Raises StripeEventFailed when the handler fails: its writes are rolled back, the event is
    stored as failed with the error, and the webhook answers 500 so that Stripe retries.
    """
    failure: BaseException | None = None
    with transaction.atomic():
        # Concurrent deliveries of one event queue on this lock; the later ones see it done.
        event = StripeEvent.objects.select_for_update().get(pk=event_id)
        if event.state in DONE and not force:
            return event
        handler = HANDLERS.get(event.type)
        if handler is None:
            state, note = StripeEvent.State.IGNORED, "We do not act on this event type."
        else:
            try:
                with transaction.atomic():
                    state, note = handler(event.payload["data"]["object"])
            except Exception as exc:  # noqa: BLE001 - any handler error is stored, then re-raised
                failure = exc
                state, note = StripeEvent.State.FAILED, f"{exc.__class__.__name__}: {exc}"
        now = timezone.now()
        StripeEvent.objects.filter(pk=event.pk).update(
            state=state,
            error=note[:2000],
            attempts=F("attempts") + 1,
            processed_at=F("processed_at") if state == StripeEvent.State.FAILED else now,
            updated_at=now,
        )
    event.refresh_from_db()
    if failure is not None:
        logger.error("stripe event %s (%s) failed: %s", event.stripe_id, event.type, event.error)
        raise StripeEventFailed(event, failure) from failure
    logger.info("stripe event %s (%s): %s", event.stripe_id, event.type, event.state)
    return event
