"""A person's choices for their account (accounts.models.AccountSettings): the monthly spend limit,
the emails they want, and the secret that signs webhooks to their servers (CONTRACT §4c, §4d).

The row is made on first use. Every write is an UPDATE of the fields it means to change, so two
forms saved at once (or a rotation racing a limit change) never undo each other."""

import base64
import secrets
from datetime import datetime, timedelta
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from accounts.models import AccountSettings, User

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a public marker, not a secret
# The Standard Webhooks libraries take 24 to 64 bytes; 32 is what their own examples make.
WEBHOOK_SECRET_BYTES = 32
# After a rotation the old secret keeps signing this long, so receivers can switch over calmly.
ROTATION_OVERLAP = timedelta(hours=24)
# The largest limit a bigint column holds; no real limit comes near it.
SPEND_LIMIT_MAX = 2**63 - 1


def new_webhook_secret() -> str:
    """`whsec_` and the standard, padded base64 of random bytes: the decoded bytes are the HMAC key."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()


def account_settings_for(*, user: User) -> AccountSettings:
    """The user's settings, made with defaults (and a webhook secret) the first time."""
    row, _ = AccountSettings.objects.get_or_create(
        user_id=user.pk, defaults={"webhook_secret": new_webhook_secret()}
    )
    return row


class SubmitSettings(NamedTuple):
    monthly_spend_limit_cents: int | None
    low_balance_email_cents: int | None


def submit_settings(*, user_id: int) -> SubmitSettings:
    """What a submit needs to know of the user's choices, in one read that makes no row: most
    users never set a limit or a low-balance email."""
    row = (
        AccountSettings.objects.filter(user_id=user_id)
        .values_list("monthly_spend_limit_cents", "low_balance_email_cents")
        .first()
    )
    return SubmitSettings(*(row or (None, None)))


def account_set_spend_limit(*, user: User, limit_cents: int | None) -> AccountSettings:
    if limit_cents is not None and not 0 <= limit_cents <= SPEND_LIMIT_MAX:
        raise ValueError("A spend limit is a whole number of cents, 0 or more.")
    account_settings_for(user=user)
    AccountSettings.objects.filter(user_id=user.pk).update(
        monthly_spend_limit_cents=limit_cents, updated_at=timezone.now()
    )
    return account_settings_for(user=user)


def account_set_email_preferences(
    *, user: User, email_on_finish: bool, low_balance_email_cents: int | None
) -> AccountSettings:
    if low_balance_email_cents is not None and low_balance_email_cents < 0:
        raise ValueError("A balance to warn below is 0 cents or more.")
    account_settings_for(user=user)
    AccountSettings.objects.filter(user_id=user.pk).update(
        email_on_finish=email_on_finish,
        low_balance_email_cents=low_balance_email_cents,
        updated_at=timezone.now(),
    )
    return account_settings_for(user=user)


def webhook_secret_rotate(*, user: User) -> AccountSettings:
    """A new secret signs from now on; the one it replaces signs too for ROTATION_OVERLAP (the
    `webhook-signature` header then carries both). Rotating again within that time retires the
    oldest at once: only the two newest ever sign."""
    account_settings_for(user=user)
    now = timezone.now()
    with transaction.atomic():
        row = AccountSettings.objects.select_for_update().get(user_id=user.pk)
        row.webhook_previous_secret = row.webhook_secret
        row.webhook_previous_until = now + ROTATION_OVERLAP
        row.webhook_secret = new_webhook_secret()
        row.save(
            update_fields=[
                "webhook_secret",
                "webhook_previous_secret",
                "webhook_previous_until",
                "updated_at",
            ]
        )
    return row


def webhook_signing_secrets(*, user: User, now: datetime | None = None) -> list[str]:
    """The secrets that sign a webhook sent now: the current one, and the one before it for a
    day after a rotation."""
    row = account_settings_for(user=user)
    now = now or timezone.now()
    signing = [row.webhook_secret]
    if row.webhook_previous_secret and row.webhook_previous_until and row.webhook_previous_until > now:
        signing.append(row.webhook_previous_secret)
    return signing
