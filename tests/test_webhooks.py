"""Webhooks to users' own servers (CONTRACT §4c): a real receiver on the loopback, a real RQ worker
on real Redis, and signatures checked with the Standard Webhooks library itself, as a user's
receiver would check them."""

import json
import re
import socket
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditEntry
from accounts.preferences import account_settings_for, webhook_secret_rotate
from generations import jobs
from generations.models import Generation, WebhookAttempt, WebhookDelivery
from generations.services import (
    generation_fail,
)
from generations.user_webhooks import RETRY_DELAYS, deliveries_resume, webhook_deliver
from tests.factories import (
    ROOT,
    api_for,
    generation_started,
    generation_succeeded,
    make_user,
    run_jobs,
    wait_for,
)
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"  # these tests end generations by hand
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on the loopback
    settings.WEBHOOK_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


def fake_dns(monkeypatch, answers: dict[str, str | Exception]) -> None:
    """Names this test controls; every other name goes to the real resolver."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            answer = answers[host]
            if isinstance(answer, Exception):
                raise answer
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (answer, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def delivery_of(generation: Generation) -> WebhookDelivery:
    return WebhookDelivery.objects.get(generation=generation)


def test_a_refused_delivery_is_retried_with_the_same_webhook_id_and_both_tries_verify(receiver):
    receiver.statuses = [500, 204]
    alice = make_user("alice", 10_000)
    secret = account_settings_for(user=alice).webhook_secret
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)

    run_jobs(lambda: len(receiver.requests) == 1)
    delivery = delivery_of(generation)
    first = WebhookAttempt.objects.get(delivery=delivery)
    assert (first.status_code, first.error) == (500, "answered HTTP 500")
    assert delivery.state == "pending" and delivery.last_status_code == 500
    # The first retry comes within a minute.
    wait = (delivery.next_attempt_at - first.attempted_at).total_seconds()
    assert 0 < wait <= 60 and wait >= RETRY_DELAYS[0] - 1

    with time_machine.travel(timezone.now() + timedelta(seconds=RETRY_DELAYS[0] + 1), tick=True):
        run_jobs(lambda: delivery_of(generation).state == "delivered")
        # Verified as a receiver would, with the library and the account's secret, each try.
        bodies = [Webhook(secret).verify(r.body, r.headers) for r in receiver.requests]

    assert len(receiver.requests) == 2
    ids = {r.headers["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1 and ids == {delivery.webhook_id} and delivery.webhook_id.startswith("msg_")
    assert all(r.headers["Content-Type"] == "application/json" for r in receiver.requests)
    assert all(r.path == "/hooks/seedance" for r in receiver.requests)
    # The body is the generation object, exactly as the API shows it.
    api = api_for(alice).get(f"/api/v1/generations/{generation.pk}").json()
    for body in bodies:
        assert set(body) == set(api)
        assert {k: v for k, v in body.items() if k != "video_url"} == {
            k: v for k, v in api.items() if k != "video_url"
        }
        assert body["status"] == "succeeded" and body["webhook_url"] == receiver.url
        assert body["video_url"].startswith("http")
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery).order_by("attempted_at"))
    assert [(a.status_code, a.error) for a in attempts] == [(500, "answered HTTP 500"), (204, "")]
    assert all(a.duration_ms < 2000 for a in attempts)
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempt_count, delivery.next_attempt_at) == ("delivered", 2, None)
    assert delivery.delivered_at is not None

    # A job queued twice (or the sweeper's) finds nothing due: no third request.
    jobs.deliver_webhook(delivery.pk)
    assert len(receiver.requests) == 2


def test_a_tampered_body_or_another_secret_does_not_verify(receiver):
    alice = make_user("alice", 10_000)
    bob = make_user("bob")
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    run_jobs(lambda: delivery_of(generation).state == "delivered")
    (request,) = receiver.requests
    with pytest.raises(WebhookVerificationError):
        Webhook(account_settings_for(user=bob).webhook_secret).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(account_settings_for(user=alice).webhook_secret).verify(
            request.body.replace(b"succeeded", b"failed"), request.headers
        )


def test_every_way_a_generation_ends_sends_one_webhook(receiver, settings):
    """Succeeded, failed upstream, cancelled by its owner, failed by the sweeper: one delivery each,
    from the one place a status ends."""
    alice = make_user("alice", 10_000)
    api = api_for(alice)
    ok = generation_started(alice, receiver.url, "ok")
    upstream = generation_started(alice, receiver.url, "upstream")
    cancelled = api.post("/api/v1/generations", {"prompt": "cancelled", "webhook_url": receiver.url}).json()
    swept = generation_started(alice, receiver.url, "swept")
    no_hook = generation_started(alice, "", "no hook")

    generation_succeeded(ok)
    assert generation_fail(generation_id=upstream.pk, error="It failed.", failure_class="upstream_failed")
    assert api.post(f"/api/v1/generations/{cancelled['id']}/cancel").status_code == 200
    Generation.objects.filter(pk=swept.pk).update(deadline_at=timezone.now() - timedelta(seconds=1))
    jobs.reconcile()  # queues a poll, which fails it at its deadline
    # Ending twice is not ending again: the claim fails, and nothing more is sent.
    assert not generation_fail(generation_id=upstream.pk, error="Again.", failure_class="upstream_failed")

    run_jobs(lambda: len(receiver.requests) == 4 and Generation.objects.get(pk=swept.pk).is_finished)
    run_jobs()
    assert WebhookDelivery.objects.count() == 4
    assert not WebhookDelivery.objects.filter(generation=no_hook).exists()
    secret = account_settings_for(user=alice).webhook_secret
    seen = {}
    for request in receiver.requests:
        body = Webhook(secret).verify(request.body, request.headers)
        seen[body["prompt"]] = (body["status"], body["error"])
    assert seen["ok"] == ("succeeded", None)
    assert seen["upstream"] == ("failed", "It failed.")
    assert seen["cancelled"] == ("failed", "Cancelled by you")
    assert seen["swept"][0] == "failed" and "too long" in seen["swept"][1]
    assert set(WebhookDelivery.objects.values_list("event", flat=True)) == {
        "generation.succeeded",
        "generation.failed",
    }
    assert audit_mismatches() == []


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "a-byte-at-a-time"])
def test_a_slow_receiver_does_not_hold_the_worker_past_the_timeout(receiver, settings, trickle):
    """Silent for 6 s, or sending its answer a byte every 0.2 s for 6 s (so that no single read
    waits long enough for a read timeout): either way the try ends at the timeout."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    receiver.delay = 6.0
    receiver.trickle = trickle
    alice = make_user("alice", 10_000)
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)

    run_jobs(lambda: WebhookAttempt.objects.exists())

    # Cut off by the timeout (the receiver would have answered 200 after 6 s), after waiting it out.
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.error) == (None, "no answer within 1 s")
    assert attempt.duration_ms > 0  # how long the try took is recorded
    delivery = delivery_of(generation)
    assert delivery.state == "pending" and delivery.next_attempt_at > timezone.now()  # tried again later


def test_a_private_address_is_refused_at_submit_and_an_unresolvable_one_accepted(monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    fake_dns(
        monkeypatch,
        {
            "hooks.example.com": "93.184.216.34",
            "intranet.example.com": "10.1.2.3",
            "metadata.example.com": "169.254.169.254",
            "not-yet.example.com": socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        },
    )
    alice = make_user("alice", 10_000)
    api = api_for(alice)

    for url in (
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "https://intranet.example.com/hook",
        "http://metadata.example.com/latest",
        "http://[::1]/hook",
    ):
        response = api.post("/api/v1/generations", {"prompt": "a fox", "webhook_url": url})
        assert response.status_code == 400, url
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and list(error["fields"]) == ["webhook_url"], url
        assert "public address" in error["fields"]["webhook_url"][0]
    for url, problem in (
        ("ftp://hooks.example.com/x", "http:// or https://"),
        ("hooks.example.com/x", "http:// or https://"),
        ("https://" + "a" * 2000 + ".com/", "at most 2,000 characters"),
    ):
        response = api.post("/api/v1/generations", {"prompt": "a fox", "webhook_url": url})
        assert response.status_code == 400 and problem in response.json()["error"]["fields"]["webhook_url"][0]
    response = api.post("/api/v1/generations", {"prompt": "a fox", "webhook_url": 5})
    assert response.status_code == 400 and "webhook_url" in response.json()["error"]["fields"]
    # Nothing was held or stored for any of them.
    assert not Generation.objects.exists()
    assert CreditEntry.objects.filter(user=alice).count() == 1  # the test grant

    for url in ("https://hooks.example.com/seedance?x=1", "https://not-yet.example.com/hook"):
        response = api.post("/api/v1/generations", {"prompt": "a fox", "webhook_url": url})
        assert response.status_code == 201, response.content
        assert response.json()["webhook_url"] == url
    response = api.post("/api/v1/generations", {"prompt": "a fox", "webhook_url": None})
    assert response.json()["webhook_url"] is None


def test_an_address_that_turned_private_since_submit_is_refused_at_delivery(receiver, monkeypatch, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    port = receiver.server.server_address[1]
    answers: dict[str, str | Exception] = {"hooks.example.com": "93.184.216.34"}
    fake_dns(monkeypatch, answers)
    alice = make_user("alice", 10_000)
    generation = generation_started(alice, f"http://hooks.example.com:{port}/hook")
    answers["hooks.example.com"] = "127.0.0.1"  # the DNS answer changed: now the loopback
    generation_succeeded(generation)

    run_jobs(lambda: WebhookAttempt.objects.exists())
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("refused:") and "127.0.0.1" in attempt.error
    assert receiver.requests == []  # nothing reached it
    assert delivery_of(generation).state == "pending"  # the DNS may change back: tried again later


def test_a_redirect_is_not_followed(receiver):
    receiver.statuses = [301]
    receiver.location = "http://127.0.0.1:1/elsewhere"
    alice = make_user("alice", 10_000)
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    run_jobs(lambda: WebhookAttempt.objects.exists())
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code == 301 and "not followed" in attempt.error
    assert len(receiver.requests) == 1
    assert delivery_of(generation).state == "pending"


def test_after_a_rotation_both_secrets_sign_for_a_day_then_only_the_new_one(receiver):
    alice = make_user("alice", 10_000)
    old = account_settings_for(user=alice).webhook_secret
    new = webhook_secret_rotate(user=alice).webhook_secret
    assert new != old and new.startswith("whsec_")
    first = generation_started(alice, receiver.url, "during the overlap")
    later = generation_started(alice, receiver.url, "after the overlap")

    generation_succeeded(first)
    run_jobs(lambda: len(receiver.requests) == 1)
    request = receiver.requests[0]
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    # A receiver that still has the old secret, and one that has the new, both accept it.
    assert Webhook(old).verify(request.body, request.headers)["prompt"] == "during the overlap"
    assert Webhook(new).verify(request.body, request.headers)["prompt"] == "during the overlap"

    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1), tick=True):
        generation_succeeded(later)
        run_jobs(lambda: len(receiver.requests) == 2)
        request = receiver.requests[1]
        assert len(request.headers["webhook-signature"].split(" ")) == 1
        assert Webhook(new).verify(request.body, request.headers)["prompt"] == "after the overlap"
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(request.body, request.headers)


def test_a_failed_delivery_can_be_sent_again_from_the_account_page(receiver):
    receiver.statuses = [503, 200]
    alice = make_user("alice", 10_000)
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    delivery = delivery_of(generation)
    # Its last try of the round: one more failure and it gives up.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(round_attempts=len(RETRY_DELAYS))
    run_jobs(lambda: delivery_of(generation).state == "failed")
    assert WebhookDelivery.objects.get(pk=delivery.pk).next_attempt_at is None

    page = Client()
    page.force_login(alice)
    html = page.get("/accounts/").content.decode()
    assert "Failed" in html and f"/accounts/webhooks/deliveries/{delivery.pk}/resend/" in html
    assert "answered HTTP 503" in html

    response = page.post(f"/accounts/webhooks/deliveries/{delivery.pk}/resend/")
    assert response.status_code == 302
    run_jobs(lambda: delivery_of(generation).state == "delivered")
    assert [r.headers["webhook-id"] for r in receiver.requests] == [delivery.webhook_id] * 2
    assert "Delivered" in page.get("/accounts/").content.decode()
    # Delivered: nothing to send again. Another user's delivery: not found.
    page.post(f"/accounts/webhooks/deliveries/{delivery.pk}/resend/")
    run_jobs()
    assert len(receiver.requests) == 2
    other = Client()
    other.force_login(make_user("bob"))
    assert other.post(f"/accounts/webhooks/deliveries/{delivery.pk}/resend/").status_code == 404


def test_the_sweeper_queues_again_a_delivery_whose_job_was_lost(receiver):
    import django_rq

    alice = make_user("alice", 10_000)
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    django_rq.get_queue("default").empty()  # Redis lost the job
    assert deliveries_resume() == []  # not overdue yet
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=True):
        assert len(deliveries_resume()) == 1
        run_jobs(lambda: delivery_of(generation).state == "delivered")
    assert len(receiver.requests) == 1


def test_a_try_is_a_claim_so_two_jobs_for_one_delivery_send_once(receiver):
    alice = make_user("alice", 10_000)
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    delivery = delivery_of(generation)
    assert webhook_deliver(delivery_id=delivery.pk) == "delivered"
    assert webhook_deliver(delivery_id=delivery.pk) is None
    run_jobs()
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0].body)["id"] == str(generation.pk)


def test_the_readme_receiver_verifies_a_real_delivery():
    """The ten-line receiver in the README, run as written (the secret and port filled in)."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- receiver -->\n```python\n(.*?)```", readme, re.S)[1]
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    alice = make_user("alice", 10_000)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code = code.replace('"whsec_..."', repr(account_settings_for(user=alice).webhook_secret))
    code = code.replace('HTTPServer(("", 8080)', f'HTTPServer(("127.0.0.1", {port})')
    server = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:

        def listens() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                assert server.poll() is None, server.communicate()
                return False
            return True

        wait_for(listens, timeout=30, what="the README's receiver to listen")
        generation = generation_started(alice, f"http://127.0.0.1:{port}/")
        generation_succeeded(generation)
        run_jobs(lambda: delivery_of(generation).attempt_count == 1)
        assert delivery_of(generation).state == "delivered"
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=10)
    webhook_id, status, video_url = out.split()
    assert (webhook_id, status) == (delivery_of(generation).webhook_id, "succeeded")
    assert video_url.startswith("http") and "/videos/" in video_url


def test_the_generate_page_takes_a_webhook_url_under_advanced(receiver, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    alice = make_user("alice", 10_000)
    client = Client()
    client.force_login(alice)
    page = client.get("/generate/").content.decode()
    assert "<summary>Advanced</summary>" in page and 'name="webhook_url"' in page
    form = {"prompt": "A fox", "mode": "std", "duration": "5", "aspect_ratio": "16:9", "idempotency_key": "k"}
    response = client.post("/generate/", {**form, "webhook_url": receiver.url})
    html = response.content.decode()
    assert response.status_code == 200 and "must point to a public address" in html
    assert '<details class="advanced" open>' in html  # the error is not hidden
    assert not Generation.objects.exists()
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    response = client.post("/generate/", {**form, "webhook_url": receiver.url})
    assert response.status_code == 302
    assert Generation.objects.get().webhook_url == receiver.url
    assert receiver.url in client.get(response["Location"]).content.decode()


# --- the sweeper and "Send again", row by row (killed mutants: tests/MUTATION.md) --------------------


def test_the_sweeper_queues_again_only_pending_deliveries_overdue_by_a_minute_and_says_which(receiver):
    import django_rq

    alice = make_user("alice", 10_000)
    overdue, recent, given_up = (generation_started(alice, receiver.url) for _ in range(3))
    for generation in (overdue, recent, given_up):
        generation_succeeded(generation)
    django_rq.get_queue("default").empty()
    now = timezone.now()
    WebhookDelivery.objects.filter(generation=overdue).update(next_attempt_at=now - timedelta(seconds=90))
    WebhookDelivery.objects.filter(generation=recent).update(next_attempt_at=now - timedelta(seconds=30))
    WebhookDelivery.objects.filter(generation=given_up).update(
        state="failed", next_attempt_at=now - timedelta(hours=1)
    )

    assert deliveries_resume(now=now) == [f"webhook delivery {delivery_of(overdue).pk} queued again"]
    queued = [(job.func_name, job.args) for job in django_rq.get_queue("default").jobs]
    assert queued == [("generations.jobs.deliver_webhook", (delivery_of(overdue).pk,))]


def test_sending_again_starts_a_new_round_for_that_delivery_only(receiver):
    from generations.user_webhooks import webhook_delivery_resend

    alice = make_user("alice", 10_000)
    first, second = generation_started(alice, receiver.url), generation_started(alice, receiver.url)
    for generation in (first, second):
        generation_succeeded(generation)
    spent = len(RETRY_DELAYS) + 1
    WebhookDelivery.objects.update(
        state="failed", attempt_count=spent, round_attempts=spent, next_attempt_at=None
    )

    again = webhook_delivery_resend(user=alice, delivery_id=delivery_of(second).pk)

    assert (again.pk, again.state, again.round_attempts, again.attempt_count) == (
        delivery_of(second).pk,
        "pending",
        0,
        spent,
    )
    untouched = delivery_of(first)
    assert (untouched.state, untouched.round_attempts) == ("failed", spent)


def test_a_delivery_not_yet_tried_is_not_sent_again_and_a_resend_is_stamped(receiver):
    from generations.user_webhooks import NothingToResend, webhook_delivery_resend

    alice = make_user("alice", 10_000)
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    delivery = delivery_of(generation)
    assert delivery.attempt_count == 0
    with pytest.raises(NothingToResend):
        webhook_delivery_resend(user=alice, delivery_id=delivery.pk)

    tried = WebhookDelivery.objects.filter(pk=delivery.pk)
    tried.update(state="failed", attempt_count=3, next_attempt_at=None)
    with time_machine.travel("2026-12-01 08:00:00+00:00", tick=False):
        again = webhook_delivery_resend(user=alice, delivery_id=delivery.pk)
    assert again.updated_at.isoformat() == again.next_attempt_at.isoformat() == "2026-12-01T08:00:00+00:00"


def test_a_webhook_url_of_exactly_2000_characters_is_accepted_and_a_wrong_scheme_is_explained(settings):
    from generations.user_webhooks import webhook_url_error

    url = "https://example.com/" + "h" * (2000 - len("https://example.com/"))
    assert len(url) == 2000 and webhook_url_error(url) is None
    assert webhook_url_error(url + "h") == "The webhook URL must be at most 2,000 characters."
    assert webhook_url_error("ftp://example.com/hooks") == (
        "The webhook URL must be a full http:// or https:// address, such as https://example.com/hooks."
    )


def test_the_signed_headers_are_exactly_the_standard_webhooks_ones_and_name_us():
    from datetime import UTC, datetime

    from generations.user_webhooks import signed_headers

    secret = "whsec_" + "A" * 32
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    headers = signed_headers(webhook_id="msg_1", body="{}", secrets=[secret], now=now)
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": "SeedanceStudio-Webhooks/1",
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id="msg_1", timestamp=now, data="{}"),
    }
