"""The pipeline end to end: the JSON API, a real RQ worker on real Redis, and the ShortAPI
simulator over real HTTP. Every outcome ends settled: a stored video and one charge, or a
failure and exactly one refund."""

import json
import subprocess
from datetime import timedelta

import imageio_ffmpeg
import pytest
import requests
import time_machine
from django.conf import settings as django_settings
from django.core import signing
from django.db.models import Sum
from django.test import Client
from django.utils import timezone

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditEntry
from generations import jobs, shortapi
from generations.models import Generation
from generations.services import (
    CALLBACK_SALT,
    CALLBACK_TOKEN_GRACE,
    callback_url,
    generation_claim_submit,
)
from tests.factories import api_for, balance, finished, ledger, make_user, run_jobs, settle, submit

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice_api_tx():
    alice = make_user("alice", 10_000)
    return alice, api_for(alice)


def pipeline_site():
    return django_settings.SITE_URL


def assert_refunded_once(generation, user, failure_class):
    assert generation.status == "failed"
    assert generation.failure_class == failure_class, generation.error_detail
    assert "credits have been returned" in generation.error
    assert ledger(generation) == [("charge", -generation.cost_cents), ("refund", generation.cost_cents)]
    user.refresh_from_db()
    assert balance(user) == 10_000
    assert audit_mismatches() == []


def probe(path):
    result = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-i", str(path)], capture_output=True, text=True
    )
    return result.stderr


def test_a_success_stores_a_playable_mp4_and_charges_once(pipeline, alice_api_tx):
    alice, api = alice_api_tx
    generation = submit(api, aspect_ratio="9:16", mode="fast")
    assert generation.cost_cents == 80
    generation = settle(generation)
    assert generation.status == "succeeded", generation.error_detail
    info = probe(generation.video.path)
    assert "Duration: 00:00:04" in info and "h264" in info and "180x320" in info
    assert ledger(generation) == [("charge", -80)]
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - 80
    assert generation.upstream_amount is not None and generation.upstream_job_id
    body = api.get(f"/api/v1/generations/{generation.pk}").json()
    assert body["status"] == "succeeded" and body["finished_at"] and body["error"] is None
    # The signed link is a plain GET with no session or token.
    video = Client().get(body["video_url"].removeprefix(pipeline_site()))
    assert video.status_code == 200 and video["Content-Type"] == "video/mp4"
    assert b"ftyp" in b"".join(video.streaming_content)[:16]
    run_jobs()  # the poster job
    generation.refresh_from_db()
    assert generation.poster.name.endswith(".jpg")
    assert audit_mismatches() == []


def test_with_callbacks_a_generation_takes_few_upstream_calls(pipeline, alice_api_tx, settings):
    # The first poll is booked an hour out, so the callback alone (however late it comes on a
    # loaded machine) can be what ends this generation: no race between the two.
    settings.GENERATION_FIRST_POLL_SECONDS = 3600
    _, api = alice_api_tx
    generation = settle(submit(api))
    assert generation.status == "succeeded"
    stats = pipeline.stats()
    assert stats["create_calls"] == 1
    assert stats["callbacks_sent"] == 1
    assert stats["create_calls"] + stats["query_calls"] <= 3


def test_an_upstream_failure_refunds_once(pipeline, alice_api_tx):
    alice, api = alice_api_tx
    generation = settle(submit(api, "[sim:fail] a cat"))
    assert_refunded_once(generation, alice, "upstream_failed")
    assert "Content moderation" in generation.error


def test_a_create_error_code_refunds_once(pipeline, alice_api_tx):
    alice, api = alice_api_tx
    generation = settle(submit(api, "[sim:create-error] a dog"))
    assert_refunded_once(generation, alice, "create_rejected")
    assert pipeline.stats()["jobs"] == 0


def test_create_502s_and_503s_are_retried_and_make_one_job(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = settle(submit(api, "[sim:create-502x1][sim:create-503x1] a boat"))
    assert generation.status == "succeeded", generation.error_detail
    assert generation.submit_attempts == 3
    assert pipeline.stats()["jobs"] == 1


@pytest.mark.parametrize(
    "marker",
    [
        pytest.param("[sim:create-reset]", id="reset-after-sending"),
        pytest.param("[sim:create-504]", id="504"),
        pytest.param("[sim:create-malformed]", id="unreadable-200"),
    ],
)
def test_a_create_that_may_have_made_a_job_is_never_sent_again(pipeline, alice_api_tx, marker):
    # Each of these made the job upstream; sending the create again would make (and pay for) two.
    _, api = alice_api_tx
    generation = settle(submit(api, f"{marker} a lantern"))
    assert generation.status == "succeeded", generation.error_detail  # resumed by the callback
    assert generation.submit_attempts == 1
    assert pipeline.stats()["create_calls"] == 1
    assert pipeline.stats()["jobs"] == 1
    assert ledger(generation) == [("charge", -generation.cost_cents)]


def test_a_create_500_is_an_unknown_outcome_failed_and_refunded_by_the_sweeper(pipeline, alice_api_tx):
    # A 500 may come after the job was made: it is not sent again. Here none was made, so no
    # callback comes, and the sweeper fails and refunds it once the grace period is over.
    import time_machine
    from django.utils import timezone

    alice, api = alice_api_tx
    generation = submit(api, "[sim:create-500x1] a boat")
    run_jobs()
    generation.refresh_from_db()
    assert generation.status == "submitting" and "HTTP 500" in generation.error_detail
    with time_machine.travel(timezone.now() + jobs.UNKNOWN_OUTCOME_GRACE + timedelta(seconds=1)):
        assert jobs.reconcile() == [f"{generation.pk} failed: create never confirmed (refunded)"]
    generation.refresh_from_db()
    assert_refunded_once(generation, alice, "unknown_outcome")
    assert pipeline.stats()["create_calls"] == 1


def test_create_that_keeps_failing_gives_up_and_refunds(pipeline, alice_api_tx, settings):
    settings.GENERATION_SUBMIT_RETRY_SECONDS = 1
    alice, api = alice_api_tx
    # RQ books a delayed job to the whole second (its scheduled registry scores whole seconds), so
    # retries 0.2, 0.4 and 0.8 s apart can all run within the second they were booked in: up to six
    # attempts fit the one-second window. Upstream refuses more often than that.
    generation = settle(submit(api, "[sim:create-429x12] a tree"))
    assert_refunded_once(generation, alice, "create_failed")
    assert generation.submit_attempts < 12, generation.error_detail  # it gave up, upstream did not relent
    assert generation.error_detail.startswith(f"create failed {generation.submit_attempts} times over ")


def test_query_429_and_non_json_are_retried(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = settle(submit(api, "[sim:query-429x2][sim:query-nonjson-x1][sim:query-500x1] rain"))
    assert generation.status == "succeeded", generation.error_detail


def test_without_a_callback_polling_alone_finishes_it(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = settle(submit(api, "[sim:no-callback] a bridge"))
    assert generation.status == "succeeded"
    assert pipeline.stats()["callbacks_sent"] == 0


@pytest.mark.parametrize("marker", ["[sim:never]", "[sim:status-7]"])
def test_a_job_that_never_finishes_fails_at_its_deadline(pipeline, alice_api_tx, settings, marker):
    settings.GENERATION_DEADLINE_SECONDS = 2
    alice, api = alice_api_tx
    generation = settle(submit(api, f"{marker} a slow river"))
    assert_refunded_once(generation, alice, "deadline")
    if marker == "[sim:status-7]":
        assert generation.upstream_status == 7


@pytest.mark.parametrize(
    ("marker", "reason"),
    [
        ("[sim:video-404]", "HTTP 404"),
        ("[sim:video-big]", "cap"),
        ("[sim:video-html]", "not a video"),
        ("[sim:video-loopback]", "not a public address"),
    ],
)
def test_a_bad_result_video_fails_and_refunds(pipeline, alice_api_tx, marker, reason):
    alice, api = alice_api_tx
    generation = settle(submit(api, f"{marker} a lighthouse"))
    assert_refunded_once(generation, alice, "download_failed")
    assert reason in generation.error_detail
    assert not generation.video


def test_duplicate_callbacks_are_harmless_and_forged_ones_do_nothing(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = settle(submit(api))
    url = callback_url(generation.pk)
    for _ in range(3):
        assert requests.post(url, json={"job_id": "x", "status": 2}, timeout=5).status_code == 200
    run_jobs()
    assert ledger(generation) == [("charge", -generation.cost_cents)]
    forged = url.replace("/webhooks/shortapi/", "/webhooks/shortapi/x")
    assert requests.post(forged, json={}, timeout=5).status_code == 404
    other = Generation.objects.create(
        user=generation.user,
        prompt="p",
        mode="std",
        duration=4,
        aspect_ratio="16:9",
        cost_cents=96,
        cents_per_second=24,
        deadline_at=generation.deadline_at,
    )
    # A token for `other` signed with the wrong salt or key is refused as forged.
    for forged_token in (
        signing.dumps(str(other.pk), salt="something-else"),
        signing.dumps(str(other.pk), key="not-our-secret", salt=CALLBACK_SALT),
    ):
        forged = f"{pipeline_site()}/webhooks/shortapi/{forged_token}/"
        assert requests.post(forged, json={"job_id": "evil"}, timeout=5).status_code == 404
    other.refresh_from_db()
    assert other.upstream_job_id == "" and other.status == "queued"


def test_callbacks_need_post_and_no_csrf_token(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = submit(api)
    url = callback_url(generation.pk)
    assert requests.get(url, timeout=5).status_code == 405


def test_running_submit_twice_creates_one_upstream_job(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = submit(api)
    jobs.submit(str(generation.pk))
    jobs.submit(str(generation.pk))
    assert pipeline.stats()["create_calls"] == 1
    settle(generation)
    assert pipeline.stats()["jobs"] == 1


def test_a_worker_killed_between_create_and_save_is_resumed_by_the_callback(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = submit(api)
    django_queue_cleared = __import__("django_rq").get_queue("default").empty()
    assert django_queue_cleared >= 0
    # What a worker does before it dies: claim, call create upstream... and never save the answer.
    assert generation_claim_submit(generation_id=generation.pk)
    shortapi.create_job(
        prompt=generation.prompt,
        mode=generation.mode,
        duration=generation.duration,
        aspect_ratio=generation.aspect_ratio,
        callback_url=callback_url(generation.pk),
    )
    generation = settle(generation)
    assert generation.status == "succeeded", generation.error_detail
    assert pipeline.stats()["jobs"] == 1
    assert ledger(generation) == [("charge", -generation.cost_cents)]


def stuck_after_create(api, prompt="A red fox in fresh snow"):
    """A generation whose worker died after claiming the create call, before saving its answer:
    the state a callback's job id is allowed to resume."""
    generation = submit(api, prompt)
    assert generation_claim_submit(generation_id=generation.pk)
    return generation


def test_a_forged_callback_naming_another_users_job_changes_nothing(pipeline):
    alice, bob = make_user("alice", 10_000), make_user("bob", 10_000)
    bobs = settle(submit(api_for(bob), "[sim:seconds=0.2] bob's secret project"))
    assert bobs.status == "succeeded"
    alices = stuck_after_create(api_for(alice), "[sim:seconds=0.2] bob's secret project")
    # Alice read her own callback URL in an access log and posts Bob's job id to it: even with
    # the very same prompt, the job is Bob's generation's, not hers.
    assert requests.post(callback_url(alices.pk), json={"job_id": bobs.upstream_job_id}, timeout=5).ok
    run_jobs()
    alices.refresh_from_db()
    assert (alices.status, alices.upstream_job_id, alices.video.name) == ("submitting", "", "")
    bobs.refresh_from_db()
    assert bobs.status == "succeeded" and bobs.user_id == bob.pk


def test_a_callback_naming_a_job_made_for_other_args_changes_nothing(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = stuck_after_create(api, "a quiet harbour")
    # A job nobody's generation has, but made for another prompt (or mode, length, ratio).
    for args in ({"prompt": "something else"}, {"duration": 5}, {"mode": "fast"}):
        other = shortapi.create_job(
            **{"prompt": generation.prompt, "mode": "std", "duration": 4, "aspect_ratio": "16:9", **args},
            callback_url=None,
        )
        requests.post(callback_url(generation.pk), json={"job_id": other.job_id}, timeout=5)
    run_jobs()
    generation.refresh_from_db()
    assert generation.status == "submitting" and generation.upstream_job_id == ""


def test_a_callback_job_is_refused_when_upstream_does_not_echo_the_request(
    pipeline, alice_api_tx, monkeypatch
):
    alice, api = alice_api_tx
    monkeypatch.setattr(pipeline, "echo_request", False)  # as the real provider may answer
    generation = stuck_after_create(api)
    shortapi.create_job(
        prompt=generation.prompt,
        mode=generation.mode,
        duration=generation.duration,
        aspect_ratio=generation.aspect_ratio,
        callback_url=callback_url(generation.pk),
    )
    run_jobs(lambda: pipeline.stats()["callbacks_sent"] == 1)
    run_jobs()
    generation.refresh_from_db()
    assert generation.status == "submitting" and generation.upstream_job_id == ""
    # The safe side: the sweeper fails the unconfirmed create and gives the credits back.
    with time_machine.travel(timezone.now() + jobs.UNKNOWN_OUTCOME_GRACE + timedelta(seconds=1)):
        jobs.reconcile()
    generation.refresh_from_db()
    assert_refunded_once(generation, alice, "unknown_outcome")


def test_an_expired_callback_token_is_refused(pipeline, alice_api_tx, settings):
    _, api = alice_api_tx
    generation = stuck_after_create(api)
    job = shortapi.create_job(
        prompt=generation.prompt,
        mode=generation.mode,
        duration=generation.duration,
        aspect_ratio=generation.aspect_ratio,
        callback_url=None,
    )
    lifetime = timedelta(seconds=settings.GENERATION_DEADLINE_SECONDS) + CALLBACK_TOKEN_GRACE
    with time_machine.travel(timezone.now() - lifetime - timedelta(minutes=1)):
        old = callback_url(generation.pk)
    response = requests.post(old, json={"job_id": job.job_id}, timeout=5)
    assert response.status_code == 404
    run_jobs()
    generation.refresh_from_db()
    assert generation.status == "submitting" and generation.upstream_job_id == ""
    # A token as old as the generation's whole life, and then some, still works.
    with time_machine.travel(timezone.now() - lifetime + timedelta(minutes=1)):
        fresh_enough = callback_url(generation.pk)
    assert requests.post(fresh_enough, json={"job_id": job.job_id}, timeout=5).status_code == 200
    generation = settle(generation)
    assert generation.status == "succeeded" and generation.upstream_job_id == job.job_id


def test_a_create_timeout_waits_for_the_callback_and_never_creates_twice(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = settle(submit(api, "[sim:create-timeout] a storm"), timeout=30)
    assert generation.status == "succeeded", generation.error_detail
    assert pipeline.stats()["create_calls"] == 1


def test_402_and_429_leave_nothing_behind(pipeline, settings):
    poor = make_user("carol", 50)
    api = api_for(poor)
    response = api.post("/api/v1/generations", {"prompt": "too expensive"})
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 1
    rich = make_user("dave", 10_000)
    api = api_for(rich)
    assert api.post("/api/v1/generations", {"prompt": "one"}).status_code == 201
    response = api.post("/api/v1/generations", {"prompt": "two"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert Generation.objects.count() == 1
    assert CreditEntry.objects.filter(kind="charge").count() == 1
    assert __import__("django_rq").get_queue("default").count == 1
    assert audit_mismatches() == []


def test_the_ledger_sums_to_the_balance_after_a_mix_of_outcomes(pipeline, alice_api_tx):
    alice, api = alice_api_tx
    gens = [submit(api, p) for p in ["ok one", "[sim:fail] bad", "[sim:video-404] gone", "ok two"]]
    run_jobs(lambda: all(finished(g)() for g in gens))
    alice.refresh_from_db()
    total = CreditEntry.objects.filter(user=alice).aggregate(s=Sum("amount_cents"))["s"]
    assert balance(alice) == total == 10_000 - 2 * 96
    assert audit_mismatches() == []


def test_every_log_line_about_a_generation_carries_its_id(pipeline, alice_api_tx):
    import logging

    from seedance_site.logs import ContextFilter, JsonFormatter

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    keep = Keep()
    keep.addFilter(ContextFilter())
    logger = logging.getLogger("generations")
    logger.addHandler(keep)
    try:
        _, api = alice_api_tx
        generation = settle(submit(api, "[sim:fail] logged"))
    finally:
        logger.removeHandler(keep)
    job_lines = [r for r in keep.records if r.name in ("generations.jobs", "generations.services")]
    worker_lines = [r for r in job_lines if r.context_fields]
    assert worker_lines and all(r.context_fields == {"generation": str(generation.pk)} for r in worker_lines)
    line = json.loads(JsonFormatter().format(worker_lines[-1]))
    assert line["generation"] == str(generation.pk) and line["level"] == "WARNING"


def test_with_object_storage_the_video_link_redirects_to_the_storage(pipeline, alice_api_tx, settings):
    # Django's in-memory storage has no local path, like S3: the bytes are not proxied.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    _, api = alice_api_tx
    generation = settle(submit(api))
    assert generation.status == "succeeded"
    body = api.get(f"/api/v1/generations/{generation.pk}").json()
    response = Client().get(body["video_url"].removeprefix(pipeline_site()))
    assert response.status_code == 302
    assert response["Location"].endswith(".mp4")
    from django.core.files.storage import default_storage

    with default_storage.open(generation.video.name) as stored:
        assert stored.read(12)[4:8] == b"ftyp"


def test_a_bucket_name_switches_media_to_s3():
    from tests.factories import run_manage

    result = run_manage(
        "shell",
        "-c",
        "from django.core.files.storage import storages; print(type(storages['default']).__name__)",
        DJANGO_SECRET_KEY="x" * 60,
        AWS_STORAGE_BUCKET_NAME="videos",
        AWS_S3_ENDPOINT_URL="http://127.0.0.1:9",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "S3Storage"


def test_the_video_link_answers_byte_ranges_for_seeking_and_iphones(pipeline, alice_api_tx):
    _, api = alice_api_tx
    generation = settle(submit(api))
    path = api.get(f"/api/v1/generations/{generation.pk}").json()["video_url"].removeprefix(pipeline_site())
    whole = b"".join(Client().get(path).streaming_content)
    size = len(whole)
    first = Client().get(path, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206
    assert first["Content-Range"] == f"bytes 0-99/{size}" and first["Content-Length"] == "100"
    assert b"".join(first.streaming_content) == whole[:100]
    tail = Client().get(path, headers={"Range": "bytes=-10"})
    assert b"".join(tail.streaming_content) == whole[-10:]
    rest = Client().get(path, headers={"Range": f"bytes={size - 5}-"})
    assert b"".join(rest.streaming_content) == whole[-5:]
    outside = Client().get(path, headers={"Range": f"bytes={size}-"})
    assert outside.status_code == 416 and outside["Content-Range"] == f"bytes */{size}"
    assert Client().get(path)["Accept-Ranges"] == "bytes"


def test_deleting_a_finished_video_keeps_the_books_balanced(pipeline, alice_api_tx):
    from django.core.files.storage import default_storage

    from generations.services import generation_delete

    alice, api = alice_api_tx
    generation = settle(submit(api))
    failed = settle(submit(api, "[sim:fail] refunded, then deleted"))
    run_jobs()  # the poster
    generation.refresh_from_db()
    video = generation.video.name
    for doomed in (generation, failed):
        generation_delete(generation=doomed)
    assert not default_storage.exists(video)
    assert api.get(f"/api/v1/generations/{generation.pk}").status_code == 404
    assert api.get("/api/v1/generations").json()["results"] == []
    # The charge (and the failed one's refund) still name their generations: the audit passes.
    assert ledger(generation) == [("charge", -generation.cost_cents)]
    assert audit_mismatches() == []
    alice.refresh_from_db()
    assert balance(alice) == 10_000 - generation.cost_cents
