"""The hardening the security review asked for: limits on what costs us something, signing out
everywhere, idle sessions, deleted generations' keys, and names and addresses unique in any case."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import ApiToken, TopUp, User
from accounts.services import api_token_create
from generations.models import Generation
from generations.services import generation_create, generation_delete
from tests.factories import ApiClient, api_for, client_for, run_jobs

pytestmark = pytest.mark.django_db

one_window = time_machine.travel("2026-11-29 12:00:10Z", tick=False)


# --- Rate limits -------------------------------------------------------------------------------------


@override_settings(CHECKOUT_RATE_LIMIT="3/h")
@one_window
def test_checkouts_are_limited_per_user_across_the_web_and_the_api(fake_stripe, alice, bob):
    web, api = client_for(alice), api_for(alice)
    assert web.post("/billing/checkout/", {"amount_cents": "1000"}).status_code == 302
    assert api.post("/api/v1/checkout", {"amount_cents": 1000}).status_code == 201
    assert web.post("/billing/checkout/", {"amount_usd": "12.50"}).status_code == 302
    response = web.post("/billing/checkout/", {"amount_cents": "1000"})
    assert response.status_code == 429
    assert "started many checkouts" in response.content.decode()
    response = api.post("/api/v1/checkout", {"amount_cents": 1000})
    assert response.status_code == 429 and response.json()["error"]["code"] == "rate_limited"
    assert TopUp.objects.filter(user=alice).count() == 3
    assert len(fake_stripe.requests) == 3  # the refused ones never reached Stripe
    # Another user is not held up by alice.
    assert client_for(bob).post("/billing/checkout/", {"amount_cents": "1000"}).status_code == 302


@override_settings(TOKEN_RATE_LIMIT="2/h")
@one_window
def test_api_token_creation_is_limited_per_user(alice):
    client = client_for(alice)
    assert client.post("/accounts/", {"name": "one"}).status_code == 302
    assert client.post("/accounts/", {"name": "two"}).status_code == 302
    response = client.post("/accounts/", {"name": "three"})
    assert response.status_code == 429
    assert "many tokens in a short time" in response.content.decode()
    assert sorted(alice.api_tokens.values_list("name", flat=True)) == ["one", "two"]


@override_settings(SIGNUP_RATE_LIMIT="2/h")
@one_window
def test_signups_are_limited_per_email_whatever_the_address_or_name(django_capture_on_commit_callbacks):
    answers = []
    with django_capture_on_commit_callbacks(execute=True):
        for i, email in enumerate(["dana@example.com", "DANA@example.com", " dana@EXAMPLE.com"]):
            response = Client(REMOTE_ADDR=f"10.9.0.{i}").post(
                "/accounts/signup/",
                {
                    "username": f"dana{i}",
                    "email": email,
                    "password1": "a-Long-pass-77",
                    "password2": "a-Long-pass-77",
                },
            )
            answers.append(response.status_code)
    run_jobs()
    assert answers == [302, 302, 429]
    assert len(mail.outbox) == 2  # one mailbox gets at most SIGNUP_RATE_LIMIT mails


# --- Sign out everywhere ---------------------------------------------------------------------------


def test_sign_out_everywhere_ends_every_session_and_revokes_every_token(alice):
    laptop, phone = Client(), Client()
    for client in (laptop, phone):
        client.post("/accounts/login/", {"username": "alice", "password": "pw-alicealice"})
        assert client.get("/accounts/").status_code == 200
    _, script_token = api_token_create(user=alice, name="nightly")
    script = ApiClient(script_token)
    assert script.get("/api/v1/account").status_code == 200

    page = laptop.get("/accounts/password_change/").content.decode()
    assert "Sign out everywhere and revoke API tokens" in page
    response = laptop.post("/accounts/sign_out_everywhere/", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/"
    assert "Signed out on every device (1 API token revoked)" in response.content.decode()

    for client in (laptop, phone):
        assert client.get("/accounts/").status_code == 302  # back to the login page
    assert script.get("/api/v1/account").status_code == 401
    assert not ApiToken.objects.filter(user=alice, revoked_at__isnull=True).exists()
    # The password still works: logging in again starts a fresh session.
    assert (
        laptop.post("/accounts/login/", {"username": "alice", "password": "pw-alicealice"}).status_code == 302
    )
    assert laptop.get("/accounts/").status_code == 200
    assert phone.get("/accounts/").status_code == 302


def test_sign_out_everywhere_needs_a_post_with_a_csrf_token(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post("/accounts/sign_out_everywhere/").status_code == 403
    assert client.get("/accounts/sign_out_everywhere/").status_code == 405
    alice.refresh_from_db()
    assert alice.session_epoch == 0


def test_sessions_from_before_the_epoch_existed_stay_valid(alice):
    """Epoch 0 hashes sessions exactly as Django does, so deploying this logs nobody out."""
    from django.contrib.auth.base_user import AbstractBaseUser

    assert alice.get_session_auth_hash() == AbstractBaseUser.get_session_auth_hash(alice)


# --- Idle sessions ---------------------------------------------------------------------------------


@override_settings(SESSION_IDLE_TIMEOUT_SECONDS=3600)
def test_an_idle_session_ends_and_a_used_one_lives_on(alice):
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        busy, idle = Client(), Client()
        for client in (busy, idle):
            client.post("/accounts/login/", {"username": "alice", "password": "pw-alicealice"})
            assert client.get("/accounts/").status_code == 200
        # Busy keeps using the site every 40 minutes for three hours; idle does not.
        for _ in range(4):
            clock.shift(timedelta(minutes=40))
            assert busy.get("/accounts/").status_code == 200
        assert idle.get("/accounts/").status_code == 302
        clock.shift(timedelta(minutes=61))
        assert busy.get("/accounts/").status_code == 302


@override_settings(SESSION_IDLE_TIMEOUT_SECONDS=0)
def test_the_idle_timeout_can_be_turned_off(alice):
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client = Client()
        client.post("/accounts/login/", {"username": "alice", "password": "pw-alicealice"})
        clock.shift(timedelta(days=10))
        assert client.get("/accounts/").status_code == 200


def test_the_idle_timeout_is_a_setting_read_from_the_environment():
    from tests.factories import run_manage

    show = "from django.conf import settings as s; print(s.SESSION_IDLE_TIMEOUT_SECONDS)"
    result = run_manage("shell", "-c", show, DJANGO_SECRET_KEY="x" * 60, SESSION_IDLE_TIMEOUT_SECONDS="900")
    assert result.stdout.strip().splitlines()[-1] == "900"
    result = run_manage("check", DJANGO_SECRET_KEY="x" * 60, SESSION_IDLE_TIMEOUT_SECONDS="an hour")
    assert "SESSION_IDLE_TIMEOUT_SECONDS must be a whole number" in result.stderr


# --- A deleted generation's Idempotency-Key ----------------------------------------------------------


@pytest.fixture
def deleted(alice, settings):
    settings.SHORTAPI_KEY = "configured"
    generation, _ = generation_create(
        user=alice,
        prompt="a private thing",
        mode="std",
        duration=4,
        aspect_ratio="1:1",
        idempotency_key="k-1",
    )
    Generation.objects.filter(pk=generation.pk).update(status="failed", error="no")
    generation.refresh_from_db()
    generation_delete(generation=generation)
    return generation


def test_replaying_a_deleted_generations_key_shows_nothing_of_it(alice, deleted):
    api = api_for(alice)
    response = api.post("/api/v1/generations", {"prompt": "another"}, headers={"Idempotency-Key": "k-1"})
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "deleted" in error["message"] and "new key" in error["message"]
    assert str(deleted.pk) not in response.content.decode()
    assert "a private thing" not in response.content.decode()
    assert Generation.objects.filter(user=alice).count() == 1  # nothing new held or made
    # A fresh key works as ever.
    fresh = api.post("/api/v1/generations", {"prompt": "another"}, headers={"Idempotency-Key": "k-2"})
    assert fresh.status_code == 201


def test_the_web_form_replaying_a_deleted_generations_key_says_so(alice, deleted):
    response = client_for(alice).post(
        "/generate/",
        {
            "prompt": "another",
            "mode": "std",
            "duration": "4",
            "aspect_ratio": "1:1",
            "idempotency_key": "k-1",
        },
    )
    assert response.status_code == 200
    assert "used for a video you have since deleted" in response.content.decode()
    assert Generation.objects.filter(user=alice).count() == 1


# --- Names and addresses unique in any case: the migration copes with existing rows ---------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_settles_existing_look_alike_names_and_addresses(capsys):
    executor = MigrationExecutor(connection)
    before = [("accounts", "0002_stripeevent_topup")]
    after = [("accounts", "0003_verified_email_unique_names")]
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("accounts", "User")
        rows = [
            ("bob", "bob@example.com"),
            ("Bob", "robert@example.com"),
            ("carol", "Bob@Example.com"),
            ("dave", ""),
            ("erin", ""),
        ]
        for username, email in rows:
            old.objects.create(username=username, email=email, password="!", date_joined=timezone.now())
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        users = {u.pk: (u.username, u.email) for u in User.objects.order_by("pk")}
        ids = sorted(users)
        assert users[ids[0]] == ("bob", "bob@example.com")  # the oldest keeps its name and address
        assert users[ids[1]] == (f"Bob-{ids[1]}", "robert@example.com")
        assert users[ids[2]] == ("carol", "")
        assert [users[i] for i in ids[3:]] == [("dave", ""), ("erin", "")]
        assert not User.objects.filter(email_verified_at__isnull=True).exists()
        printed = capsys.readouterr().out
        assert f"user {ids[1]} renamed 'Bob' -> 'Bob-{ids[1]}'" in printed
        assert f"user {ids[2]} (carol) lost email 'Bob@Example.com'" in printed
    finally:
        # Forward to the latest schema before anything else touches these rows through today's
        # models (they relate to tables later migrations make); the test's flush then empties them.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_one_upstream_job_belongs_to_one_generation_at_most(alice, settings):
    from django.db import IntegrityError, transaction

    settings.SHORTAPI_KEY = "configured"
    first, _ = generation_create(user=alice, prompt="one", mode="std", duration=4, aspect_ratio="1:1")
    second, _ = generation_create(user=alice, prompt="one", mode="std", duration=4, aspect_ratio="1:1")
    Generation.objects.filter(pk=first.pk).update(upstream_job_id="job-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Generation.objects.filter(pk=second.pk).update(upstream_job_id="job-1")
    # Generations that have no job yet are many, of course.
    assert Generation.objects.filter(upstream_job_id="").count() == 1
