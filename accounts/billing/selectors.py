"""Reads about money: balances and debts, the ledger, top-ups."""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from accounts.billing.models import CreditAccount, CreditEntry, TopUp


@dataclass(frozen=True)
class Credits:
    """What a user has (`balance_cents`) and owes (`owed_cents`); never both above zero."""

    balance_cents: int = 0
    owed_cents: int = 0


def credits_for_user(*, user) -> Credits:
    """One query; a user whose credits never moved has no account yet, and 0 of each."""
    row = CreditAccount.objects.filter(owner_id=user.pk).values_list("balance_cents", "owed_cents").first()
    return Credits(*row) if row else Credits()


def balance_for_user(*, user) -> int:
    return credits_for_user(user=user).balance_cents


def recent_entries_for_user(*, user, limit: int = 20) -> QuerySet[CreditEntry]:
    return CreditEntry.objects.filter(user=user).order_by("-id")[:limit]


def topup_for_user(*, user, session_id: str) -> TopUp:
    """The user's own TopUp for a Checkout Session, or 404: another user's is indistinguishable from none."""
    if not session_id:
        raise Http404("No such payment.")
    try:
        return TopUp.objects.get(stripe_session_id=session_id, user=user)
    except TopUp.DoesNotExist:
        raise Http404("No such payment.") from None


def topups_for_user(*, user) -> QuerySet[TopUp]:
    return TopUp.objects.filter(user=user).order_by("-created_at", "-id")
