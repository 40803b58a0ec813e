"""`GET /api/v1/account` (CONTRACT §4): who the token belongs to, and their balance."""

from django.http import HttpRequest
from ninja import Field, Router

from accounts.models import User
from seedance_site.api import Answer, errors

router = Router(tags=["Account"])


class Account(Answer):
    username: str = Field(min_length=1)
    balance_cents: int = Field(description="Credits; one credit is one US cent.")

    @staticmethod
    def resolve_balance_cents(user: User) -> int:
        # The one place the API reads a balance.
        return user.balance_cents


@router.get(
    "/account",
    response={200: Account, **errors()},
    operation_id="account",
    summary="Who the token belongs to, and their balance",
)
def account(request: HttpRequest) -> User:
    return request.auth
