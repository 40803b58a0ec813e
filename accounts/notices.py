"""Emails people asked for: a video ready or failed, the balance below their mark.

Each is one EmailNotice row whose unique key names the event, made in the transaction that caused
it; a worker sends it once that commits. However often an event is processed, or a job retried,
there is one row, and the worker claims it (pending → sending) before it sends: one email per event.
A send that fails goes back to pending for the next try; one interrupted mid-send stays unsent
rather than risk a second copy.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F
from django.template import loader
from django.urls import reverse
from django.utils import timezone

from accounts.models import CreditEntry, EmailNotice, User

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
# A pending notice older than this has lost its job (Redis restarted): the sweeper queues it again.
RESEND_AFTER = timedelta(minutes=5)


def _enqueue(notice_id: int) -> None:
    from rq import Retry

    from seedance_site.queues import get_queue

    get_queue("default").enqueue(
        "accounts.jobs.send_notice", notice_id, retry=Retry(max=3, interval=[10, 60, 300])
    )


def notice_queue(
    *,
    user: User,
    kind: str,
    key: str,
    subject: str,
    template: str,
    context: dict,
) -> EmailNotice | None:
    """Render the email from `template` (.txt and .html) and queue it once for this event `key`.
    None when the user has no address."""
    if not user.email:
        return None
    context = {**context, "user": user, "site_url": settings.SITE_URL, "site_name": "Seedance Studio"}
    notice, created = EmailNotice.objects.get_or_create(
        key=key,
        defaults={
            "user": user,
            "kind": kind,
            "to_email": user.email,
            "subject": subject[:300],
            "text_body": loader.render_to_string(f"{template}.txt", context),
            "html_body": loader.render_to_string(f"{template}.html", context),
        },
    )
    if created:
        transaction.on_commit(lambda: _enqueue(notice.pk))
    return notice


def notice_send(*, notice_id: int) -> bool:
    """Send one notice if nobody has; True when this call sent it."""
    claimed = EmailNotice.objects.filter(pk=notice_id, state=EmailNotice.State.PENDING).update(
        state=EmailNotice.State.SENDING, attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    notice = EmailNotice.objects.get(pk=notice_id)
    message = EmailMultiAlternatives(
        notice.subject, notice.text_body, settings.DEFAULT_FROM_EMAIL, [notice.to_email]
    )
    message.attach_alternative(notice.html_body, "text/html")
    try:
        message.send()
    except Exception as exc:
        # Not sent (the server refused, or could not be reached): another try may work.
        state = EmailNotice.State.FAILED if notice.attempts >= MAX_ATTEMPTS else EmailNotice.State.PENDING
        EmailNotice.objects.filter(pk=notice_id, state=EmailNotice.State.SENDING).update(
            state=state, error=f"{exc.__class__.__name__}: {exc}"[:2000]
        )
        raise
    EmailNotice.objects.filter(pk=notice_id).update(state=EmailNotice.State.SENT, sent_at=timezone.now())
    logger.info("email notice %s (%s) sent to user %s", notice_id, notice.kind, notice.user_id)
    return True


def notices_resume(*, now: datetime | None = None) -> list[str]:
    """Queue again the pending notices whose jobs were lost; one line for each."""
    cutoff = (now or timezone.now()) - RESEND_AFTER
    lines = []
    for notice_id in EmailNotice.objects.filter(
        state=EmailNotice.State.PENDING, created_at__lt=cutoff
    ).values_list("pk", flat=True)[:500]:
        _enqueue(notice_id)
        lines.append(f"email notice {notice_id} queued again")
    return lines


def usd(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def balance_low_notice(*, user: User, entry: CreditEntry, threshold: int | None) -> EmailNotice | None:
    """Queue the "balance below $X" email (X: `threshold`, the user's low_balance_email_cents, read
    by the caller with what else it needs of their settings) when this debit took the balance from
    at least X to below it: once per crossing, never again for later debits while it stays below."""
    if threshold is None or entry.amount_cents >= 0:
        return None
    before = entry.balance_after - entry.amount_cents
    if not before >= threshold > entry.balance_after:
        return None
    return notice_queue(
        user=user,
        kind=EmailNotice.Kind.BALANCE_LOW,
        key=f"balance-low:{entry.pk}",
        subject=f"Your Seedance Studio balance is below {usd(threshold)}",
        template="emails/balance_low",
        context={
            "balance": usd(entry.balance_after),
            "threshold": usd(threshold),
            "billing_url": settings.SITE_URL + reverse("billing"),
            "account_url": settings.SITE_URL + reverse("account"),
        },
    )
