"""Emails people opted into, sent by a real worker through Django's mail (the locmem backend here):
one per event however often the event or its job is processed, never from a request."""

from datetime import timedelta

import django_rq
import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.billing.ledger import credits_grant
from accounts.models import AccountSettings, EmailNotice
from accounts.notices import notice_send, notices_resume
from accounts.preferences import account_set_email_preferences
from generations.models import Generation
from generations.notify import generation_ended
from generations.services import generation_create, generation_fail
from tests.factories import api_for, generation_started, generation_succeeded, make_user, manage, run_jobs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def upstream(settings):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"  # generations are ended by hand here
    settings.SITE_URL = "https://videos.example.com"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100


def opted_in(name: str = "alice", credits: int = 10_000, **prefs):
    user = make_user(name, credits)
    account_set_email_preferences(
        user=user,
        email_on_finish=prefs.get("email_on_finish", True),
        low_balance_email_cents=prefs.get("low_balance_email_cents"),
    )
    return user


def test_a_ready_video_sends_one_email_with_text_html_cost_and_link():
    alice = opted_in()
    generation = generation_started(alice, "", "A heron lands on a misty lake at dawn")
    generation_succeeded(generation)
    assert mail.outbox == []  # not from the request that ended it: from a worker
    run_jobs()

    (email,) = mail.outbox
    assert email.to == ["alice@example.com"]
    assert email.subject == "Your video is ready: A heron lands on a misty lake at dawn"
    link = f"https://videos.example.com/generations/{generation.pk}/"
    assert "Your video is ready. It cost $1.20" in email.body and link in email.body
    ((html, kind),) = email.alternatives
    assert kind == "text/html" and "$1.20" in html and f'href="{link}"' in html

    # However often the event is processed again, or its job runs again: still one email.
    generation_ended(generation_id=generation.pk)
    notice = EmailNotice.objects.get()
    django_rq.get_queue("default").enqueue("accounts.jobs.send_notice", notice.pk)
    run_jobs()
    assert not notice_send(notice_id=notice.pk)
    assert len(mail.outbox) == 1
    notice.refresh_from_db()
    assert (notice.state, notice.kind, notice.key) == (
        "sent",
        "generation_succeeded",
        f"generation:{generation.pk}:finished",
    )


def test_a_failed_video_says_why_and_that_the_credits_are_back():
    alice = opted_in()
    generation = generation_started(alice, "", "A fox")
    generation_fail(
        generation_id=generation.pk,
        error="The video service could not make this video.",
        failure_class="upstream_failed",
    )
    run_jobs()
    (email,) = mail.outbox
    assert email.subject == "Your video could not be made: A fox"
    assert "The video service could not make this video." in email.body
    assert "The $1.20 held for it is back in your balance" in email.body


def test_no_email_unless_asked_and_none_for_your_own_cancel():
    bob = make_user("bob", 10_000)
    generation = generation_started(bob, "")
    generation_succeeded(generation)
    alice = opted_in()
    queued = api_for(alice).post("/api/v1/generations", {"prompt": "never mind"}).json()
    assert api_for(alice).post(f"/api/v1/generations/{queued['id']}/cancel").status_code == 200
    run_jobs()
    assert mail.outbox == [] and not EmailNotice.objects.exists()


def test_the_balance_low_email_comes_once_per_crossing():
    # $11.00, warn below $10.00; each 5 s std video holds $1.20.
    alice = opted_in(credits=1_100, email_on_finish=False, low_balance_email_cents=1_000)
    api = api_for(alice)

    def submit() -> None:
        assert api.post("/api/v1/generations", {"prompt": "a fox"}).status_code == 201

    submit()  # 1100 -> 980: crossed
    submit()  # 980 -> 860: still below, no new email
    run_jobs(lambda: len(mail.outbox) >= 1)
    run_jobs()
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "Your Seedance Studio balance is below $10.00"
    assert "Your balance is now $9.80" in mail.outbox[0].body
    assert "https://videos.example.com/billing/" in mail.outbox[0].body

    credits_grant(user=alice, amount_cents=500, reason="top-up")  # 860 -> 1360: above again
    submit()  # 1240
    submit()  # 1120
    submit()  # 1000: not below yet
    run_jobs()
    assert len(mail.outbox) == 1
    submit()  # 880: crossed again
    run_jobs(lambda: len(mail.outbox) == 2)
    assert "Your balance is now $8.80" in mail.outbox[1].body
    assert EmailNotice.objects.filter(kind="balance_low").count() == 2


def test_a_refused_send_is_tried_again_and_still_sent_once(settings):
    settings.EMAIL_BACKEND = "tests.test_notices.FlakyBackend"
    FlakyBackend.failures = 1
    alice = opted_in()
    generation = generation_started(alice, "")
    generation_succeeded(generation)
    notice = EmailNotice.objects.get()
    with pytest.raises(ConnectionRefusedError):
        notice_send(notice_id=notice.pk)
    notice.refresh_from_db()
    assert (notice.state, notice.attempts) == ("pending", 1) and "ConnectionRefusedError" in notice.error
    assert notice_send(notice_id=notice.pk)
    assert not notice_send(notice_id=notice.pk)
    assert len(mail.outbox) == 1
    notice.refresh_from_db()
    assert (notice.state, notice.attempts) == ("sent", 2)


def test_the_sweeper_queues_again_a_notice_whose_job_was_lost():

    alice = opted_in()
    generation = generation_started(alice, "")
    generation_succeeded(generation)
    django_rq.get_queue("default").empty()
    assert notices_resume() == []
    with time_machine.travel(timezone.now() + timedelta(minutes=6), tick=True):
        assert len(notices_resume()) == 1
    run_jobs()
    assert len(mail.outbox) == 1


def test_the_account_page_sets_the_email_preferences():
    alice = make_user("alice", 10_000)
    client = Client()
    client.force_login(alice)
    page = client.get("/accounts/").content.decode()
    assert "Email me when a video is ready or fails" in page
    assert "Email me when my balance falls below" in page

    response = client.post("/accounts/notifications/", {"low_balance": "on"})
    assert response.status_code == 400
    assert "Say below which balance to email you" in response.content.decode()
    response = client.post("/accounts/notifications/", {"low_balance": "on", "low_balance_dollars": "-1"})
    assert response.status_code == 400

    response = client.post(
        "/accounts/notifications/",
        {"email_on_finish": "on", "low_balance": "on", "low_balance_dollars": "12.50"},
    )
    assert response.status_code == 302
    row = AccountSettings.objects.get(user=alice)
    assert (row.email_on_finish, row.low_balance_email_cents) == (True, 1250)
    page = client.get("/accounts/").content.decode()
    assert 'value="12.50"' in page
    client.post("/accounts/notifications/", {"low_balance_dollars": "12.50"})
    row.refresh_from_db()
    assert (row.email_on_finish, row.low_balance_email_cents) == (False, None)


class FlakyBackend:
    """An SMTP server that refuses the first `failures` messages, then takes them (into the outbox)."""

    failures = 0

    def __init__(self, *args, **kwargs) -> None:
        pass

    def send_messages(self, messages) -> int:
        if FlakyBackend.failures:
            FlakyBackend.failures -= 1
            raise ConnectionRefusedError("the mail server refused the connection")
        mail.outbox.extend(messages)
        return len(messages)


def test_an_email_service_is_chosen_by_settings_alone():
    """EMAIL_BACKEND names any backend, an anymail provider's included, and ANYMAIL_* variables
    become its settings."""
    result = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.EMAIL_BACKEND); print(settings.ANYMAIL)",
        env={
            "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
            "ANYMAIL_POSTMARK_SERVER_TOKEN": "pm-test-token",
        },
    )
    assert result.returncode == 0, result.stderr
    backend, anymail = result.stdout.strip().splitlines()[-2:]
    assert backend == "anymail.backends.postmark.EmailBackend"
    assert anymail == "{'POSTMARK_SERVER_TOKEN': 'pm-test-token'}"


def test_an_anymail_backend_sends_the_notice(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    alice = opted_in()
    generation = generation_started(alice, "")
    generation_succeeded(generation)
    run_jobs()
    (email,) = mail.outbox
    assert email.anymail_status.status == {"sent"}
    assert Generation.objects.get(pk=generation.pk).status == "succeeded"


def test_submitting_with_a_balance_low_notice_sends_nothing_from_the_request():
    alice = opted_in(credits=130, email_on_finish=False, low_balance_email_cents=100)
    _, created = generation_create(user=alice, prompt="a fox", mode="std", duration=5, aspect_ratio="16:9")
    assert created and mail.outbox == []
    assert EmailNotice.objects.get().kind == "balance_low"
    run_jobs(lambda: len(mail.outbox) == 1)
