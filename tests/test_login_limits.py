"""Guessing passwords and flooding mailboxes: the login limit on both login pages, for every
spelling Django treats as the same name, and the password-reset limit."""

import re

import pytest
import time_machine
from django.core import mail
from django.test import Client, override_settings

from tests.factories import make_user, run_jobs

pytestmark = pytest.mark.django_db

# Every attempt inside one rate-limit window (django-ratelimit's windows are per key and minute).
one_window = time_machine.travel("2026-11-29 12:00:10Z", tick=False)


@pytest.fixture
def demo(db):
    return make_user("demo")


def lock(client: Client, path: str, username: str, limit: int) -> None:
    for _ in range(limit):
        response = client.post(path, {"username": username, "password": "wrong"})
        assert response.status_code == 200, response.status_code


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@override_settings(LOGIN_RATE_LIMIT="25/m")
@one_window
def test_the_admin_login_is_limited_like_the_portal_login():
    make_user("root", is_staff=True, is_superuser=True)
    client = Client()
    lock(client, "/admin/login/", "root", 25)
    response = client.post("/admin/login/", {"username": "root", "password": "pw-rootroot"})
    assert response.status_code == 429
    assert "Too many login attempts" in response.content.decode()
    assert not logged_in(client)


@override_settings(LOGIN_RATE_LIMIT="3/m")
@one_window
def test_the_admin_and_portal_logins_share_their_counters():
    make_user("root", is_staff=True, is_superuser=True)
    lock(Client(REMOTE_ADDR="10.1.0.1"), "/accounts/login/", "root", 3)
    # Another address, the other login page: the name is locked all the same.
    client = Client(REMOTE_ADDR="10.1.0.2")
    response = client.post("/admin/login/", {"username": "root", "password": "pw-rootroot"})
    assert response.status_code == 429 and not logged_in(client)


@override_settings(LOGIN_RATE_LIMIT="3/m")
@one_window
def test_the_admin_login_limit_counts_per_address_too():
    make_user("root", is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="10.2.0.1")
    for name in ("a", "b", "c"):
        client.post("/admin/login/", {"username": name, "password": "x"})
    response = client.post("/admin/login/", {"username": "root", "password": "pw-rootroot"})
    assert response.status_code == 429 and not logged_in(client)


SPELLINGS = [
    "demo ",
    " demo",
    "demo\t",
    "\u3000demo",
    "\uff44\uff45\uff4d\uff4f",  # fullwidth
    "demo\xa0",
    "DEMO",
    "Demo\u2003",
    "\u2002demo\n",
]


@pytest.mark.parametrize("spelling", SPELLINGS, ids=ascii)
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
@override_settings(LOGIN_RATE_LIMIT="3/m")
@one_window
def test_every_spelling_of_a_locked_name_is_locked_too(demo, spelling, path):
    from accounts.models import User

    User.objects.filter(pk=demo.pk).update(is_staff=True)
    lock(Client(REMOTE_ADDR="10.3.0.1"), path, "demo", 3)
    # From a fresh address, so only the name's counter can stop it.
    client = Client(REMOTE_ADDR="10.3.0.2")
    response = client.post(path, {"username": spelling, "password": "pw-demodemo"})
    assert response.status_code == 429, f"{spelling!r} got a fresh counter"
    assert not logged_in(client)


@override_settings(LOGIN_RATE_LIMIT="10/m")
@one_window
def test_a_spelling_django_accepts_really_is_the_same_account(demo):
    # The premise of the test above: these spellings log in as demo when nothing is locked.
    for spelling in ("demo ", "\u3000demo", "\uff44\uff45\uff4d\uff4f", "demo\xa0"):
        client = Client(REMOTE_ADDR=f"10.4.0.{len(spelling)}")
        client.post("/accounts/login/", {"username": spelling, "password": "pw-demodemo"})
        assert client.session.get("_auth_user_id") == str(demo.pk), repr(spelling)
        client.post("/accounts/logout/")


@override_settings(LOGIN_RATE_LIMIT="3/m")
@one_window
def test_other_names_are_not_locked_by_one_locked_name(demo):
    make_user("erin")
    lock(Client(REMOTE_ADDR="10.5.0.1"), "/accounts/login/", "demo", 3)
    client = Client(REMOTE_ADDR="10.5.0.2")
    client.post("/accounts/login/", {"username": "erin", "password": "pw-erinerin"})
    assert logged_in(client)


# --- Password reset ------------------------------------------------------------------------------


def reset(client: Client, email: str):
    return client.post("/accounts/password_reset/", {"email": email})


@override_settings(PASSWORD_RESET_RATE_LIMIT="3/h")
@one_window
def test_password_reset_is_limited_per_email(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        answers = [
            reset(Client(REMOTE_ADDR=f"10.6.0.{i}"), "alice@example.com").status_code for i in range(16)
        ]
        # Spelled differently, the same mailbox.
        answers.append(reset(Client(REMOTE_ADDR="10.6.1.1"), " ALICE@example.com").status_code)
    run_jobs()
    assert answers == [302] * 3 + [429] * 14
    assert len(mail.outbox) == 3


@override_settings(PASSWORD_RESET_RATE_LIMIT="3/h")
@one_window
def test_password_reset_is_limited_per_address(alice):
    client = Client(REMOTE_ADDR="10.7.0.1")
    answers = [reset(client, f"someone{i}@example.com").status_code for i in range(4)]
    assert answers == [302, 302, 302, 429]
    assert reset(client, "alice@example.com").status_code == 429


@override_settings(PASSWORD_RESET_RATE_LIMIT="3/h")
@one_window
def test_the_reset_limit_answers_alike_for_known_and_unknown_addresses(alice):
    known = [reset(Client(REMOTE_ADDR=f"10.8.0.{i}"), "alice@example.com") for i in range(4)]
    unknown = [reset(Client(REMOTE_ADDR=f"10.8.1.{i}"), "nobody@example.com") for i in range(4)]
    assert [r.status_code for r in known] == [r.status_code for r in unknown] == [302, 302, 302, 429]
    assert page(known[-1]) == page(unknown[-1]).replace("nobody@example.com", "alice@example.com")


def page(response) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_a_password_reset_sends_no_mail_while_the_request_waits(
    alice, settings, django_capture_on_commit_callbacks
):
    """The mail goes out from a worker: a slow SMTP server cannot tell a stranger which
    addresses have accounts by how long the page takes. Nothing is sent while the request runs,
    for either address; the worker sends alice's afterwards."""
    settings.EMAIL_BACKEND = "tests.test_login_limits.CountingBackend"
    settings.PASSWORD_RESET_RATE_LIMIT = "100/h"
    CountingBackend.sent = 0
    with django_capture_on_commit_callbacks(execute=True):
        for email in ("alice@example.com", "nobody@example.com"):
            assert reset(Client(), email).status_code == 302
    assert CountingBackend.sent == 0  # not in the request, nor in what it ran on commit
    run_jobs()
    assert CountingBackend.sent == 1


class CountingBackend:
    """An SMTP server that counts what it is given to send."""

    sent = 0

    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages) -> int:
        CountingBackend.sent += len(messages)
        return len(messages)
