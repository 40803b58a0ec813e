"""Stripe top-ups: every write about a purchase of credits (CONTRACT §4 and §5b).

A payment becomes credits through `topup_fulfil`, and only there. The webhook and the success
page both call it; the ledger entry's idempotency key is the Checkout Session id, and the
TopUp row is locked while it runs, so however many events (or page loads) report one paid
session, at the same moment or days apart, the credits arrive once.

Money going back to the customer takes credits back (CONTRACT §5b "Taking credits back"): a
refund takes the growth of the charge's `amount_refunded`, a dispute its `amount` (given back if
the dispute is won). What the balance cannot cover becomes owed (see accounts.billing.ledger).
Each is one ledger entry under a key named for what Stripe reported, written under the TopUp's
row lock, so however often or concurrently an event is delivered, it counts once.
"""

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from accounts.billing import stripe_client
from accounts.billing.ledger import credits_restore, credits_take_back, credits_topup
from accounts.billing.models import CreditEntry, TopUp

logger = logging.getLogger(__name__)

# A paid session may still be reported after we marked it expired or failed (events arrive
# in any order): money that arrived is always credited.
UNCREDITED = (TopUp.State.PENDING, TopUp.State.EXPIRED, TopUp.State.FAILED)


class PaymentsUnconfigured(Exception):
    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(f"Top-ups are unavailable: {', '.join(missing)} not set.")


class BillingError(Exception):
    """A webhook event we must not acknowledge: it is stored as failed and Stripe retries it."""


def _id(value: Any) -> str:
    """A Stripe reference, whether Stripe sent it as an id or expanded into an object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _receipt_url(value: Any) -> str:
    """The receipt link from a charge, or from a PaymentIntent whose latest charge is expanded."""
    if not isinstance(value, Mapping):
        return ""
    if value.get("object") == "payment_intent":
        return _receipt_url(value.get("latest_charge"))
    url = value.get("receipt_url")
    if not isinstance(url, str):
        return ""
    # Stripe's receipts are https; the local stand-in (STRIPE_API_BASE, the operator's choice)
    # serves its own on its plain-http address.
    standin = settings.STRIPE_API_BASE.rstrip("/") + "/" if settings.STRIPE_API_BASE else None
    return url if url.startswith("https://") or (standin and url.startswith(standin)) else ""


# --- Checkout ---------------------------------------------------------------------------------


def topup_create(*, user, amount_cents: int) -> TopUp:
    """A pending TopUp and the Stripe Checkout Session that pays for it (its URL on the row).

    Raises PaymentsUnconfigured, or stripe_client.StripeCallFailed (the TopUp is then failed:
    nothing can have been paid, since nobody saw a checkout page).
    """
    missing = stripe_client.missing_settings()
    if missing:
        raise PaymentsUnconfigured(missing)
    if not settings.TOPUP_MIN_CENTS <= amount_cents <= settings.TOPUP_MAX_CENTS:
        raise ValueError(f"amount_cents {amount_cents} is outside the top-up bounds.")
    # The row first, so the session can name it and every later event finds it.
    topup = TopUp.objects.create(user=user, amount_cents=amount_cents)
    # {CHECKOUT_SESSION_ID} is Stripe's placeholder, filled in when it redirects back.
    success_url = f"{settings.SITE_URL}{reverse('billing_success')}?session_id={{CHECKOUT_SESSION_ID}}"
    cancel_url = f"{settings.SITE_URL}{reverse('billing_cancel')}"
    try:
        session = stripe_client.checkout_session_create(
            topup_id=topup.pk,
            amount_cents=amount_cents,
            success_url=success_url,
            cancel_url=cancel_url,
            customer_email=user.email,
        )
    except stripe_client.StripeCallFailed as exc:
        TopUp.objects.filter(pk=topup.pk, state=TopUp.State.PENDING).update(
            state=TopUp.State.FAILED, error=str(exc)[:500], updated_at=timezone.now()
        )
        raise
    topup.stripe_session_id = session["id"]
    topup.checkout_url = session.get("url") or ""
    topup.save(update_fields=["stripe_session_id", "checkout_url", "updated_at"])
    return topup


# --- Fulfilment and marks -----------------------------------------------------------------------


def _locked_topup_for_session(session: Mapping[str, Any]) -> TopUp | None:
    session_id = _id(session)
    if not session_id:
        raise BillingError("The event's session has no id.")
    topup = TopUp.objects.select_for_update().filter(stripe_session_id=session_id).first()
    if topup is None:
        return None
    reference = session.get("client_reference_id")
    if reference not in (None, "", str(topup.pk)):
        raise BillingError(f"Session {session_id} names top-up {reference}, but belongs to {topup.pk}.")
    return topup


def _payment_details(topup: TopUp, session: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    payment_intent = _id(session.get("payment_intent"))
    if payment_intent and payment_intent != topup.stripe_payment_intent:
        changes["stripe_payment_intent"] = payment_intent
    receipt = _receipt_url(session.get("payment_intent"))
    if receipt and receipt != topup.receipt_url:
        changes["receipt_url"] = receipt
    return changes


def topup_fulfil(*, session: Mapping[str, Any], paid: bool | None = None) -> TopUp | None:
    """Credit the TopUp that `session` pays for, exactly once. None when the session is not ours.

    `paid` defaults to the session's own `payment_status == "paid"`; the event
    `checkout.session.async_payment_succeeded` says so by its type (CONTRACT §5b).
    Safe to call any number of times, from any number of processes at once.
    """
    is_paid = session.get("payment_status") == "paid" if paid is None else paid
    with transaction.atomic():
        # The lock makes concurrent fulfilments of one session queue here; the ledger's unique
        # key would stop a second credit anyway, this keeps the TopUp's claim in step with it.
        topup = _locked_topup_for_session(session)
        if topup is None:
            return None
        changes = _payment_details(topup, session)
        if changes:
            TopUp.objects.filter(pk=topup.pk).update(**changes, updated_at=timezone.now())
        if is_paid:
            amount_total, currency = session.get("amount_total"), session.get("currency")
            if amount_total != topup.amount_cents or (currency and currency != topup.currency):
                raise BillingError(
                    f"Session {topup.stripe_session_id} paid {amount_total} {currency}; "
                    f"top-up {topup.pk} is {topup.amount_cents} {topup.currency}. Nothing credited."
                )
            credits_topup(
                user_id=topup.user_id,
                amount_cents=topup.amount_cents,
                description=f"Top-up: {topup.amount_cents:,} credits",
                idempotency_key=f"stripe:checkout:{topup.stripe_session_id}",
                reference=f"topup:{topup.pk}",
            )
            now = timezone.now()
            claimed = TopUp.objects.filter(pk=topup.pk, state__in=UNCREDITED).update(
                state=TopUp.State.PAID, paid_at=now, error="", updated_at=now
            )
            if claimed:
                logger.info(
                    "topup %s paid: %s credits for user %s", topup.pk, topup.amount_cents, topup.user_id
                )
    topup.refresh_from_db()
    return topup


def topup_mark(*, session: Mapping[str, Any], state: str, reason: str = "") -> TopUp | None:
    """Mark a still-pending TopUp expired or failed; a paid one keeps its state. None if not ours."""
    if state not in (TopUp.State.EXPIRED, TopUp.State.FAILED):
        raise ValueError(f"A TopUp is marked expired or failed, not {state!r}.")
    with transaction.atomic():
        topup = _locked_topup_for_session(session)
        if topup is None:
            return None
        changes = _payment_details(topup, session)
        TopUp.objects.filter(pk=topup.pk, state=TopUp.State.PENDING).update(
            state=state, error=reason[:500], updated_at=timezone.now(), **changes
        )
    topup.refresh_from_db()
    return topup


def topup_sync(*, topup: TopUp) -> TopUp:
    """Ask Stripe about the TopUp's session and act on the answer, as its webhook would.

    For the success page (the webhook may be late) and the admin. Raises
    stripe_client.StripeCallFailed when Stripe cannot answer; nothing is changed then.
    """
    if not topup.stripe_session_id:
        return topup
    session = stripe_client.checkout_session_retrieve(topup.stripe_session_id)
    if session.get("id") != topup.stripe_session_id:
        raise BillingError(f"Stripe answered with session {session.get('id')!r}.")
    if session.get("payment_status") == "paid":
        return topup_fulfil(session=session) or topup
    if session.get("status") == "expired":
        return topup_mark(session=session, state=TopUp.State.EXPIRED, reason="The checkout expired.") or topup
    # Open, or complete with the payment still on its way: nothing to do but remember details.
    with transaction.atomic():
        locked = _locked_topup_for_session(session)
        changes = _payment_details(locked, session) if locked else {}
        if changes:
            TopUp.objects.filter(pk=topup.pk).update(**changes, updated_at=timezone.now())
    topup.refresh_from_db()
    return topup


# --- Charges: receipts and refunds ----------------------------------------------------------------


def _locked_topup_for_charge(charge: Mapping[str, Any]) -> TopUp | None:
    payment_intent = _id(charge.get("payment_intent"))
    if payment_intent:
        topup = TopUp.objects.select_for_update().filter(stripe_payment_intent=payment_intent).first()
        if topup is not None:
            return topup
    # The charge can be reported before the session's own event told us its PaymentIntent;
    # the metadata we put on the PaymentIntent is copied onto the charge.
    hint = str((charge.get("metadata") or {}).get("topup_id") or "")
    if not hint.isdigit():
        return None
    topup = TopUp.objects.select_for_update().filter(pk=int(hint)).first()
    if topup is None or (topup.stripe_payment_intent and topup.stripe_payment_intent != payment_intent):
        return None
    if payment_intent and not topup.stripe_payment_intent:
        topup.stripe_payment_intent = payment_intent
        topup.save(update_fields=["stripe_payment_intent", "updated_at"])
    return topup


def topup_receipt_record(*, charge: Mapping[str, Any]) -> TopUp | None:
    """Remember the charge's receipt link on its TopUp. None when the charge is not ours."""
    with transaction.atomic():
        topup = _locked_topup_for_charge(charge)
        receipt = _receipt_url(charge)
        if topup is not None and receipt and receipt != topup.receipt_url:
            topup.receipt_url = receipt
            topup.save(update_fields=["receipt_url", "updated_at"])
    return topup


def topup_refund(*, charge: Mapping[str, Any]) -> TopUp | None:
    """Take back the credits a refund of `charge` paid back: what the balance holds at once, the
    rest as owed (paid by the next credits to arrive). None when the charge is not ours.

    `amount_refunded` is cumulative, so only its growth past what this TopUp has already given
    back is taken: a redelivered or an older event takes nothing.
    """
    charge_id = _id(charge)
    with transaction.atomic():
        topup = _locked_topup_for_charge(charge)
        if topup is None:
            return None
        if not topup.credited:
            # Its credits are not given yet (the payment event is still on its way): taking
            # back now would be taking what was never given. Fail, so that Stripe retries.
            raise BillingError(f"Top-up {topup.pk} is refunded but not credited yet ({topup.state}).")
        refunded_total = min(int(charge.get("amount_refunded") or 0), topup.amount_cents)
        delta = refunded_total - topup.refunded_cents
        receipt = _receipt_url(charge) or topup.receipt_url
        if delta <= 0:
            return topup
        entry = credits_take_back(
            user_id=topup.user_id,
            amount_cents=delta,
            description=f"Refund of top-up {topup.pk}: {delta:,} credits taken back",
            idempotency_key=f"stripe:refund:{charge_id or topup.stripe_payment_intent}:{refunded_total}",
            reference=f"topup:{topup.pk}",
        )
        state = (
            TopUp.State.REFUNDED if refunded_total >= topup.amount_cents else TopUp.State.PARTIALLY_REFUNDED
        )
        # The row is locked, so the guard on refunded_cents only documents what we read.
        TopUp.objects.filter(pk=topup.pk, refunded_cents=topup.refunded_cents).update(
            state=state,
            refunded_cents=refunded_total,
            shortfall_cents=F("shortfall_cents") + entry.owed_cents,
            receipt_url=receipt,
            updated_at=timezone.now(),
        )
        if entry.owed_cents:
            logger.warning(
                "topup %s refunded: user %s owes %s credits (already held or spent)",
                topup.pk,
                topup.user_id,
                entry.owed_cents,
            )
    topup.refresh_from_db()
    return topup


# --- Disputes (chargebacks) ----------------------------------------------------------------------

# A dispute closed as won, or an inquiry closed without becoming a chargeback: the money stayed ours.
DISPUTE_GIVEN_BACK = ("won", "warning_closed")


def _state_without_dispute(topup: TopUp) -> str:
    if topup.refunded_cents >= topup.amount_cents:
        return TopUp.State.REFUNDED
    return TopUp.State.PARTIALLY_REFUNDED if topup.refunded_cents else TopUp.State.PAID


def _dispute_key(dispute: Mapping[str, Any]) -> str:
    dispute_id = _id(dispute)
    if not dispute_id:
        raise BillingError("The event's dispute has no id.")
    return f"stripe:dispute:{dispute_id}"


def topup_dispute_open(*, dispute: Mapping[str, Any]) -> TopUp | None:
    """`charge.dispute.created`: take the disputed amount back, as a refund would (what the balance
    cannot cover becomes owed). Counted once per dispute. None when the payment is not ours."""
    key = _dispute_key(dispute)
    with transaction.atomic():
        topup = _locked_topup_for_charge(dispute)
        if topup is None:
            return None
        if not topup.credited:
            raise BillingError(f"Top-up {topup.pk} is disputed but not credited yet ({topup.state}).")
        if CreditEntry.objects.filter(idempotency_key=key).exists():
            return topup  # this dispute was counted already (the TopUp's lock makes this final)
        # Stripe never disputes more than was paid and not refunded; never take back more either.
        disputable = topup.amount_cents - topup.refunded_cents - topup.disputed_cents
        amount = min(int(dispute.get("amount") or 0), disputable)
        if amount <= 0:
            return topup
        entry = credits_take_back(
            user_id=topup.user_id,
            amount_cents=amount,
            description=f"Payment for top-up {topup.pk} disputed: {amount:,} credits taken back",
            idempotency_key=key,
            reference=f"topup:{topup.pk}",
        )
        TopUp.objects.filter(pk=topup.pk).update(
            state=TopUp.State.DISPUTED,
            disputed_cents=F("disputed_cents") + amount,
            shortfall_cents=F("shortfall_cents") + entry.owed_cents,
            updated_at=timezone.now(),
        )
        logger.warning(
            "topup %s disputed: %s credits taken back from user %s (%s owed)",
            topup.pk,
            amount,
            topup.user_id,
            entry.owed_cents,
        )
    topup.refresh_from_db()
    return topup


def topup_dispute_close(*, dispute: Mapping[str, Any]) -> TopUp | None:
    """`charge.dispute.closed`: a dispute won gives back what its opening took (paying what is owed
    first); one lost keeps it taken. Counted once per dispute. None when the payment is not ours."""
    key = _dispute_key(dispute)
    with transaction.atomic():
        topup = _locked_topup_for_charge(dispute)
        if topup is None:
            return None
        if dispute.get("status") not in DISPUTE_GIVEN_BACK:
            return topup
        taken = CreditEntry.objects.filter(idempotency_key=key).first()
        if taken is None:
            # Its opening is not counted yet (events arrive in any order): giving back now would
            # give what was never taken. Fail, so that Stripe retries once the opening is in.
            raise BillingError(f"Dispute {_id(dispute)} closed before its opening was counted.")
        given_back_key = f"{key}:given_back"
        if CreditEntry.objects.filter(idempotency_key=given_back_key).exists():
            return topup
        amount = -taken.amount_cents
        credits_restore(
            user_id=topup.user_id,
            amount_cents=amount,
            description=f"Dispute over top-up {topup.pk} won: {amount:,} credits given back",
            idempotency_key=given_back_key,
            reference=f"topup:{topup.pk}",
        )
        topup.disputed_cents -= amount
        TopUp.objects.filter(pk=topup.pk).update(
            state=_state_without_dispute(topup) if not topup.disputed_cents else TopUp.State.DISPUTED,
            disputed_cents=F("disputed_cents") - amount,
            updated_at=timezone.now(),
        )
        logger.info("topup %s: dispute won, %s credits given back", topup.pk, amount)
    topup.refresh_from_db()
    return topup
