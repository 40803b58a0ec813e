import re
from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import CreditEntry, User
from tests.factories import balance, make_user, run_jobs

pytestmark = pytest.mark.django_db


DANA = {
    "username": "dana",
    "email": "dana@example.com",
    "password1": "a-Long-pass-77",
    "password2": "a-Long-pass-77",
}


def sign_up(client: Client, deliver, **changes) -> object:
    with deliver():
        return client.post("/accounts/signup/", {**DANA, **changes})


def test_it_signs_up_logs_in_and_out(deliver):
    client = Client()
    response = sign_up(client, deliver)
    assert response.status_code == 302 and response["Location"] == "/accounts/signup/done/"
    done = client.get("/accounts/signup/done/").content.decode()
    assert "Check your inbox" in done and 'href="/accounts/login/"' in done
    assert client.get("/accounts/").status_code == 302  # not logged in: that would tell the name was free
    response = client.post("/accounts/login/", {"username": "dana", "password": "a-Long-pass-77"})
    assert response.status_code == 302  # the account works at once, before the address is confirmed
    assert client.get("/accounts/").context["user"].username == "dana"
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/accounts/").status_code == 302  # sent to login
    assert [m.to for m in mail.outbox] == [["dana@example.com"]]
    assert "/accounts/verify/" in mail.outbox[0].body


def _answer(response) -> tuple[int, str]:
    return response.status_code, response["Location"]


def test_signup_answers_the_same_for_taken_and_free_names_and_addresses(deliver):
    make_user("erin")  # erin@example.com
    free = sign_up(Client(), deliver)
    taken_name = sign_up(Client(), deliver, username="erin", email="someone@example.com")
    taken_name_other_case = sign_up(Client(), deliver, username="ERIN", email="other@example.com")
    taken_email = sign_up(Client(), deliver, username="frank", email="ERIN@example.com")
    answers = {_answer(r) for r in (free, taken_name, taken_name_other_case, taken_email)}
    assert answers == {(302, "/accounts/signup/done/")}
    assert set(User.objects.values_list("username", flat=True)) == {"erin", "dana"}
    # The news goes to the address, never to the page.
    by_address = {m.to[0]: m.body for m in mail.outbox}
    assert "/accounts/verify/" in by_address["dana@example.com"]
    assert 'the name "erin" is already taken' in by_address["someone@example.com"]
    assert 'the name "ERIN" is already taken' in by_address["other@example.com"]
    assert 'already has an account, named "erin"' in by_address["ERIN@example.com"]
    assert "/accounts/password_reset/" in by_address["ERIN@example.com"]


def test_the_signup_page_says_what_will_happen(settings):
    settings.SIGNUP_CREDITS = 250
    html = Client().get("/accounts/signup/").content.decode()
    assert "we email the address you give" in html
    assert "$2.50 of welcome credits" in html


def test_signup_still_refuses_a_weak_password_with_a_clear_message():
    response = Client().post(
        "/accounts/signup/",
        {"username": "frank", "email": "frank@example.com", "password1": "123", "password2": "123"},
    )
    assert response.status_code == 200
    assert "This password is too short" in response.content.decode()
    assert not User.objects.filter(username="frank").exists()


@pytest.mark.parametrize("name", ["b\u043eb", "ｂｏｂ", "bob\u200b", "bøb", "bob!", "b o b"])
def test_look_alike_and_non_ascii_names_are_refused_at_signup(bob, name, deliver):
    response = sign_up(Client(), deliver, username=name, email="mallory@example.com")
    assert response.status_code == 200
    assert "Enter a valid username" in response.content.decode()
    assert User.objects.count() == 1 and not mail.outbox


def test_names_are_unique_whatever_their_case_in_the_database(bob):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="BOB", email="other@example.com", password="x")


def test_emails_are_unique_whatever_their_case_in_the_database(bob):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user(username="robert", email="Bob@Example.com", password="x")
    # Accounts made by operators may have no address at all, as many as there are.
    User.objects.create_user(username="ops1", password="x")
    User.objects.create_user(username="ops2", password="x")


def test_the_admin_refuses_look_alike_names_too(admin_client, bob):
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "b\u043eb",
            "password1": "a-Long-pass-77",
            "password2": "a-Long-pass-77",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200
    assert "Enter a valid username" in response.content.decode()
    response = admin_client.post(
        "/admin/accounts/user/add/",
        {
            "username": "Bob",
            "password1": "a-Long-pass-77",
            "password2": "a-Long-pass-77",
            "usable_password": "true",
        },
    )
    assert "A user with that username already exists" in response.content.decode()
    assert not User.objects.filter(username__in=["b\u043eb", "Bob"]).exists()


def _verification_link(message) -> str:
    return re.search(r"http://\S+(/accounts/verify/\S+/\S+/)", message.body).group(1)


@override_settings(SIGNUP_CREDITS=250)
def test_signup_credits_arrive_once_when_the_address_is_confirmed(deliver):
    sign_up(Client(), deliver)
    dana = User.objects.get(username="dana")
    assert balance(dana) == 0 and not CreditEntry.objects.filter(user=dana).exists()
    link = _verification_link(mail.outbox[0])
    response = Client().get(link)
    assert (
        response.status_code == 200
        and "$2.50 of welcome credits are in your balance" in response.content.decode()
    )
    assert Client().get(link).status_code == 400  # used: it works once
    dana.refresh_from_db()
    assert balance(dana) == 250 and dana.email_verified_at is not None
    assert list(CreditEntry.objects.filter(user=dana).values_list("kind", "amount_cents")) == [("grant", 250)]


@override_settings(SIGNUP_CREDITS=250)
def test_a_wrong_or_expired_confirmation_link_gives_nothing(deliver):
    sign_up(Client(), deliver)
    link = _verification_link(mail.outbox[0])
    assert Client().get(link[:-3] + "xx/").status_code == 400
    with time_machine.travel(timezone.now() + timedelta(days=4)):  # past PASSWORD_RESET_TIMEOUT
        assert Client().get(link).status_code == 400
    assert balance(User.objects.get(username="dana")) == 0


@override_settings(SIGNUP_CREDITS=250)
def test_the_confirmation_link_can_be_sent_again_from_the_account_page(deliver):
    sign_up(Client(), deliver)
    client = Client()
    client.login(username="dana", password="a-Long-pass-77")
    assert "not confirmed" in client.get("/accounts/").content.decode()
    with deliver():
        client.post("/accounts/verify/resend/")
    assert len(mail.outbox) == 2
    assert Client().get(_verification_link(mail.outbox[1])).status_code == 200
    assert balance(User.objects.get(username="dana")) == 250


def test_signup_mail_is_sent_by_a_worker_not_the_request(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/signup/", DANA)
    assert mail.outbox == []  # queued, not sent while the person waits
    run_jobs()
    assert len(mail.outbox) == 1


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


def test_password_reset_end_to_end(alice, deliver):
    client = Client()
    with deliver():
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
    assert response.status_code == 302 and response["Location"] == "/accounts/#tokens"
    response = client.get(response["Location"])
    token = response.context["new_token"]
    assert token.startswith("sds_")
    assert token in response.content.decode()
    assert "no-store" in response["Cache-Control"]
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
    assert response.status_code == 400
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
