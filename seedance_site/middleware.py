"""The idle session timeout (SESSION_IDLE_TIMEOUT_SECONDS)."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse

LAST_SEEN = "_idle_last_seen"
# Writing the session on every request would cost a database write per page and per status poll;
# once a minute is plenty for a timeout counted in hours or days.
TOUCH_EVERY_SECONDS = 60


def start_idle_clock(sender: object, request: HttpRequest, user: object, **kwargs: object) -> None:
    """On login (user_logged_in, connected in accounts.apps): the session starts out seen, so
    its first page need not write it again."""
    timeout = settings.SESSION_IDLE_TIMEOUT_SECONDS
    if timeout and hasattr(request, "session"):
        request.session[LAST_SEEN] = int(time.time())
        request.session.set_expiry(timeout)


class IdleSessionTimeout:
    """Ends a signed-in session that has not been used for SESSION_IDLE_TIMEOUT_SECONDS.

    The session's own expiry is set to the timeout and pushed forward as it is used, so the
    session store and the browser forget an idle session by themselves too; the check here
    covers a cookie replayed after that."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timeout = settings.SESSION_IDLE_TIMEOUT_SECONDS
        if timeout and request.user.is_authenticated:
            now = int(time.time())
            last_seen = request.session.get(LAST_SEEN)
            if isinstance(last_seen, int) and now - last_seen > timeout:
                logout(request)
            elif not isinstance(last_seen, int) or now - last_seen >= TOUCH_EVERY_SECONDS:
                request.session[LAST_SEEN] = now
                request.session.set_expiry(timeout)
        return self.get_response(request)
