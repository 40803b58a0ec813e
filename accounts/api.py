"""`/api/v1/account` (CONTRACT §4, §4c, §4d): who the token belongs to, their balance, their monthly
spend limit and what this month has spent against it, and the secret that signs their webhooks."""

from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import ConfigDict, StrictInt

from accounts.billing.selectors import balance_for_user
from accounts.models import User
from accounts.preferences import SPEND_LIMIT_MAX, account_set_spend_limit, account_settings_for
from accounts.spending import spent_this_month_cents
from seedance_site.api import Answer, ApiError, documented, errors, json_object, request_body, typed

router = Router(tags=["Account"])


class Account(Answer):
    username: str = Field(min_length=1)
    balance_cents: int = Field(description="Credits; one credit is one US cent.")
    monthly_spend_limit_cents: int | None = Field(
        ge=0,
        le=SPEND_LIMIT_MAX,
        description="The most this account's generations may hold and spend in one calendar month "
        "(UTC): charges less refunds. null: no limit.",
    )
    spent_this_month_cents: int = Field(
        description="Charges less refunds so far this calendar month (UTC), from the ledger; below "
        "zero when this month's refunds return more than this month charged."
    )
    webhook_secret: str = Field(
        pattern="^whsec_[A-Za-z0-9+/]+=*$",
        description="Signs the webhooks sent to your `webhook_url`s (Standard Webhooks): `whsec_` and the "
        "base64 of the HMAC key. Rotate it on the account page.",
    )


def _account(user: User) -> dict[str, Any]:
    # The one place the API reads a balance.
    row = account_settings_for(user=user)
    return {
        "username": user.username,
        "balance_cents": balance_for_user(user=user),
        "monthly_spend_limit_cents": row.monthly_spend_limit_cents,
        "spent_this_month_cents": spent_this_month_cents(user_id=user.pk),
        "webhook_secret": row.webhook_secret,
    }


@router.get(
    "/account",
    response={200: Account, **errors()},
    operation_id="account",
    summary="Who the token belongs to, their balance, spend limit and webhook secret",
)
def account(request: HttpRequest) -> dict[str, Any]:
    return _account(request.auth)


class AccountChange(Schema):
    """Fields left out stay as they are; unknown fields are ignored."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 0})

    monthly_spend_limit_cents: StrictInt | None = documented(
        minimum=0,
        maximum=SPEND_LIMIT_MAX,
        description="Whole cents, 0 or more; null removes the limit. Reaching the limit exactly is "
        "allowed; a submit that would go past it is refused with 402 `spend_limit_reached`.",
    )


@router.patch(
    "/account",
    response={200: Account, **errors(body=True)},
    # An empty body changes nothing and answers the account, as `{}` does.
    openapi_extra={"requestBody": {**request_body(AccountChange)["requestBody"], "required": False}},
    operation_id="updateAccount",
    summary="Set or remove the monthly spend limit",
)
def update_account(request: HttpRequest) -> dict[str, Any]:
    """200 with the account as it is now; 400 `invalid_request` for a limit that is not a whole
    number of cents from 0 (a string, a float, a boolean, a negative number)."""
    change = typed(AccountChange, json_object(request))
    if "monthly_spend_limit_cents" in change.model_fields_set:
        limit = change.monthly_spend_limit_cents
        if limit is not None and not 0 <= limit <= SPEND_LIMIT_MAX:
            message = "The monthly spend limit must be a whole number of cents, 0 or more (or null for none)."
            raise ApiError(400, "invalid_request", message, {"monthly_spend_limit_cents": [message]})
        account_set_spend_limit(user=request.auth, limit_cents=limit)
    return _account(request.auth)
