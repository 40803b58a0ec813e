"""Following an upstream job: one poll chain per generation, whatever else polls it; the deadline
asks once more; odd answers (a huge status, a very long URL, a refunded job) never break a poll;
downloads have a time limit of their own and say they are alive. Real worker, real simulator."""

import threading
from datetime import timedelta

import django_rq
import pytest
import requests
import time_machine
from django.db import connections
from django.utils import timezone
from rq.registry import FailedJobRegistry

from accounts.billing.audit import audit_mismatches
from generations import jobs
from generations.models import Generation
from generations.operations import generation_poll_now
from generations.reports import day_overview
from generations.services import callback_url
from tests.factories import run_jobs, status, submit, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def booked_polls(generation) -> list[tuple]:
    """The polls of this generation waiting in Redis (queued or scheduled), as (args...)."""
    queue = django_rq.get_queue("default")
    ids = queue.job_ids + queue.scheduled_job_registry.get_job_ids()
    booked = [queue.fetch_job(job_id) for job_id in ids]
    return [
        tuple(job.args)
        for job in booked
        if job is not None and job.func_name == "generations.jobs.poll" and job.args[0] == str(generation.pk)
    ]


def failed_jobs() -> list[str]:
    queue = django_rq.get_queue("default")
    registry = FailedJobRegistry(queue=queue)
    return [queue.fetch_job(job_id).exc_info for job_id in registry.get_job_ids()]


def test_polls_per_round_stay_at_one_however_many_callbacks_and_operator_polls(api, settings, pipeline):
    settings.GENERATION_POLL_INITIAL_SECONDS = 60  # the chain's next link stays booked while we look
    settings.GENERATION_POLL_MAX_SECONDS = 60
    generation = submit(api, "[sim:never] a tide that never turns")
    # The chain's first link (0.2 s after the create) runs and books the second, a minute on.
    run_jobs(lambda: Generation.objects.get(pk=generation.pk).poll_count == 1)
    assert [args[1:] for args in booked_polls(generation)] == [(1,)]

    for _ in range(3):
        for _ in range(4):  # the provider calling back again and again, as under a backlog
            assert (
                requests.post(callback_url(generation.pk), json={"status": 1}, timeout=5).status_code == 200
            )
        generation.refresh_from_db()
        assert generation_poll_now(generation=generation, operator="olga")
        with time_machine.travel(timezone.now() + timedelta(minutes=1)):
            assert jobs.reconcile() == []  # the chain is alive: the sweeper leaves it alone
        run_jobs()  # every ad-hoc poll runs (and queries upstream)...

        # ...and none of them started a chain of its own.
        assert [args[1:] for args in booked_polls(generation)] == [(1,)]
    assert status(generation) == "running"
    assert failed_jobs() == []


def test_the_sweeper_restarts_a_lost_chain_and_a_late_link_of_the_old_one_stops(api, settings):
    settings.GENERATION_FIRST_POLL_SECONDS = 60
    generation = submit(api, "[sim:never][sim:no-callback] a lost chain")
    run_jobs(lambda: status(generation) == "running")
    django_rq.get_connection("default").flushdb()  # Redis lost the chain's booked link (number 0)

    with time_machine.travel(timezone.now() + timedelta(minutes=4)):
        assert jobs.reconcile() == [f"{generation.pk} resumed: poll queued"]
        assert jobs.reconcile() == []  # restarted once, not on every sweep
    assert booked_polls(generation) == [(str(generation.pk), 1)]
    jobs.poll(str(generation.pk), 0)  # the old link turns up after all: it does nothing
    run_jobs()
    generation.refresh_from_db()
    assert generation.poll_count == 2
    assert [args[1:] for args in booked_polls(generation)] == [(2,)]


def test_a_poll_at_the_deadline_asks_upstream_once_more_before_failing(api, pipeline):
    generation = submit(api, "[sim:never][sim:no-callback] finished just in time")
    run_jobs(lambda: status(generation) == "running")
    generation.refresh_from_db()
    pipeline.finish(generation.upstream_job_id)  # done upstream, and nobody has asked since

    with time_machine.travel(generation.deadline_at + timedelta(seconds=1)):
        jobs.poll(str(generation.pk))  # finds it done, claims the download and makes it
        assert status(generation) == "succeeded"
    assert audit_mismatches() == []


def test_a_poll_past_the_deadline_of_an_unfinished_job_fails_and_refunds(api, pipeline):
    generation = submit(api, "[sim:never][sim:no-callback] never done")
    run_jobs(lambda: status(generation) == "running")
    generation.refresh_from_db()
    queries = pipeline.jobs[generation.upstream_job_id].query_calls

    with time_machine.travel(generation.deadline_at + timedelta(seconds=1)):
        jobs.poll(str(generation.pk))

    generation.refresh_from_db()
    assert (generation.status, generation.failure_class) == ("failed", "deadline")
    assert pipeline.jobs[generation.upstream_job_id].query_calls == queries + 1
    assert audit_mismatches() == []


def test_a_result_url_over_2000_characters_is_stored_and_its_video_fetched(api):
    generation = submit(api, "[sim:long-url] a signed link")
    run_jobs(lambda: status(generation) in ("succeeded", "failed"))
    generation.refresh_from_db()
    assert generation.status == "succeeded", generation.error_detail
    assert len(generation.result_url) > 2000
    assert failed_jobs() == []


def test_an_out_of_range_upstream_status_keeps_polling_until_the_deadline(api, settings):
    settings.GENERATION_DEADLINE_SECONDS = 3
    generation = submit(api, "[sim:status-70000][sim:seconds=0.5] a status from the future")
    run_jobs(lambda: status(generation) in ("succeeded", "failed"), timeout=30)
    generation.refresh_from_db()
    assert (generation.status, generation.failure_class) == ("failed", "deadline")
    assert generation.poll_count > 1 and generation.upstream_status is None
    assert failed_jobs() == []
    assert audit_mismatches() == []


def test_the_overview_does_not_count_jobs_the_provider_refunded_as_spend(api):
    generation = submit(api, "[sim:fail] refused upstream, refunded upstream")
    run_jobs(lambda: status(generation) == "failed")
    generation.refresh_from_db()
    assert generation.upstream_amount > 0 and generation.upstream_refunded

    overview = day_overview()

    assert overview.upstream_spend_usd == 0
    assert overview.revenue_cents == 0 and overview.margin_usd == 0


def test_fetch_may_run_longer_than_rqs_default_but_not_past_its_download_limit(api, settings, pipeline):
    """The fetch job (the sweeper's, or a retry) and the poll (which downloads the video itself
    when it finds it done) both get a time limit above the download's own."""
    from generations.services import enqueue

    settings.VIDEO_DOWNLOAD_MAX_SECONDS = 20 * 60
    generation = submit(api, "[sim:never][sim:no-callback] a long download")
    run_jobs(lambda: status(generation) == "running")
    queue = django_rq.get_queue("default")
    queue.empty()

    enqueue("generations.jobs.poll", str(generation.pk))
    enqueue("generations.jobs.fetch", str(generation.pk))

    assert sorted(job.func_name for job in queue.jobs) == ["generations.jobs.fetch", "generations.jobs.poll"]
    for job in queue.jobs:
        assert job.timeout > settings.VIDEO_DOWNLOAD_MAX_SECONDS > 300  # RQ's default would kill it


def test_a_download_slower_than_its_limit_is_cut_off(api, settings, pipeline):
    pipeline.slow_seconds = 3
    settings.VIDEO_DOWNLOAD_MAX_SECONDS = 1
    settings.GENERATION_FETCH_ATTEMPTS = 1
    generation = submit(api, "[sim:video-slow] a trickle")
    run_jobs(lambda: status(generation) in ("succeeded", "failed"), timeout=30)
    generation.refresh_from_db()
    assert generation.failure_class == "download_failed"
    assert "the download took over 1 s" in generation.error_detail
    assert audit_mismatches() == []


def test_a_live_download_keeps_its_row_fresh_so_the_sweeper_leaves_it_alone(api, settings, pipeline):
    pipeline.slow_seconds = 4
    settings.GENERATION_FETCH_HEARTBEAT_SECONDS = 0.1
    generation = submit(api, "[sim:never][sim:no-callback][sim:video-slow] a long, live download")
    run_jobs(lambda: status(generation) == "running")
    generation.refresh_from_db()
    pipeline.finish(generation.upstream_job_id)
    # What a poll that finds it done claims (then it downloads; here a thread does, below).
    from generations import shortapi
    from generations.services import generation_claim_fetch

    video_url = shortapi.query_job(generation.upstream_job_id).video_url
    assert generation_claim_fetch(generation_id=generation.pk, result_url=video_url, upstream_status=2)
    django_rq.get_queue("default").empty()

    def download() -> None:
        try:
            jobs.fetch(str(generation.pk))
        finally:
            connections.close_all()

    downloading = threading.Thread(target=download)

    # Eleven minutes on (the sweeper takes a fetch untouched for ten for lost), mid-download.
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        later = timezone.now()
        downloading.start()
        try:
            wait_for(
                lambda: Generation.objects.get(pk=generation.pk).updated_at >= later,
                what="the download to say it is alive",
            )
            assert status(generation) == "fetching"
            assert jobs.reconcile() == []  # alive: not queued a second time
        finally:
            downloading.join(timeout=30)
    assert status(generation) == "succeeded"
    assert django_rq.get_queue("default").count == 0
    assert [job.func_name for job in django_rq.get_queue("low").jobs] == ["generations.jobs.make_poster"]
