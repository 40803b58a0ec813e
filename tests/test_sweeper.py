"""The sweeper (`reconcile_generations`, also run every minute by the worker): whatever was
lost — a job, a worker, Redis' whole memory — every generation ends finished and settled."""

import threading
from datetime import timedelta
from io import StringIO

import django_rq
import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from accounts.billing.audit import audit_mismatches
from generations import jobs, shortapi
from generations.models import Generation
from generations.services import generation_claim_submit, generation_mark_running
from generations.worker import schedule_sweeper
from tests.factories import (
    balance,
    in_threads,
    run_jobs,
    status,
    submit,
    wait_for,
    wait_for_a_lock_wait,
)

pytestmark = pytest.mark.django_db(transaction=True)


def lose_every_job():
    """What a Redis restart without persistence does."""
    django_rq.get_connection("default").flushdb()


def reconcile_output() -> list[str]:
    out = StringIO()
    call_command("reconcile_generations", stdout=out)
    return out.getvalue().splitlines()


def test_a_queued_generation_whose_job_was_lost_is_submitted_again(api):
    generation = submit(api)
    lose_every_job()
    assert reconcile_output() == []  # too early to call it lost
    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        assert reconcile_output() == [f"{generation.pk} resumed: submit queued again"]
    run_jobs(lambda: status(generation) == "succeeded")
    assert audit_mismatches() == []


def test_a_running_generation_whose_polls_were_lost_is_polled_again(api, settings):
    settings.GENERATION_FIRST_POLL_SECONDS = 60
    generation = submit(api, "[sim:no-callback] lost polls")
    run_jobs(lambda: status(generation) == "running")
    lose_every_job()
    with time_machine.travel(timezone.now() + timedelta(minutes=4)):
        lines = reconcile_output()
    assert lines == [f"{generation.pk} resumed: poll queued"]
    run_jobs(lambda: status(generation) == "succeeded")
    assert audit_mismatches() == []


def test_a_submit_whose_worker_died_and_never_called_back_is_failed_and_refunded(api):
    generation = submit(api)
    lose_every_job()
    assert generation_claim_submit(generation_id=generation.pk)  # then the worker died
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        lines = reconcile_output()
        assert lines == [f"{generation.pk} failed: create never confirmed (refunded)"]
        assert reconcile_output() == []  # settled once, never twice
    generation.refresh_from_db()
    assert generation.status == "failed" and generation.failure_class == "unknown_outcome"
    assert balance(generation.user) == 10_000
    assert audit_mismatches() == []


def test_a_generation_past_its_deadline_is_failed_and_refunded(api, settings):
    settings.GENERATION_FIRST_POLL_SECONDS = 600
    generation = submit(api, "[sim:never] forever")
    run_jobs(lambda: status(generation) == "running")
    lose_every_job()
    with time_machine.travel(generation.deadline_at + timedelta(seconds=1)):
        assert reconcile_output() == [f"{generation.pk} resumed: poll queued (past deadline)"]
        run_jobs(lambda: status(generation) == "failed")
    generation.refresh_from_db()
    assert generation.failure_class == "deadline"
    assert audit_mismatches() == []


def test_a_lost_download_is_fetched_again(api, settings, pipeline):
    settings.GENERATION_FIRST_POLL_SECONDS = 600
    generation = submit(api, "[sim:no-callback] lost fetch")
    run_jobs(lambda: status(generation) == "running")
    generation.refresh_from_db()
    pipeline.finish(generation.upstream_job_id)
    # A poll claims the download, then downloads in the same job: its worker dies in between
    # (or a fetch job queued by a retry is lost). Here: the claim alone.
    from generations import shortapi
    from generations.services import generation_claim_fetch

    video_url = shortapi.query_job(generation.upstream_job_id).video_url
    assert generation_claim_fetch(generation_id=generation.pk, result_url=video_url, upstream_status=2)
    assert status(generation) == "fetching"
    lose_every_job()  # ...and whatever was queued is lost
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert reconcile_output() == [f"{generation.pk} resumed: fetch queued again"]
    run_jobs(lambda: status(generation) == "succeeded")
    assert audit_mismatches() == []


def test_running_the_sweeper_on_settled_generations_touches_nothing(api):
    generation = submit(api)
    run_jobs(lambda: status(generation) == "succeeded")
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        assert reconcile_output() == []
        jobs.reconcile()
    assert audit_mismatches() == []


def test_the_sweeper_is_booked_once_per_minute_however_many_workers_book_it():
    for _ in range(3):
        schedule_sweeper()
    registry = django_rq.get_queue("default").scheduled_job_registry
    assert len([j for j in registry.get_job_ids() if j.startswith("sweeper-")]) == 1


def test_the_sweeper_never_fails_a_generation_a_callback_has_just_resumed(api):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks to hold the sweeper between its read and its claim")
    generation = submit(api, "[sim:no-callback] resumed at the last moment")
    lose_every_job()
    assert generation_claim_submit(generation_id=generation.pk)  # then the worker died mid-create...
    job = shortapi.create_job(  # ...after its create call had reached upstream
        prompt=generation.prompt, mode="std", duration=4, aspect_ratio="16:9", callback_url=None
    )
    locked, release = threading.Event(), threading.Event()
    swept: list[str] = []

    def callback_resumes_it() -> None:
        with transaction.atomic():
            Generation.objects.select_for_update().filter(pk=generation.pk).get()
            locked.set()
            release.wait(timeout=30)
            assert generation_mark_running(generation_id=generation.pk, job_id=job.job_id, first_poll_in=0.2)

    def sweeper_runs() -> None:
        locked.wait(timeout=30)
        # It reads "submitting, untouched for 11 minutes"; its claim then waits for the lock.
        swept.extend(jobs.reconcile())

    def release_once_the_sweeper_waits() -> None:
        locked.wait(timeout=30)
        wait_for_a_lock_wait()
        release.set()

    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        in_threads(callback_resumes_it, sweeper_runs, release_once_the_sweeper_waits)

    assert swept == []
    assert status(generation) == "running"

    # Its first scheduled poll was booked in the travelled-to time, eleven minutes ahead: poll it
    # as a callback would (an ad-hoc poll books no other) until upstream has finished the job.
    def polled_to_the_end() -> bool:
        jobs.poll(str(generation.pk))
        return status(generation) == "succeeded"

    wait_for(polled_to_the_end, timeout=60, what="the resumed generation to succeed")
    assert audit_mismatches() == []
