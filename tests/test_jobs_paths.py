"""The RQ jobs' less travelled paths (generations.jobs): a callback's job id checked again and
given up on, a job id another generation took meanwhile, a claim lost to a twin or to the sweeper
between a job's read and its write, a video host that is down, a poster that could not be stored
with its video. The jobs run in this thread against the simulator over HTTP; the party that moves
the row meanwhile is a real second connection, held on PostgreSQL's row lock until the job waits.
"""

import logging
import socket
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
import time_machine
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from accounts.billing.audit import audit_mismatches
from accounts.models import User
from generations import jobs, shortapi
from generations.models import Generation
from generations.services import (
    generation_claim_fetch,
    generation_claim_submit,
    generation_create,
    generation_delete,
    generation_fail,
    generation_fetch_heartbeat,
    generation_mark_running,
    generation_restart_polling,
    generation_succeed,
)
from tests.factories import balance, in_threads, ledger, make_user, status, wait_for, wait_for_a_lock_wait

pytestmark = pytest.mark.django_db(transaction=True)

Status = Generation.Status
CHARGE, REFUND = "charge", "refund"


def needs_row_locks() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks to hold the job between its read and its write")


def booked(func_name: str) -> list[tuple]:
    """The jobs of this kind waiting in Redis (queued or scheduled), as their args."""
    found = []
    for name in ("default", "low"):
        queue = django_rq.get_queue(name)
        found += [queue.fetch_job(i) for i in queue.job_ids + queue.scheduled_job_registry.get_job_ids()]
    return sorted(tuple(job.args) for job in found if job is not None and job.func_name == func_name)


def charged(prompt: str) -> Generation:
    """A queued generation with its credits held; the submit job its create queued is dropped, so
    each step below is run by hand."""
    user = User.objects.filter(username="alice").first() or make_user("alice", 10_000)
    generation, _ = generation_create(user=user, prompt=prompt, mode="std", duration=4, aspect_ratio="16:9")
    django_rq.get_queue("default").empty()
    return generation


def submitting(prompt: str) -> Generation:
    generation = charged(prompt)
    assert generation_claim_submit(generation_id=generation.pk)
    return generation


def lost_create(generation: Generation) -> str:
    """The create call that reached upstream but whose answer was lost: the job id a callback names."""
    return shortapi.create_job(**jobs.job_request(generation), callback_url=None).job_id


def running(prompt: str) -> tuple[Generation, str]:
    generation = submitting(prompt)
    job_id = lost_create(generation)
    assert generation_mark_running(generation_id=generation.pk, job_id=job_id, first_poll_in=60)
    return generation, job_id


def fetching(simulator, prompt: str) -> Generation:
    """A generation whose upstream job is done, claimed for download from the simulator."""
    generation, job_id = running(prompt)
    simulator.finish(job_id)
    state = shortapi.query_job(job_id)
    assert state.succeeded
    assert generation_claim_fetch(
        generation_id=generation.pk, result_url=state.video_url, upstream_status=2, queue_fetch=False
    )
    return generation


def row(generation: Generation) -> Generation:
    return Generation.objects.get(pk=generation.pk)


def held_while(hold: Callable[[], object], job: Callable[[], object]) -> None:
    """`hold` runs in a transaction of its own that stays open until `job` (started once it is
    open) waits for a row lock; then it commits and the job goes on. Both must finish cleanly."""
    opened, release = threading.Event(), threading.Event()

    def holder() -> None:
        with transaction.atomic():
            hold()
            opened.set()
            assert release.wait(timeout=30)

    def worker() -> None:
        assert opened.wait(timeout=30)
        job()

    def releaser() -> None:
        assert opened.wait(timeout=30)
        wait_for_a_lock_wait()
        release.set()

    in_threads(holder, worker, releaser)


def sweeper_fails(generation: Generation) -> Callable[[], object]:
    """What the sweeper does to a create that never answered: fail it and refund (a service)."""
    return lambda: generation_fail(
        generation_id=generation.pk,
        error="The video service did not confirm the request in time.",
        failure_class="unknown_outcome",
        from_statuses=(Status.SUBMITTING,),
    )


# --- adopt_job: a callback names a job for a generation whose create answer was lost -------------


def test_a_callbacks_job_is_checked_again_while_upstream_answers_500_and_then_adopted(pipeline):
    generation = submitting("[sim:no-callback][sim:query-500x2] a heron over a lake")
    job_id = lost_create(generation)
    gid = str(generation.pk)

    jobs.adopt_job(gid, job_id)

    assert booked("generations.jobs.adopt_job") == [(gid, job_id, 2)]
    assert row(generation).status == Status.SUBMITTING and row(generation).upstream_job_id == ""
    jobs.adopt_job(gid, job_id, 2)
    assert booked("generations.jobs.adopt_job") == [(gid, job_id, 2), (gid, job_id, 3)]
    jobs.adopt_job(gid, job_id, 3)  # upstream answers now
    assert row(generation).status == Status.RUNNING and row(generation).upstream_job_id == job_id
    assert pipeline.jobs[job_id].query_calls == 3
    assert pipeline.stats()["jobs"] == 1  # nothing was created again
    assert (gid,) in booked("generations.jobs.poll")


def test_a_callbacks_job_upstream_cannot_confirm_after_five_tries_is_left_to_the_sweeper(pipeline, caplog):
    generation = submitting("[sim:no-callback][sim:query-500x9] a heron over a lake")
    job_id = lost_create(generation)

    with caplog.at_level(logging.WARNING, logger="generations.jobs"):
        jobs.adopt_job(str(generation.pk), job_id, jobs.ADOPT_ATTEMPTS)

    assert booked("generations.jobs.adopt_job") == []
    assert f"could not check job {job_id} from a callback: HTTP 500" in caplog.text
    assert row(generation).status == Status.SUBMITTING and row(generation).upstream_job_id == ""


def test_a_callbacks_job_upstream_does_not_know_is_refused(pipeline, caplog):
    generation = submitting("[sim:no-callback] a heron over a lake")

    with caplog.at_level(logging.WARNING, logger="generations.jobs"):
        jobs.adopt_job(str(generation.pk), "job-nobody-made")

    assert "refused job job-nobody-made from a callback: ShortAPI query failed: job not found" in caplog.text
    assert booked("generations.jobs.adopt_job") == []
    assert row(generation).status == Status.SUBMITTING and row(generation).upstream_job_id == ""


def test_a_callbacks_job_for_a_generation_that_has_one_already_is_not_even_queried(pipeline):
    generation, job_id = running("[sim:no-callback] a heron over a lake")
    other = lost_create(submitting("[sim:no-callback] another heron"))
    queries = pipeline.stats()["query_calls"]

    jobs.adopt_job(str(generation.pk), other)

    assert pipeline.stats()["query_calls"] == queries
    assert row(generation).upstream_job_id == job_id


def test_a_callbacks_job_another_generation_took_meanwhile_is_refused(pipeline, caplog):
    needs_row_locks()
    generation = submitting("[sim:no-callback] a heron over a lake")
    other = submitting("[sim:no-callback] a crane over a lake")
    job_id = lost_create(generation)

    with caplog.at_level(logging.WARNING, logger="generations.jobs"):
        # The other generation takes the id after the check that no generation has it; our claim
        # then waits on the unique index for that transaction, and loses.
        held_while(
            lambda: generation_mark_running(generation_id=other.pk, job_id=job_id, first_poll_in=60),
            lambda: jobs.adopt_job(str(generation.pk), job_id),
        )

    assert f"refused job {job_id} from a callback: taken meanwhile" in caplog.text
    assert row(generation).status == Status.SUBMITTING and row(generation).upstream_job_id == ""
    assert row(other).status == Status.RUNNING and row(other).upstream_job_id == job_id
    assert booked("generations.jobs.poll") == [(str(other.pk), 0)]


def test_a_callbacks_job_for_a_generation_the_sweeper_failed_meanwhile_is_not_adopted(pipeline, caplog):
    needs_row_locks()
    generation = submitting("[sim:no-callback] a heron over a lake")
    job_id = lost_create(generation)

    with caplog.at_level(logging.WARNING, logger="generations.jobs"):
        held_while(sweeper_fails(generation), lambda: jobs.adopt_job(str(generation.pk), job_id))

    assert row(generation).status == Status.FAILED and row(generation).upstream_job_id == ""
    assert ledger(generation) == [(CHARGE, -96), (REFUND, 96)]
    assert booked("generations.jobs.poll") == []
    assert "resumed from a callback" not in caplog.text
    assert audit_mismatches() == []


# --- submit: the row moved while the create call was out ------------------------------------------


@pytest.fixture
def slow_upstream(pipeline, settings):
    """Upstream answers after 1.5 s (the create call is out that long), within the read timeout."""
    settings.SHORTAPI_READ_TIMEOUT = 10
    pipeline.latency = 1.5
    yield pipeline
    pipeline.latency = 0.0


def submit_while_the_sweeper_fails_it(generation: Generation) -> None:
    def the_sweeper() -> None:
        wait_for(lambda: status(generation) == Status.SUBMITTING, what="the submit job's claim")
        assert sweeper_fails(generation)()

    in_threads(lambda: jobs.submit(str(generation.pk)), the_sweeper)


def test_a_create_refused_for_now_of_a_generation_failed_meanwhile_is_not_queued_again(slow_upstream):
    generation = charged("[sim:no-callback][sim:create-503x1] a heron over a lake")

    submit_while_the_sweeper_fails_it(generation)

    assert row(generation).status == Status.FAILED
    assert booked("generations.jobs.submit") == []
    assert ledger(generation) == [(CHARGE, -96), (REFUND, 96)]
    assert slow_upstream.stats()["jobs"] == 0


def test_a_job_created_for_a_generation_failed_meanwhile_is_logged_and_not_taken(slow_upstream, caplog):
    generation = charged("[sim:no-callback] a heron over a lake")

    with caplog.at_level(logging.ERROR, logger="generations.jobs"):
        submit_while_the_sweeper_fails_it(generation)

    [job_id] = slow_upstream.jobs
    assert f"upstream job {job_id} created but the row had moved on" in caplog.text
    assert row(generation).status == Status.FAILED and row(generation).upstream_job_id == ""
    assert ledger(generation) == [(CHARGE, -96), (REFUND, 96)]
    assert booked("generations.jobs.poll") == []


# --- poll: the row moved between the poll's read and its claim --------------------------------------


def test_a_finished_job_seen_by_a_poll_after_the_generation_failed_is_not_downloaded(pipeline):
    needs_row_locks()
    generation, job_id = running("[sim:no-callback] a heron over a lake")
    pipeline.finish(job_id)

    def fails_at_its_deadline() -> None:
        assert generation_fail(generation_id=generation.pk, error="Too late.", failure_class="deadline")

    held_while(fails_at_its_deadline, lambda: jobs.poll(str(generation.pk)))

    assert row(generation).status == Status.FAILED and not row(generation).video
    assert pipeline.stats()["video_downloads"] == 0
    assert booked("generations.jobs.fetch") == []
    assert ledger(generation) == [(CHARGE, -96), (REFUND, 96)]


def test_a_poll_whose_chain_the_sweeper_replaced_meanwhile_books_no_next_link(pipeline):
    needs_row_locks()
    generation, _ = running("[sim:no-callback][sim:never] a heron over a lake")
    gid = str(generation.pk)

    held_while(
        lambda: generation_restart_polling(generation_id=generation.pk, seen_poll_count=0),
        lambda: jobs.poll(gid, 0),
    )

    # The first link (booked by the create) and the sweeper's new chain; none from the old one.
    assert booked("generations.jobs.poll") == [(gid, 0), (gid, 1)]
    assert row(generation).poll_count == 1 and row(generation).status == Status.RUNNING


# --- fetch ----------------------------------------------------------------------------------------


def test_a_download_finished_after_a_twin_stored_the_video_is_thrown_away(pipeline, settings):
    needs_row_locks()
    generation = fetching(pipeline, "[sim:no-callback][sim:video-slow] a heron over a lake")
    media = Path(settings.MEDIA_ROOT)

    def twin_stores_it_mid_download() -> None:
        # The fetch has claimed its attempt and the video is trickling in: a twin stores it first.
        wait_for(lambda: pipeline.stats()["video_downloads"] == 1, what="the download to begin")
        assert generation_succeed(generation_id=generation.pk, video_name="videos/twin.mp4", video_bytes=1)

    in_threads(lambda: jobs.fetch(str(generation.pk)), twin_stores_it_mid_download)

    assert pipeline.stats()["video_downloads"] == 1
    assert row(generation).status == Status.SUCCEEDED and row(generation).video.name == "videos/twin.mp4"
    assert not row(generation).poster
    assert [p for p in media.rglob("*") if p.is_file()] == []  # its own copy deleted
    assert ledger(generation) == [(CHARGE, -96)]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_video_host_that_is_down_is_tried_again_later_then_given_up_on(pipeline, settings):
    generation, _ = running("[sim:no-callback] a heron over a lake")
    host = f"http://127.0.0.1:{closed_port()}"
    settings.SHORTAPI_BASE_URL = host  # the provider's own host: trusted, yet nobody answers
    settings.GENERATION_FETCH_ATTEMPTS = 2
    assert generation_claim_fetch(
        generation_id=generation.pk, result_url=f"{host}/files/x.mp4", upstream_status=2, queue_fetch=False
    )
    gid = str(generation.pk)

    jobs.fetch(gid)

    assert booked("generations.jobs.fetch") == [(gid,)]
    assert row(generation).status == Status.FETCHING and row(generation).fetch_attempts == 1
    assert ledger(generation) == [(CHARGE, -96)]
    jobs.fetch(gid)  # the last attempt
    assert row(generation).status == Status.FAILED
    assert row(generation).error_detail.startswith("attempt 2: could not fetch the video: ConnectionError")
    assert ledger(generation) == [(CHARGE, -96), (REFUND, 96)]


def test_the_poster_is_made_by_its_own_low_priority_job_once_the_video_is_stored(pipeline):
    generation = fetching(pipeline, "[sim:no-callback] a heron over a lake")

    jobs.fetch(str(generation.pk))

    assert row(generation).status == Status.SUCCEEDED and row(generation).video
    assert not row(generation).poster
    assert booked("generations.jobs.make_poster") == [(str(generation.pk),)]
    assert django_rq.get_queue("low").count == 1  # behind every poll and download
    jobs.make_poster(str(generation.pk))
    poster = row(generation).poster
    with default_storage.open(poster.name, "rb") as jpeg:
        assert jpeg.read(3) == b"\xff\xd8\xff"
    jobs.make_poster(str(generation.pk))  # a second run changes nothing
    assert row(generation).poster.name == poster.name


def test_a_poster_cut_for_a_video_deleted_meanwhile_is_not_kept(pipeline, settings):
    needs_row_locks()
    generation = fetching(pipeline, "[sim:no-callback] a heron over a lake")
    jobs.fetch(str(generation.pk))
    stored = row(generation)
    stored.poster.delete(save=False)  # as if cutting it had failed with the download
    Generation.objects.filter(pk=generation.pk).update(poster="")

    held_while(lambda: generation_delete(generation=stored), lambda: jobs.make_poster(str(generation.pk)))

    assert row(generation).deleted_at is not None and not row(generation).poster
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


# --- the sweeper ----------------------------------------------------------------------------------


def test_a_generation_never_submitted_before_its_deadline_is_failed_and_refunded_once(pipeline):
    generation = charged("[sim:no-callback] a heron over a lake")  # its submit job was lost

    with time_machine.travel(row(generation).deadline_at + timedelta(seconds=1)):
        assert jobs.reconcile() == [f"{generation.pk} failed: never submitted before its deadline (refunded)"]
        assert jobs.reconcile() == []

    assert row(generation).status == Status.FAILED and row(generation).failure_class == "create_failed"
    assert ledger(generation) == [(CHARGE, -96), (REFUND, 96)]
    assert balance(generation.user) == 10_000


def test_a_create_still_within_its_grace_period_is_left_alone(pipeline):
    generation = submitting("[sim:no-callback] a heron over a lake")

    with time_machine.travel(timezone.now() + jobs.UNKNOWN_OUTCOME_GRACE - timedelta(seconds=30)):
        assert jobs.reconcile() == []

    assert row(generation).status == Status.SUBMITTING
    assert ledger(generation) == [(CHARGE, -96)]


def test_the_sweeper_never_fails_a_download_whose_heartbeat_came_meanwhile(pipeline):
    needs_row_locks()
    generation = fetching(pipeline, "[sim:no-callback] a heron over a lake")
    swept: list[str] = []

    with time_machine.travel(row(generation).deadline_at + timedelta(minutes=11)):
        held_while(
            lambda: generation_fetch_heartbeat(generation_id=generation.pk),
            lambda: swept.extend(jobs.reconcile()),
        )

    assert swept == []
    assert row(generation).status == Status.FETCHING
    assert ledger(generation) == [(CHARGE, -96)]


def test_the_scheduled_sweeper_resumes_what_was_lost_and_books_its_next_run(pipeline, caplog):
    generation = charged("[sim:no-callback] a heron over a lake")  # its submit job was lost

    with time_machine.travel(timezone.now() + timedelta(minutes=3)):
        with caplog.at_level(logging.INFO, logger="generations.jobs"):
            jobs.sweep()

    assert f"sweeper: {generation.pk} resumed: submit queued again" in caplog.text
    assert booked("generations.jobs.submit") == [(str(generation.pk),)]
    registry = django_rq.get_queue("default").scheduled_job_registry
    assert [j for j in registry.get_job_ids() if j.startswith("sweeper-")] != []
