"""`credits` in every template: the signed-in user's balance and debt, read once per page."""

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.billing.selectors import credits_for_user


def credits(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    # Lazy: a page that shows no balance runs no query; one that shows it twice runs one.
    return {"credits": SimpleLazyObject(lambda: credits_for_user(user=user))}
