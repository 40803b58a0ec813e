"""A generation's status only moves along its claims (generations.services): each claim names the
status it moves from, so a job that runs late or twice, or the sweeper, can never revive, re-fetch or
re-refund a generation another path already settled. Each test kills one mutant the rest of the suite
let through (tests/MUTATION.md). The generations are made and moved by the services themselves."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditEntry
from generations import jobs
from generations.models import Generation
from generations.services import (
    generation_claim_fetch,
    generation_claim_submit,
    generation_create,
    generation_fail,
    generation_mark_running,
    generation_start_fetch_attempt,
    generation_succeed,
)
from tests.factories import balance

pytestmark = pytest.mark.django_db

Status = Generation.Status


@pytest.fixture(autouse=True)
def configured(settings) -> None:
    settings.SHORTAPI_KEY = "configured"


def created(user) -> Generation:
    generation, _ = generation_create(
        user=user, prompt="a heron", mode="std", duration=5, aspect_ratio="16:9"
    )
    return generation


def running(user) -> Generation:
    generation = created(user)
    assert generation_claim_submit(generation_id=generation.pk)
    assert generation_mark_running(
        generation_id=generation.pk, job_id=f"job-{generation.pk}", first_poll_in=60
    )
    return generation


def fetching(user) -> Generation:
    generation = running(user)
    assert generation_claim_fetch(
        generation_id=generation.pk, result_url="https://v.example/x.mp4", upstream_status=2
    )
    return generation


def fail(generation: Generation) -> bool:
    return generation_fail(generation_id=generation.pk, error="It broke.", failure_class="upstream_failed")


def refunds(generation: Generation) -> list[int]:
    return list(
        CreditEntry.objects.filter(
            reference=generation.ledger_reference, kind=CreditEntry.Kind.REFUND
        ).values_list("amount_cents", flat=True)
    )


# --- generation_succeed: only from fetching -------------------------------------------------------


def test_a_failed_and_refunded_generation_cannot_be_made_succeeded_by_a_late_download(alice):
    generation = fetching(alice)
    assert fail(generation)  # the sweeper gave up on the download and refunded it...
    # ...and then the slow download finished after all.
    assert (
        generation_succeed(generation_id=generation.pk, video_name="videos/late.mp4", video_bytes=10) is False
    )
    generation.refresh_from_db()
    assert generation.status == Status.FAILED and not generation.video
    assert balance(alice) == 10_000  # refunded, and not charged again
    assert audit_mismatches() == []


def test_a_running_generation_cannot_jump_to_succeeded_without_its_download_claim(alice):
    generation = running(alice)
    assert generation_succeed(generation_id=generation.pk, video_name="videos/x.mp4", video_bytes=10) is False
    assert Generation.objects.get(pk=generation.pk).status == Status.RUNNING


def test_a_download_succeeds_once(alice):
    generation = fetching(alice)
    assert generation_succeed(generation_id=generation.pk, video_name="videos/a.mp4", video_bytes=10)
    assert generation_succeed(generation_id=generation.pk, video_name="videos/b.mp4", video_bytes=20) is False
    generation.refresh_from_db()
    assert generation.status == Status.SUCCEEDED and generation.video.name == "videos/a.mp4"


# --- generation_claim_fetch: only from running ----------------------------------------------------


def test_a_failed_generation_cannot_be_claimed_for_download(alice):
    generation = running(alice)
    assert fail(generation)
    assert (
        generation_claim_fetch(
            generation_id=generation.pk, result_url="https://v.example/x.mp4", upstream_status=2
        )
        is False
    )
    generation.refresh_from_db()
    assert generation.status == Status.FAILED and generation.result_url == ""


def test_a_download_is_claimed_once_however_many_polls_see_the_job_done(alice):
    generation = fetching(alice)
    assert (
        generation_claim_fetch(
            generation_id=generation.pk, result_url="https://v.example/y.mp4", upstream_status=2
        )
        is False
    )
    assert Generation.objects.get(pk=generation.pk).result_url == "https://v.example/x.mp4"


def test_a_queued_generation_cannot_be_claimed_for_download(alice):
    generation = created(alice)
    assert (
        generation_claim_fetch(
            generation_id=generation.pk, result_url="https://v.example/x.mp4", upstream_status=2
        )
        is False
    )
    assert Generation.objects.get(pk=generation.pk).status == Status.QUEUED


# --- the refund's idempotency key: one per generation -----------------------------------------------


def test_a_generation_failed_again_after_its_status_was_reset_by_hand_is_refunded_once(alice):
    generation = running(alice)
    assert fail(generation)
    assert balance(alice) == 10_000
    # An operator "fixes" the row in the database (or an old admin form saves it back) ...
    Generation.objects.filter(pk=generation.pk).update(status=Status.RUNNING)
    # ... and a poll fails it again: the refund's key names the generation, so the ledger pays once.
    assert fail(generation)
    assert balance(alice) == 10_000
    assert refunds(generation) == [generation.cost_cents]


def test_the_refund_is_written_under_the_generations_own_key(alice):
    generation = running(alice)
    assert fail(generation)
    entry = CreditEntry.objects.get(reference=generation.ledger_reference, kind=CreditEntry.Kind.REFUND)
    assert entry.idempotency_key == f"generation:{generation.pk}:refund"


# --- the sweeper and a download that never ends ----------------------------------------------------


def test_the_sweeper_fails_and_refunds_a_stale_download_past_its_deadline(alice):
    generation = fetching(alice)
    generation.refresh_from_db()
    with time_machine.travel(generation.deadline_at + timedelta(minutes=11)):
        assert jobs.reconcile() == [f"{generation.pk} failed: download never finished (refunded)"]
        assert jobs.reconcile() == []  # settled once
    generation.refresh_from_db()
    assert generation.status == Status.FAILED and generation.failure_class == "download_failed"
    assert balance(alice) == 10_000
    assert audit_mismatches() == []


def test_the_sweeper_queues_a_stale_download_again_before_its_deadline(alice, settings):
    settings.GENERATION_DEADLINE_SECONDS = 3600
    generation = fetching(alice)
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        assert jobs.reconcile() == [f"{generation.pk} resumed: fetch queued again"]
    assert Generation.objects.get(pk=generation.pk).status == Status.FETCHING


def test_the_sweeper_leaves_a_live_download_past_its_deadline_alone(alice):
    generation = fetching(alice)
    generation.refresh_from_db()
    # Past the deadline, but its heartbeat is fresh: the download is still coming in.
    with time_machine.travel(generation.deadline_at + timedelta(seconds=5)):
        Generation.objects.filter(pk=generation.pk).update(updated_at=timezone.now())
        assert jobs.reconcile() == []
    assert Generation.objects.get(pk=generation.pk).status == Status.FETCHING


def test_a_submit_claim_returns_the_row_as_the_claim_left_it_and_only_once(alice):
    generation = created(alice)
    claimed = generation_claim_submit(generation_id=generation.pk)
    assert (claimed.pk, claimed.status, claimed.submit_attempts) == (generation.pk, Status.SUBMITTING, 1)
    # Read back through the backend's converters: a datetime, a UUID, a Decimal stay what they are.
    assert claimed.created_at == generation.created_at
    assert claimed.updated_at > generation.updated_at
    assert (claimed.user_id, claimed.prompt) == (alice.pk, "a heron")
    assert claimed.cost_cents == generation.cost_cents
    assert claimed.cents_per_second == generation.cents_per_second
    assert generation_claim_submit(generation_id=generation.pk) is None
    generation.refresh_from_db()
    assert (generation.status, generation.submit_attempts) == (Status.SUBMITTING, 1)


def test_a_fetch_attempt_is_counted_in_the_claim_that_returns_the_row(alice):
    generation = created(alice)
    assert generation_start_fetch_attempt(generation_id=generation.pk) is None  # not fetching
    assert generation_claim_submit(generation_id=generation.pk)
    assert generation_mark_running(generation_id=generation.pk, job_id="job-1", first_poll_in=5)
    assert generation_claim_fetch(
        generation_id=generation.pk, result_url="http://x/v.mp4", upstream_status=2, queue_fetch=False
    )
    first = generation_start_fetch_attempt(generation_id=generation.pk)
    second = generation_start_fetch_attempt(generation_id=generation.pk)
    assert (first.fetch_attempts, second.fetch_attempts) == (1, 2)
    assert second.result_url == "http://x/v.mp4"
