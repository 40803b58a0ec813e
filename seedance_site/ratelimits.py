"""Counting attempts for the rate limits (django-ratelimit counters in the Redis cache).

Every limit here counts each attempt against several keys at once (the client's address, and the
name, email or user the attempt is about): a botnet spread over many addresses and a single
guesser are both slowed. Each value is normalised by its caller, so that spellings Django treats
as the same account share one counter.
"""

import unicodedata

from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited


def fold(value: str) -> str:
    """A counter key for a name or an email: stripped, NFKC-normalised and case-folded.

    NFKC again after casefold, because folding can leave a string that is no longer normalised.
    """
    value = unicodedata.normalize("NFKC", (value or "").strip())
    return unicodedata.normalize("NFKC", value.casefold())


def over_limit(
    request: HttpRequest, *, group: str, rate: str, by_ip: bool = True, values: tuple[str, ...] = ()
) -> bool:
    """Count one attempt in `group` against the client's address (unless `by_ip` is off) and
    against each of `values`; True when any counter is past `rate`.

    Every counter is incremented, even once one of them is over: an attacker cannot save a
    name's counter by first exhausting an address's."""
    over = False
    if by_ip:
        over |= bool(is_ratelimited(request, group=group, key="ip", rate=rate, increment=True))
    for value in values:
        if value:
            over |= bool(
                is_ratelimited(
                    request, group=f"{group}:value", key=lambda _g, _r, v=value: v, rate=rate, increment=True
                )
            )
    return over


def over_user_limit(request: HttpRequest, *, group: str, rate: str) -> bool:
    """One counter per signed-in user (for actions that cost us something: Stripe sessions, tokens)."""
    return over_limit(request, group=group, rate=rate, by_ip=False, values=(f"user:{request.user.pk}",))
