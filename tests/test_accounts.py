import re

import pytest
import time_machine
from django.core import mail
from django.test import Client, override_settings

from accounts.models import CreditEntry, User
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_it_signs_up_logs_in_and_out():
    client = Client()
    response = client.post(
        "/accounts/signup/",
        {
            "username": "dana",
            "email": "dana@example.com",
            "password1": "a-Long-pass-77",
            "password2": "a-Long-pass-77",
        },
    )
    assert response.status_code == 302
    assert client.get("/accounts/").status_code == 200  # logged in by signing up
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/accounts/").status_code == 302  # sent to login
    response = client.post("/accounts/login/", {"username": "dana", "password": "a-Long-pass-77"})
    assert response.status_code == 302
    assert client.get("/accounts/").context["user"].username == "dana"


def test_signup_rejects_weak_password_and_duplicate_email_with_clear_messages():
    make_user("erin")
    response = Client().post(
        "/accounts/signup/",
        {"username": "frank", "email": "ERIN@example.com", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "An account with this email already exists" in text
    assert "This password is too short" in text
    assert not User.objects.filter(username="frank").exists()


@override_settings(SIGNUP_CREDITS=250)
def test_signup_credits_are_granted_once_through_the_ledger():
    Client().post(
        "/accounts/signup/",
        {
            "username": "gina",
            "email": "gina@example.com",
            "password1": "a-Long-pass-77",
            "password2": "a-Long-pass-77",
        },
    )
    gina = User.objects.get(username="gina")
    assert gina.balance_cents == 250
    assert list(CreditEntry.objects.filter(user=gina).values_list("kind", "amount_cents")) == [("grant", 250)]


def test_a_wrong_password_gets_a_clear_message(alice):
    response = Client().post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


@override_settings(LOGIN_RATE_LIMIT="3/m")
@time_machine.travel("2026-11-29 12:00:10Z", tick=False)  # all attempts in one rate-limit window
def test_login_rate_limit_trips_after_repeated_failures(alice):
    client = Client()
    for _ in range(3):
        assert client.post("/accounts/login/", {"username": "alice", "password": "nope"}).status_code == 200
    response = client.post("/accounts/login/", {"username": "alice", "password": "pw-alicealice"})
    assert response.status_code == 429
    assert "Too many login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_needs_post(alice):
    client = Client()
    client.force_login(alice)
    assert client.get("/accounts/logout/").status_code == 405


def test_logout_is_csrf_protected(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/accounts/logout/").status_code == 403


def test_password_reset_end_to_end(alice):
    client = Client()
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"/accounts/reset/\S+/\S+/", mail.outbox[0].body).group(0)
    response = client.get(link, follow=True)
    assert response.status_code == 200
    form_url = response.redirect_chain[-1][0]
    response = client.post(
        form_url, {"new_password1": "brand-New-pass-9", "new_password2": "brand-New-pass-9"}
    )
    assert response.status_code == 302
    assert Client().login(username="alice", password="brand-New-pass-9")


def test_password_change(alice):
    client = Client()
    client.force_login(alice)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": "pw-alicealice",
            "new_password1": "brand-New-pass-9",
            "new_password2": "brand-New-pass-9",
        },
    )
    assert response.status_code == 302
    assert Client().login(username="alice", password="brand-New-pass-9")


def test_account_page_creates_shows_once_and_revokes_tokens(alice):
    client = Client()
    client.force_login(alice)
    response = client.post("/accounts/", {"name": "my script"})
    token = response.context["new_token"]
    assert token.startswith("sds_")
    assert token in response.content.decode()
    stored = alice.api_tokens.get()
    assert stored.token_hash != token and token not in stored.token_hash
    assert token not in client.get("/accounts/").content.decode()  # shown once
    assert client.post(f"/accounts/tokens/{stored.pk}/revoke/").status_code == 302
    stored.refresh_from_db()
    assert stored.revoked_at is not None


def test_a_token_needs_a_name(alice):
    client = Client()
    client.force_login(alice)
    response = client.post("/accounts/", {"name": "  "})
    assert "Give the token a name" in response.content.decode()
    assert not alice.api_tokens.exists()


def test_another_users_token_cannot_be_revoked(alice, bob):
    from accounts.services import api_token_create

    token, _ = api_token_create(user=bob, name="bob's")
    client = Client()
    client.force_login(alice)
    assert client.post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
