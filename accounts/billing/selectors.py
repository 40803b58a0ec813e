"""Reads about top-ups."""

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import TopUp, User


def topup_for_user(*, user: User, session_id: str) -> TopUp:
    """The user's own TopUp for a Checkout Session, or 404: another user's is indistinguishable from none."""
    if not session_id:
        raise Http404("No such payment.")
    try:
        return TopUp.objects.get(stripe_session_id=session_id, user=user)
    except TopUp.DoesNotExist:
        raise Http404("No such payment.") from None


def topups_for_user(*, user: User) -> QuerySet[TopUp]:
    return TopUp.objects.filter(user=user).order_by("-created_at", "-id")
