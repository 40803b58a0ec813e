"""generations.user_webhooks, held to exactly what each function writes and sends: the signed
headers, the body, the claim and its counters, each attempt row, the retry schedule (the job it
books and when), the sweeper's cutoff and cap, each message. The functions are called directly
against a receiver on the loopback, in this process (no RQ worker), so that each mutant
`make mutants MODULES=generations.user_webhooks` makes is killed in a second or two
(tests/MUTATION.md); tests/test_webhooks.py tests the same path end to end."""

import json
import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django_rq
import pytest
import time_machine
from standardwebhooks.webhooks import Webhook

from accounts.preferences import account_settings_for, webhook_secret_rotate
from generations.models import Generation, WebhookAttempt, WebhookDelivery
from generations.user_webhooks import (
    RETRY_DELAYS,
    NothingToResend,
    _try,
    deliveries_resume,
    payload,
    signed_headers,
    webhook_deliver,
    webhook_delivery_create,
    webhook_delivery_resend,
    webhook_url_error,
)
from tests.factories import api_for, generation_started, generation_succeeded, make_user
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
State = WebhookDelivery.State


@pytest.fixture(autouse=True)
def configured(settings) -> None:
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receivers are on the loopback
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.5


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def half_answer():
    """A receiver that sends its status line and headers at once, then holds back the body it
    announced until the test ends: only a sender that reads the body waits for it."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            stop.wait(30)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks"
    stop.set()
    server.shutdown()
    server.server_close()


def ended(url: str, username: str = "alice") -> Generation:
    generation = generation_started(make_user(username, 10_000), url)
    generation_succeeded(generation)
    generation.refresh_from_db()
    return generation


def delivery_for(url: str, **fields) -> WebhookDelivery:
    delivery = WebhookDelivery.objects.get(generation=ended(url))
    if fields:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
        delivery.refresh_from_db()
    return delivery


def queued_jobs() -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in django_rq.get_queue("default").get_jobs()]


def webhook_jobs_queued() -> list[tuple[str, tuple]]:
    return [job for job in queued_jobs() if job[0] == "generations.jobs.deliver_webhook"]


def scheduled_jobs() -> list[tuple[str, tuple, datetime]]:
    queue = django_rq.get_queue("default")
    registry = queue.scheduled_job_registry
    booked = []
    for job_id in registry.get_job_ids():
        job = queue.fetch_job(job_id)
        booked.append((job.func_name, job.args, registry.get_scheduled_time(job_id)))
    return booked


def unresolvable_only(monkeypatch, host: str, reason: str = "Name or service not known") -> None:
    """`host` has no DNS answer (yet); every other name goes to the real resolver."""
    real = socket.getaddrinfo

    def getaddrinfo(name, *args, **kwargs):
        if name == host:
            raise socket.gaierror(socket.EAI_NONAME, reason)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """Jobs are queued when the transaction commits (RQ's COMMIT_MODE): run those callbacks."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


# --- webhook_url_error ----------------------------------------------------------------------------


def test_a_url_of_2000_characters_is_accepted_and_one_more_is_refused_with_the_limit(settings):
    base = "https://example.com/"
    assert webhook_url_error(base + "a" * (2000 - len(base))) is None
    assert (
        webhook_url_error(base + "a" * (2001 - len(base)))
        == "The webhook URL must be at most 2,000 characters."
    )


def test_a_url_of_another_scheme_is_refused_with_an_example():
    message = "The webhook URL must be a full http:// or https:// address, such as https://example.com/hooks."
    assert webhook_url_error("ftp://example.com/hooks") == message
    assert webhook_url_error("not a url") == message
    assert webhook_url_error("http://example.com/hooks") is None


def test_a_private_address_is_refused_unless_allowed_and_an_unresolved_host_accepted(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    message = webhook_url_error("http://127.0.0.1:8000/hooks")
    assert message is not None
    assert message.startswith("The webhook URL must point to a public address: ")
    assert message.endswith(".")
    assert len(message) > len("The webhook URL must point to a public address: .")

    unresolvable_only(monkeypatch, "not-yet.example.com")
    assert webhook_url_error("https://not-yet.example.com/hooks") is None
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    assert webhook_url_error("http://127.0.0.1:8000/hooks") is None


# --- webhook_delivery_create ----------------------------------------------------------------------


def test_an_ended_generation_gets_one_delivery_queued_on_commit(django_capture_on_commit_callbacks):
    alice = make_user("alice", 10_000)
    generation = generation_started(alice, "https://example.com/hooks")
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        generation_succeeded(generation)
    delivery = WebhookDelivery.objects.get(generation=generation)
    assert delivery.event == "generation.succeeded"
    assert delivery.user_id == alice.pk
    assert delivery.url == "https://example.com/hooks"
    assert delivery.state == State.PENDING
    assert delivery.next_attempt_at == NOW
    assert delivery.webhook_id.startswith("msg_") and len(delivery.webhook_id) == 36
    int(delivery.webhook_id[4:], 16)
    assert webhook_jobs_queued() == [("generations.jobs.deliver_webhook", (delivery.pk,))]
    assert scheduled_jobs() == []

    generation.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = webhook_delivery_create(generation=generation)
    assert again == delivery and callbacks == []
    assert WebhookDelivery.objects.count() == 1


def test_no_delivery_without_a_webhook_url_or_before_the_end(django_capture_on_commit_callbacks):
    alice = make_user("alice", 10_000)
    unfinished = generation_started(alice, "https://example.com/hooks")
    without = generation_started(alice, "")
    generation_succeeded(without)
    without.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert webhook_delivery_create(generation=unfinished) is None
        assert webhook_delivery_create(generation=without) is None
    assert callbacks == []
    assert WebhookDelivery.objects.count() == 0


def test_two_deliveries_get_webhook_ids_of_their_own():
    first = WebhookDelivery.objects.get(generation=ended("https://example.com/a", "alice"))
    second = WebhookDelivery.objects.get(generation=ended("https://example.com/b", "bob"))
    assert first.webhook_id != second.webhook_id


# --- payload and signed_headers -------------------------------------------------------------------


def test_the_payload_is_the_generation_as_the_api_shows_it():
    generation = ended("https://example.com/hooks")
    shown = api_for(generation.user).get(f"/api/v1/generations/{generation.pk}").json()
    body = payload(generation)
    assert body["id"] == shown["id"] == str(generation.pk)
    assert body["status"] == "succeeded" == shown["status"]
    assert set(body) == set(shown)
    assert {k: v for k, v in body.items() if k != "video_url"} == {
        k: v for k, v in shown.items() if k != "video_url"
    }


def test_the_headers_are_the_standard_webhooks_ones_signed_with_each_secret():
    body = '{"id": "gen_1"}'
    first, second = "whsec_" + "A" * 32, "whsec_" + "B" * 32
    headers = signed_headers(webhook_id="msg_1", body=body, secrets=[first, second], now=NOW)
    signatures = headers.pop("webhook-signature").split(" ")
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": "SeedanceStudio-Webhooks/1",
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(NOW.timestamp())),
    }
    assert signatures == [
        Webhook(first).sign(msg_id="msg_1", timestamp=NOW, data=body),
        Webhook(second).sign(msg_id="msg_1", timestamp=NOW, data=body),
    ]
    assert signatures[0] != signatures[1]


# --- _try -----------------------------------------------------------------------------------------


def test_a_try_posts_the_signed_payload_and_a_2xx_is_a_success(receiver):
    alice = make_user("alice", 10_000)
    secret = account_settings_for(user=alice).webhook_secret
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    delivery = WebhookDelivery.objects.select_related("generation", "user").get(generation=generation)
    with time_machine.travel(NOW, tick=False):
        assert _try(delivery) == (204, "")
        sent = payload(delivery.generation)
    (request,) = receiver.requests
    assert request.path == "/hooks/seedance"
    assert request.headers["webhook-id"] == delivery.webhook_id
    assert request.headers["webhook-timestamp"] == str(int(NOW.timestamp()))
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == sent
    with time_machine.travel(NOW, tick=False):
        Webhook(secret).verify(request.body, request.headers)

    receiver.statuses = [200]
    assert _try(delivery) == (200, "")
    receiver.statuses = [299]
    assert _try(delivery) == (299, "")


def test_a_try_signs_with_the_previous_secret_too_for_a_day_after_a_rotation(receiver):
    delivery = delivery_for(receiver.url)
    alice = delivery.user
    old = account_settings_for(user=alice).webhook_secret
    webhook_secret_rotate(user=alice)
    new = account_settings_for(user=alice).webhook_secret
    delivery = WebhookDelivery.objects.select_related("generation", "user").get(pk=delivery.pk)
    assert _try(delivery) == (204, "")
    request = receiver.requests[-1]
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(request.body, request.headers)
    Webhook(new).verify(request.body, request.headers)


def test_a_try_that_is_not_a_2xx_says_what_came_back(receiver):
    delivery = delivery_for(receiver.url)
    receiver.statuses = [300]
    assert _try(delivery) == (300, "answered HTTP 300")
    receiver.statuses = [500]
    assert _try(delivery) == (500, "answered HTTP 500")
    receiver.statuses = [302]
    receiver.location = "https://example.com/elsewhere"
    assert _try(delivery) == (
        302,
        "a redirect, which is not followed: point the webhook URL at its target",
    )
    assert len(receiver.requests) == 3  # the redirect not followed


def test_a_try_that_gets_no_answer_says_why(settings, monkeypatch):
    delivery = delivery_for(closed_port_url())
    assert _try(delivery) == (None, "could not connect: ConnectionError")

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    status, error = _try(delivery)
    assert status is None
    assert error.startswith("refused: ") and len(error) > len("refused: ")

    unresolvable_only(monkeypatch, "gone.example.com")
    WebhookDelivery.objects.filter(pk=delivery.pk).update(url="https://gone.example.com/hooks")
    delivery.refresh_from_db()
    status, error = _try(delivery)
    assert status is None
    assert "gone.example.com" in error and not error.startswith("refused")


def test_a_slow_receiver_is_cut_off_at_the_timeout(settings, receiver):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.delay = 5
    delivery = delivery_for(receiver.url)
    assert _try(delivery) == (None, "no answer within 0.5 s")


def test_a_receiver_trickling_its_headers_is_cut_off_at_the_timeout_all_the_same(settings, receiver):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.6
    receiver.trickle = True
    receiver.delay = 6  # a byte every 0.2 s: no single read waits long
    delivery = delivery_for(receiver.url)
    assert _try(delivery) == (None, "no answer within 0.6 s")


def test_a_try_reads_the_status_and_never_waits_for_the_body(settings, half_answer):
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    delivery = delivery_for(half_answer)
    assert _try(delivery) == (200, "")


# --- webhook_deliver ------------------------------------------------------------------------------


def test_a_delivered_try_is_recorded_and_books_nothing(receiver, caplog, committed):
    delivery = delivery_for(receiver.url, next_attempt_at=NOW)
    # Another delivery on its first try too: the outcome is written to this one only.
    other = WebhookDelivery.objects.get(generation=ended("https://example.com/b", "bob"))
    WebhookDelivery.objects.filter(pk=other.pk).update(attempt_count=1, round_attempts=1)
    with (
        time_machine.travel(NOW, tick=False),
        caplog.at_level(logging.INFO, "generations.user_webhooks"),
        committed(),
    ):
        assert webhook_deliver(delivery_id=delivery.pk) == State.DELIVERED
    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED
    assert delivery.attempt_count == 1 and delivery.round_attempts == 1
    assert delivery.delivered_at == NOW and delivery.updated_at == NOW
    assert delivery.next_attempt_at is None
    assert delivery.last_status_code == 204 and delivery.last_error == ""
    (attempt,) = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.attempted_at == NOW
    assert attempt.status_code == 204 and attempt.error == ""
    assert attempt.duration_ms >= 0
    assert scheduled_jobs() == [] and webhook_jobs_queued() == []
    other.refresh_from_db()
    assert other.state == State.PENDING and other.last_status_code is None and other.delivered_at is None
    assert [r.getMessage() for r in caplog.records if r.name == "generations.user_webhooks"] == [
        f"webhook {delivery.webhook_id} for generation {delivery.generation_id}, try 1: delivered (204)"
    ]


def test_the_duration_of_a_try_is_in_milliseconds(receiver):
    receiver.delay = 0.3
    delivery = delivery_for(receiver.url)
    assert webhook_deliver(delivery_id=delivery.pk) == State.DELIVERED
    (attempt,) = WebhookAttempt.objects.filter(delivery=delivery)
    assert attempt.duration_ms >= 300


def test_each_failed_try_of_a_round_books_the_next_after_its_delay_then_gives_up(receiver, caplog, committed):
    receiver.statuses = [500]
    delivery = delivery_for(receiver.url, next_attempt_at=NOW)
    moment = NOW
    caplog.set_level(logging.INFO, "generations.user_webhooks")
    for number, delay in enumerate(RETRY_DELAYS, start=1):
        django_rq.get_queue("default").empty()
        for job_id in django_rq.get_queue("default").scheduled_job_registry.get_job_ids():
            django_rq.get_queue("default").scheduled_job_registry.remove(job_id)
        with time_machine.travel(moment, tick=False), committed():
            assert webhook_deliver(delivery_id=delivery.pk) == State.PENDING
        delivery.refresh_from_db()
        assert delivery.state == State.PENDING
        assert delivery.attempt_count == number and delivery.round_attempts == number
        assert delivery.next_attempt_at == moment + timedelta(seconds=delay)
        assert delivery.updated_at == moment
        assert delivery.last_status_code == 500 and delivery.last_error == "answered HTTP 500"
        assert delivery.delivered_at is None
        assert scheduled_jobs() == [
            ("generations.jobs.deliver_webhook", (delivery.pk,), moment + timedelta(seconds=delay))
        ]
        moment = delivery.next_attempt_at
    assert RETRY_DELAYS == (30, 300, 1800, 7200, 18000, 36000, 36000)
    django_rq.get_queue("default").empty()
    for job_id in django_rq.get_queue("default").scheduled_job_registry.get_job_ids():
        django_rq.get_queue("default").scheduled_job_registry.remove(job_id)
    with time_machine.travel(moment, tick=False), committed():
        assert webhook_deliver(delivery_id=delivery.pk) == State.FAILED
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED and delivery.next_attempt_at is None
    assert delivery.attempt_count == 8 and delivery.round_attempts == 8
    assert scheduled_jobs() == [] and webhook_jobs_queued() == []
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 8
    assert (
        f"webhook {delivery.webhook_id} for generation {delivery.generation_id}, try 8: answered HTTP 500"
        in [r.getMessage() for r in caplog.records]
    )


def test_a_try_not_yet_due_or_not_pending_is_not_made(receiver):
    delivery = delivery_for(receiver.url, next_attempt_at=NOW + timedelta(seconds=1))
    with time_machine.travel(NOW, tick=False):
        assert webhook_deliver(delivery_id=delivery.pk) is None
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(state=State.FAILED)
        assert webhook_deliver(delivery_id=delivery.pk) is None
        WebhookDelivery.objects.filter(pk=delivery.pk).update(state=State.PENDING)
        assert webhook_deliver(delivery_id=delivery.pk) == State.DELIVERED
    assert len(receiver.requests) == 1
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_try_holds_its_delivery_for_a_minute_while_it_is_under_way(receiver):
    """The claim, seen from the receiver while the try is in flight: leased, counted."""
    seen = {}
    delivery = delivery_for(receiver.url)

    original_post = receiver.server.RequestHandlerClass.do_POST

    def do_post(handler):
        row = WebhookDelivery.objects.values(
            "next_attempt_at", "attempt_count", "round_attempts", "updated_at"
        ).get(pk=delivery.pk)
        seen.update(row)
        original_post(handler)

    receiver.server.RequestHandlerClass.do_POST = do_post
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=NOW)
    with time_machine.travel(NOW, tick=False):
        assert webhook_deliver(delivery_id=delivery.pk) == State.DELIVERED
    assert seen == {
        "next_attempt_at": NOW + timedelta(seconds=60),
        "attempt_count": 1,
        "round_attempts": 1,
        "updated_at": NOW,
    }


def test_a_long_error_is_cut_to_300_characters_in_both_rows(receiver, monkeypatch, committed):
    delivery = delivery_for(receiver.url)
    host = ".".join(["h" * 60] * 5) + ".example.com"  # named in the error, which runs past 300
    unresolvable_only(monkeypatch, host, "x" * 400)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(url=f"https://{host}/hooks")
    with committed():
        assert webhook_deliver(delivery_id=delivery.pk) == State.PENDING
    delivery.refresh_from_db()
    (attempt,) = WebhookAttempt.objects.filter(delivery=delivery)
    assert len(attempt.error) == 300 and attempt.status_code is None
    assert delivery.last_error == attempt.error
    assert delivery.last_status_code is None


@pytest.mark.django_db(transaction=True)
def test_a_try_overtaken_by_send_again_leaves_the_newer_round_alone(receiver):
    """A "Send again" while the try is in flight: the try's outcome is not written over it."""
    receiver.statuses = [500]
    alice = make_user("alice", 10_000)
    generation = generation_started(alice, receiver.url)
    generation_succeeded(generation)
    delivery = WebhookDelivery.objects.get(generation=generation)
    original_post = receiver.server.RequestHandlerClass.do_POST

    def do_post(handler):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempt_count=5, round_attempts=0, next_attempt_at=NOW
        )
        original_post(handler)

    receiver.server.RequestHandlerClass.do_POST = do_post
    assert webhook_deliver(delivery_id=delivery.pk) == State.PENDING
    delivery.refresh_from_db()
    assert delivery.attempt_count == 5 and delivery.round_attempts == 0
    assert delivery.next_attempt_at == NOW and delivery.last_status_code is None


# --- webhook_delivery_resend ----------------------------------------------------------------------


def test_send_again_starts_a_new_round_now_for_that_delivery_only(receiver, committed):
    receiver.statuses = [500]
    delivery = delivery_for(receiver.url, state=State.FAILED, attempt_count=8, round_attempts=8)
    other = WebhookDelivery.objects.get(generation=ended(receiver.url, "bob"))
    WebhookDelivery.objects.filter(pk=other.pk).update(state=State.FAILED, attempt_count=8, round_attempts=8)
    with time_machine.travel(NOW, tick=False), committed():
        resent = webhook_delivery_resend(user=delivery.user, delivery_id=delivery.pk)
    assert resent.pk == delivery.pk
    assert resent.state == State.PENDING and resent.round_attempts == 0 and resent.attempt_count == 8
    assert resent.next_attempt_at == NOW and resent.updated_at == NOW
    assert webhook_jobs_queued() == [("generations.jobs.deliver_webhook", (delivery.pk,))]
    other.refresh_from_db()
    assert other.state == State.FAILED and other.round_attempts == 8


def test_send_again_refuses_a_delivered_one_an_untried_one_and_another_users(receiver):
    delivery = delivery_for(receiver.url, state=State.DELIVERED, attempt_count=1)
    with pytest.raises(NothingToResend) as refused:
        webhook_delivery_resend(user=delivery.user, delivery_id=delivery.pk)
    assert refused.value.message == "This webhook was delivered already, so there is nothing to send again."
    WebhookDelivery.objects.filter(pk=delivery.pk).update(state=State.PENDING, attempt_count=0)
    with pytest.raises(NothingToResend):
        webhook_delivery_resend(user=delivery.user, delivery_id=delivery.pk)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempt_count=1)
    with pytest.raises(WebhookDelivery.DoesNotExist):
        webhook_delivery_resend(user=make_user("mallory"), delivery_id=delivery.pk)
    assert webhook_jobs_queued() == []
    assert webhook_delivery_resend(user=delivery.user, delivery_id=delivery.pk).state == State.PENDING


# --- deliveries_resume ----------------------------------------------------------------------------


def test_the_sweeper_queues_again_pending_deliveries_overdue_by_more_than_a_minute(committed):
    due = delivery_for("https://example.com/a", next_attempt_at=NOW - timedelta(seconds=61))
    generation = due.generation
    on_time = WebhookDelivery.objects.create(
        generation=generation,
        user=due.user,
        event="generation.on-time",
        webhook_id="msg_on_time",
        url="https://example.com/a",
        next_attempt_at=NOW - timedelta(seconds=60),
    )
    failed = WebhookDelivery.objects.create(
        generation=generation,
        user=due.user,
        event="generation.gave-up",
        webhook_id="msg_failed",
        url="https://example.com/a",
        state=State.FAILED,
        next_attempt_at=NOW - timedelta(hours=1),
    )
    with committed():
        assert deliveries_resume(now=NOW) == [f"webhook delivery {due.pk} queued again"]
    assert webhook_jobs_queued() == [("generations.jobs.deliver_webhook", (due.pk,))]
    assert on_time.pk and failed.pk
    with time_machine.travel(NOW + timedelta(seconds=1), tick=False):
        assert sorted(deliveries_resume()) == sorted(
            [f"webhook delivery {due.pk} queued again", f"webhook delivery {on_time.pk} queued again"]
        )


def test_the_sweeper_queues_at_most_500_a_pass(committed):
    first = delivery_for("https://example.com/a", next_attempt_at=NOW - timedelta(hours=1))
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            generation=first.generation,
            user=first.user,
            event=f"generation.x{i}",
            webhook_id=f"msg_bulk_{i}",
            url="https://example.com/a",
            next_attempt_at=NOW - timedelta(hours=1),
        )
        for i in range(500)
    )
    with committed():
        lines = deliveries_resume(now=NOW)
    assert len(lines) == 500
    assert len(webhook_jobs_queued()) == 500
