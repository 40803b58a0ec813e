"""Webhooks to users' own servers (CONTRACT §4c): when a generation with a `webhook_url` ends, its
JSON is POSTed there, signed by the Standard Webhooks scheme with the account's secret.

- One WebhookDelivery per generation and event, made in the transaction that ended it, with a
  `webhook-id` fixed for good: every try carries the same one, so receivers can drop repeats.
- Each try is a claim (a lease on `next_attempt_at`), so a job queued twice tries once; each is
  recorded as a WebhookAttempt (when, status code or error, how long).
- Tries go through seedance_site.outbound: the host is looked up again for each (a DNS answer
  can change since submit), the address checked (private ones refused unless
  WEBHOOK_ALLOW_PRIVATE_ADDRESSES), the connection pinned to it, no redirect followed, and the
  whole exchange cut off at WEBHOOK_TIMEOUT_SECONDS: a slow receiver never holds a worker longer.
- Anything but a 2xx in time is tried again after growing delays (RETRY_DELAYS, the first within
  a minute), for more than a day in all; then the delivery is marked failed, and its owner can
  send it again from the account page.
"""

import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.models import User
from accounts.preferences import webhook_signing_secrets
from generations.models import Generation, WebhookAttempt, WebhookDelivery
from seedance_site import outbound

logger = logging.getLogger(__name__)
State = WebhookDelivery.State

WEBHOOK_URL_MAX = 2000
# Seconds to wait after each failed try of a round: 30 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
# (the schedule Standard Webhooks' reference service uses): eight tries over about 27.5 hours.
RETRY_DELAYS = (30, 300, 1800, 7200, 18000, 36000, 36000)
# A try holds its delivery this long; one whose worker died is picked up again after it.
LEASE = timedelta(seconds=60)
CONNECT_TIMEOUT = 5.0
USER_AGENT = "SeedanceStudio-Webhooks/1"


# --- At submit ------------------------------------------------------------------------------


def webhook_url_error(url: str) -> str | None:
    """Why `url` cannot take webhooks, in words for its owner; None when it can.

    The host is looked up now, to refuse a private, loopback or link-local address at once. A
    host that does not resolve yet is accepted (its DNS may be on its way); every delivery checks
    again anyway."""
    if len(url) > WEBHOOK_URL_MAX:
        return f"The webhook URL must be at most {WEBHOOK_URL_MAX:,} characters."
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:  # its own message is too vague to show
        return (
            "The webhook URL must be a full http:// or https:// address, such as https://example.com/hooks."
        )
    if settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        return None  # nothing to refuse, so no need to wait for DNS
    try:
        outbound.resolve(url)
    except outbound.OutboundRefused as exc:
        return f"The webhook URL must point to a public address: {exc}."
    except outbound.OutboundUnresolvable:
        return None
    return None


# --- When a generation ends -----------------------------------------------------------------


def _enqueue(delivery_id: int, *, delay: float | None = None) -> None:
    from generations.services import enqueue

    enqueue("generations.jobs.deliver_webhook", delivery_id, delay=delay)


def webhook_delivery_create(*, generation: Generation) -> WebhookDelivery | None:
    """Called in the transaction that ended `generation`: the delivery row, and its first try
    once that commits."""
    if not generation.webhook_url or not generation.is_finished:
        return None
    delivery, created = WebhookDelivery.objects.get_or_create(
        generation=generation,
        event=f"generation.{generation.public_status}",
        defaults={
            "user_id": generation.user_id,
            "webhook_id": f"msg_{uuid.uuid4().hex}",
            "url": generation.webhook_url,
            "next_attempt_at": timezone.now(),
        },
    )
    if created:
        transaction.on_commit(lambda: _enqueue(delivery.pk))
    return delivery


# --- Delivering -----------------------------------------------------------------------------


def payload(generation: Generation) -> dict[str, Any]:
    """The generation object, exactly as `GET /api/v1/generations/<id>` shows it (a fresh
    `video_url` on every try: the signed link expires, a retry a day later needs a new one)."""
    from generations.api import Generation as GenerationSchema

    return GenerationSchema.model_validate(generation, context={"request": None}).model_dump(mode="json")


def signed_headers(*, webhook_id: str, body: str, secrets: list[str], now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers; `webhook-signature` carries one `v1,` signature per secret,
    space-separated, as the scheme allows during a rotation."""
    signatures = [Webhook(secret).sign(msg_id=webhook_id, timestamp=now, data=body) for secret in secrets]
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def _try(delivery: WebhookDelivery) -> tuple[int | None, str]:
    """POST once; (status code, "") for an answer, else (None or the code, why it failed)."""
    now = timezone.now()
    body = json.dumps(payload(delivery.generation))
    headers = signed_headers(
        webhook_id=delivery.webhook_id,
        body=body,
        secrets=webhook_signing_secrets(user=delivery.user, now=now),
        now=now,
    )
    total = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        response = outbound.send(
            "POST",
            delivery.url,
            data=body.encode(),
            headers=headers,
            timeout=(min(CONNECT_TIMEOUT, total), total),
            deadline=total,
            allow_private=settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES,
            stream=True,  # the status is all we need; a large answer is never read
        )
    except outbound.OutboundRefused as exc:
        return None, f"refused: {exc}"
    except outbound.OutboundUnresolvable as exc:
        return None, str(exc)
    except requests.Timeout:
        return None, f"no answer within {total:g} s"
    except requests.RequestException as exc:
        return None, f"could not connect: {exc.__class__.__name__}"
    response.close()
    status = response.status_code
    if 200 <= status < 300:
        return status, ""
    if response.is_redirect:
        return status, "a redirect, which is not followed: point the webhook URL at its target"
    return status, f"answered HTTP {status}"


def webhook_deliver(*, delivery_id: int) -> str | None:
    """One try of a due delivery; the new state, or None when it was not due (or taken)."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, state=State.PENDING, next_attempt_at__lte=now
    ).update(
        next_attempt_at=now + LEASE,
        attempt_count=F("attempt_count") + 1,
        round_attempts=F("round_attempts") + 1,
        updated_at=now,
    )
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("generation", "user").get(pk=delivery_id)
    started = time.monotonic()
    status, error = _try(delivery)
    duration_ms = round((time.monotonic() - started) * 1000)
    finished = timezone.now()
    WebhookAttempt.objects.create(
        delivery=delivery, attempted_at=now, status_code=status, error=error[:300], duration_ms=duration_ms
    )
    fields: dict[str, Any] = {"last_status_code": status, "last_error": error[:300], "updated_at": finished}
    delay = None
    if not error:
        fields.update(state=State.DELIVERED, delivered_at=finished, next_attempt_at=None)
    elif delivery.round_attempts <= len(RETRY_DELAYS):
        delay = RETRY_DELAYS[delivery.round_attempts - 1]
        fields.update(next_attempt_at=finished + timedelta(seconds=delay))
    else:
        fields.update(state=State.FAILED, next_attempt_at=None)
    # Only if nobody started another try meanwhile ("Send again"): theirs is the newer news.
    WebhookDelivery.objects.filter(pk=delivery_id, attempt_count=delivery.attempt_count).update(**fields)
    if delay is not None:
        _enqueue(delivery_id, delay=delay)
    logger.info(
        "webhook %s for generation %s, try %s: %s",
        delivery.webhook_id,
        delivery.generation_id,
        delivery.attempt_count,
        error or f"delivered ({status})",
    )
    return fields.get("state", State.PENDING)


class NothingToResend(Exception):
    message = "This webhook was delivered already, so there is nothing to send again."


def webhook_delivery_resend(*, user: User, delivery_id: int) -> WebhookDelivery:
    """ "Send again": a new round of tries, starting now, for one that failed or is still retrying.
    Raises WebhookDelivery.DoesNotExist for another user's, NothingToResend for a delivered one."""
    delivery = WebhookDelivery.objects.get(pk=delivery_id, user=user)
    resent = WebhookDelivery.objects.filter(
        pk=delivery.pk, state__in=(State.FAILED, State.PENDING), attempt_count__gt=0
    ).update(state=State.PENDING, round_attempts=0, next_attempt_at=timezone.now(), updated_at=timezone.now())
    if not resent:
        raise NothingToResend()
    _enqueue(delivery.pk)
    delivery.refresh_from_db()
    return delivery


def deliveries_resume(*, now: datetime | None = None) -> list[str]:
    """For the sweeper: queue again the deliveries due more than a minute ago, whose scheduled
    jobs were lost (a Redis restart) or whose worker died mid-try. One line for each."""
    cutoff = (now or timezone.now()) - timedelta(minutes=1)
    lines = []
    for delivery_id in WebhookDelivery.objects.filter(
        state=State.PENDING, next_attempt_at__lt=cutoff
    ).values_list("pk", flat=True)[:500]:
        _enqueue(delivery_id)
        lines.append(f"webhook delivery {delivery_id} queued again")
    return lines
