"""generations.services, held to exactly what it writes: every field of each claim, each job it
queues (which, with what arguments, when, in front or behind), each ledger entry, each message a
user or an operator reads. Each test kills mutants `make mutants MODULES=generations.services` let
through (tests/MUTATION.md); the services are called directly, the rows read back."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import django_rq
import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.core import signing
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import AccountSettings, CreditEntry, EmailNotice
from generations.models import Generation, GenerationInput, Upload, WebhookDelivery
from generations.services import (
    GenerationAlreadyStarted,
    GenerationUnfinished,
    IdempotencyKeyOfDeleted,
    InputGone,
    NotShareable,
    SpendLimitReached,
    SubmittingTooFast,
    TooManyActive,
    UpstreamUnconfigured,
    _submit_rate_exceeded,
    callback_token,
    callback_url,
    enqueue,
    enqueue_on_commit,
    generation_cancel,
    generation_claim_fetch,
    generation_claim_submit,
    generation_create,
    generation_delete,
    generation_fail,
    generation_fetch_heartbeat,
    generation_for_key,
    generation_id_from_callback_token,
    generation_id_from_video_token,
    generation_mark_running,
    generation_note_unknown_outcome,
    generation_note_upstream,
    generation_record_poll,
    generation_release_submit,
    generation_restart_polling,
    generation_set_share,
    generation_set_visibility,
    generation_start_fetch_attempt,
    generation_succeed,
    job_timeout,
    poll_interval,
    storable_status,
    video_token,
)
from generations.uploads import Inputs
from tests.factories import generation_row, ledger, make_user

pytestmark = pytest.mark.django_db

Status = Generation.Status
# A moment on a whole number of hours since the epoch: every rate-limit window below starts at it.
ALIGNED = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
HOOK = "https://hooks.example/seedance"


@pytest.fixture(autouse=True)
def configured(settings) -> None:
    settings.SHORTAPI_KEY = "configured"


@pytest.fixture
def frozen():
    with time_machine.travel(ALIGNED + timedelta(seconds=1), tick=False) as traveller:
        yield traveller


def create(user, **extra) -> Generation:
    fields = {"prompt": "a heron", "mode": "std", "duration": 5, "aspect_ratio": "16:9", **extra}
    generation, new = generation_create(user=user, **fields)
    assert new
    return generation


def moved(generation: Generation, status: str, **fields) -> Generation:
    Generation.objects.filter(pk=generation.pk).update(status=status, **fields)
    generation.refresh_from_db()
    return generation


def queued_jobs() -> list[tuple[str, tuple]]:
    """The default queue's waiting jobs, front first, as (function, arguments)."""
    return [(job.func_name, job.args) for job in django_rq.get_queue("default").get_jobs()]


def scheduled_jobs() -> list[tuple[str, tuple, datetime]]:
    """The jobs booked for later, as (function, arguments, when)."""
    queue = django_rq.get_queue("default")
    registry = queue.scheduled_job_registry
    jobs = []
    for job_id in registry.get_job_ids():
        job = queue.fetch_job(job_id)
        jobs.append((job.func_name, job.args, registry.get_scheduled_time(job_id)))
    return jobs


def log_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "generations.services"]


# --- The refusals' messages -------------------------------------------------------------------------


def test_too_many_active_names_its_limit_in_its_message():
    refusal = TooManyActive(3)
    assert refusal.limit == 3
    assert str(refusal) == "You already have 3 videos in progress, the most at once. Wait for one to finish."


def test_submitting_too_fast_is_a_too_many_active_with_its_own_message():
    refusal = SubmittingTooFast()
    assert isinstance(refusal, TooManyActive)
    assert refusal.limit == 0
    assert str(refusal) == "You are starting videos too fast. Wait a minute, then try again."


def test_input_gone_names_the_field_and_says_what_to_do():
    refusal = InputGone("image_ids")
    assert refusal.field == "image_ids"
    message = "One of the chosen uploads was deleted meanwhile: choose it again or another one."
    assert refusal.message == message
    assert str(refusal) == message


def test_already_started_says_whether_it_finished_or_is_with_the_video_service(alice):
    running = generation_row(alice, status=Status.RUNNING)
    refusal = GenerationAlreadyStarted(running)
    assert refusal.message == (
        "This video has already started (the video service has it), so it can no longer be "
        "cancelled. If it fails, its credits come back."
    )
    assert str(refusal) == refusal.message
    finished = GenerationAlreadyStarted(generation_row(alice, status=Status.SUCCEEDED))
    assert finished.message == "This video has already finished, so there is nothing to cancel."
    assert str(finished) == finished.message


# --- generation_for_key ------------------------------------------------------------------------------


def test_an_idempotency_key_finds_its_owners_generation_only(alice, bob):
    alices = create(alice, idempotency_key="k-1")
    bobs = create(bob, idempotency_key="k-1")
    create(alice)  # newer, keyless
    create(alice, idempotency_key="k-2")  # newer, another key
    assert generation_for_key(user=alice, idempotency_key="k-1") == alices
    assert generation_for_key(user=bob, idempotency_key="k-1") == bobs
    assert generation_for_key(user=alice, idempotency_key="k-3") is None


def test_a_key_whose_generation_was_deleted_is_refused_not_reused(alice):
    generation = create(alice, idempotency_key="k-1")
    Generation.objects.filter(pk=generation.pk).update(deleted_at=timezone.now())
    with pytest.raises(IdempotencyKeyOfDeleted):
        generation_for_key(user=alice, idempotency_key="k-1")
    with pytest.raises(IdempotencyKeyOfDeleted):
        generation_create(
            user=alice, prompt="a heron", mode="std", duration=5, aspect_ratio="16:9", idempotency_key="k-1"
        )


# --- The submit rate limit ---------------------------------------------------------------------------


def test_the_submit_rate_counts_per_user_in_windows_of_the_configured_length(alice, bob, settings, frozen):
    settings.SUBMIT_RATE_LIMIT = "2/10m"
    assert [_submit_rate_exceeded(alice.pk) for _ in range(3)] == [False, False, True]
    assert _submit_rate_exceeded(bob.pk) is False
    frozen.shift(timedelta(minutes=9))
    assert _submit_rate_exceeded(alice.pk) is True  # the same ten minutes
    frozen.shift(timedelta(minutes=1))
    assert _submit_rate_exceeded(alice.pk) is False  # the next ten


def test_the_submit_rate_window_of_a_bare_unit_is_one_of_it(alice, settings, frozen):
    settings.SUBMIT_RATE_LIMIT = "1/m"
    assert [_submit_rate_exceeded(alice.pk) for _ in range(2)] == [False, True]
    frozen.shift(timedelta(seconds=61))
    assert _submit_rate_exceeded(alice.pk) is False


def test_the_submit_rate_counter_outlives_its_window_by_five_seconds_only(alice, settings, frozen):
    settings.SUBMIT_RATE_LIMIT = "2/10m"
    _submit_rate_exceeded(alice.pk)
    key = cache.make_key(f"submit-rate:{alice.pk}:{int(ALIGNED.timestamp()) // 600}")
    ttl = redis.Redis.from_url(django_settings.CACHES["default"]["LOCATION"]).ttl(key)
    assert 600 < ttl <= 605


def test_a_user_over_the_submit_rate_is_refused_and_another_is_not(alice, bob, settings, frozen):
    settings.SUBMIT_RATE_LIMIT = "1/m"
    create(alice)
    with pytest.raises(SubmittingTooFast):
        create(alice)
    create(bob)


# --- Queueing -------------------------------------------------------------------------------------


def test_a_download_job_may_run_two_minutes_longer_than_the_download_itself(settings):
    settings.VIDEO_DOWNLOAD_MAX_SECONDS = 600
    assert job_timeout("generations.jobs.fetch") == 720
    assert job_timeout("generations.jobs.poll") == 720
    assert job_timeout("generations.jobs.submit") is None


def test_poll_and_fetch_jump_the_queue_with_their_own_time_limit(
    settings, django_capture_on_commit_callbacks
):
    settings.VIDEO_DOWNLOAD_MAX_SECONDS = 600
    with django_capture_on_commit_callbacks(execute=True):  # django-rq enqueues on commit
        enqueue("generations.jobs.submit", "g-1")
        enqueue("generations.jobs.poll", "g-2", 3)
        enqueue("generations.jobs.fetch", "g-3", job_id="fetch-g-3")
    assert queued_jobs() == [
        ("generations.jobs.fetch", ("g-3",)),
        ("generations.jobs.poll", ("g-2", 3)),
        ("generations.jobs.submit", ("g-1",)),
    ]
    queue = django_rq.get_queue("default")
    assert queue.fetch_job("fetch-g-3").timeout == 720
    timeouts = {job.func_name: job.timeout for job in queue.get_jobs()}
    assert timeouts["generations.jobs.poll"] == 720
    assert timeouts["generations.jobs.submit"] != 720


def test_a_delay_books_the_job_for_later_and_none_or_zero_queues_it_now(
    frozen, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        enqueue("generations.jobs.poll", "g-1", 2, delay=0.5)
        enqueue("generations.jobs.submit", "g-2", delay=30)
        enqueue("generations.jobs.submit", "g-3", delay=0)
        enqueue("generations.jobs.submit", "g-4", delay=None)
    assert queued_jobs() == [("generations.jobs.submit", ("g-3",)), ("generations.jobs.submit", ("g-4",))]
    booked = sorted(scheduled_jobs(), key=lambda job: job[2])
    assert [(name, args) for name, args, _ in booked] == [
        ("generations.jobs.poll", ("g-1", 2)),
        ("generations.jobs.submit", ("g-2",)),
    ]
    assert booked[1][2] == ALIGNED + timedelta(seconds=31)
    queue = django_rq.get_queue("default")
    [poll] = [
        queue.fetch_job(i)
        for i in queue.scheduled_job_registry.get_job_ids()
        if queue.fetch_job(i).func_name == "generations.jobs.poll"
    ]
    assert poll.timeout == job_timeout("generations.jobs.poll")  # a booked job keeps its time limit


def test_a_poster_waits_on_the_low_queue(django_capture_on_commit_callbacks):
    # A worker takes "low" only when "default" is empty: posters never delay a paid video's work.
    with django_capture_on_commit_callbacks(execute=True):
        enqueue("generations.jobs.make_poster", "g-1")
        enqueue("generations.jobs.submit", "g-2")
    low = [(job.func_name, job.args) for job in django_rq.get_queue("low").get_jobs()]
    assert low == [("generations.jobs.make_poster", ("g-1",))]
    assert queued_jobs() == [("generations.jobs.submit", ("g-2",))]


def test_a_job_queued_on_commit_waits_for_the_commit(django_capture_on_commit_callbacks, frozen):
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_on_commit("generations.jobs.poll", "g-1", 4, delay=45)
        enqueue_on_commit("generations.jobs.submit", "g-2")
        assert queued_jobs() == [] and scheduled_jobs() == []
    assert queued_jobs() == [("generations.jobs.submit", ("g-2",))]
    assert scheduled_jobs() == [("generations.jobs.poll", ("g-1", 4), ALIGNED + timedelta(seconds=46))]


# --- generation_create -----------------------------------------------------------------------------


def test_a_new_generation_holds_its_price_and_queues_its_submit(
    alice, settings, frozen, caplog, django_capture_on_commit_callbacks
):
    settings.GENERATION_DEADLINE_SECONDS = 900
    caplog.set_level(logging.INFO, logger="generations.services")
    with django_capture_on_commit_callbacks(execute=True):
        generation, new = generation_create(
            user=alice,
            prompt="a heron",
            mode="fast",
            duration=7,
            aspect_ratio="9:16",
            idempotency_key="k-1",
            webhook_url=HOOK,
        )
    assert new is True
    row = Generation.objects.get(pk=generation.pk)
    assert (row.user, row.prompt, row.mode, row.duration, row.aspect_ratio) == (
        alice,
        "a heron",
        "fast",
        7,
        "9:16",
    )
    assert (row.model, row.first_last_frame, row.input_seconds) == ("text-to-video", False, 0)
    assert (row.cost_cents, row.cents_per_second) == (140, 20)
    assert (row.idempotency_key, row.webhook_url, row.status) == ("k-1", HOOK, Status.QUEUED)
    assert row.deadline_at == timezone.now() + timedelta(seconds=900)
    charge = CreditEntry.objects.get(reference=f"generation:{row.pk}")
    assert (charge.user_id, charge.kind, charge.amount_cents) == (alice.pk, CreditEntry.Kind.CHARGE, -140)
    assert charge.description == "7 s fast video"
    assert charge.idempotency_key == f"generation:{row.pk}:charge"
    assert queued_jobs() == [("generations.jobs.submit", (str(row.pk),))]
    assert log_lines(caplog) == [f"generation {row.pk} created for alice: 140 cents"]


def test_a_new_generations_charge_skips_the_look_ups_for_a_repeat(alice, django_assert_num_queries):
    # Its ledger key names the row just inserted, so no entry can carry it yet: the settings; the
    # savepoint; the user's lock; the active count; the generation; the account's lock, its guarded
    # update and the entry; the release. Not: the key looked up twice, nor a savepoint around the charge.
    with django_assert_num_queries(9):
        generation = create(alice)
    assert ledger(generation) == [(CreditEntry.Kind.CHARGE, -120)]


def test_a_generation_without_a_key_or_webhook_stores_none_and_nothing(alice):
    row = create(alice, idempotency_key="")
    row.refresh_from_db()
    assert (row.idempotency_key, row.webhook_url) == (None, "")


def test_the_same_key_returns_the_first_generation_and_charges_once(alice):
    first = create(alice, idempotency_key="k-1")
    again, new = generation_create(
        user=alice, prompt="another", mode="fast", duration=9, aspect_ratio="1:1", idempotency_key="k-1"
    )
    assert (again, new) == (first, False)
    assert ledger(first) == [(CreditEntry.Kind.CHARGE, -120)]
    assert Generation.objects.filter(user=alice).count() == 1


def test_without_a_shortapi_key_nothing_is_created(alice, settings):
    settings.SHORTAPI_KEY = ""
    with pytest.raises(UpstreamUnconfigured):
        create(alice)
    assert not Generation.objects.exists()


def test_one_more_than_the_active_limit_is_refused(alice, bob, settings):
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 2
    create(bob)
    create(bob)  # bob's count, not alice's
    generation_row(alice, status=Status.SUCCEEDED)
    generation_row(alice, status=Status.FAILED)  # finished ones are not active
    create(alice)
    create(alice)
    with pytest.raises(TooManyActive) as refused:
        create(alice)
    assert refused.value.limit == 2
    assert Generation.objects.filter(user=alice, status=Status.QUEUED).count() == 2


def test_a_repeated_key_returns_its_generation_before_any_other_check(alice, settings):
    first = create(alice, idempotency_key="k-1")
    settings.SHORTAPI_KEY = ""  # unconfigured since
    settings.SUBMIT_RATE_LIMIT = "1/m"  # and over the rate
    assert generation_create(
        user=alice, prompt="a heron", mode="std", duration=5, aspect_ratio="16:9", idempotency_key="k-1"
    ) == (first, False)


def test_a_submission_past_the_monthly_spend_limit_is_refused(alice):
    AccountSettings.objects.update_or_create(user=alice, defaults={"monthly_spend_limit_cents": 200})
    create(alice)  # 120 of 200
    with pytest.raises(SpendLimitReached):
        create(alice)  # 240 would pass it
    assert Generation.objects.filter(user=alice).count() == 1


def test_a_first_and_last_frame_generation_says_so(alice):
    images = (upload(alice, "image"), upload(alice, "image"))
    row = create(alice, inputs=Inputs(images=images, first_last_frame=True))
    row.refresh_from_db()
    assert (row.model, row.first_last_frame) == ("image-to-video", True)


def test_crossing_the_low_balance_mark_queues_its_email(db):
    dora = make_user("dora", 200)
    AccountSettings.objects.update_or_create(user=dora, defaults={"low_balance_email_cents": 100})
    create(dora)
    notice = EmailNotice.objects.get(user=dora)
    assert notice.kind == EmailNotice.Kind.BALANCE_LOW


def upload(user, kind: str, seconds: Decimal | None = None) -> Upload:
    return Upload.objects.create(
        user=user,
        kind=kind,
        content_type={"image": "image/jpeg", "video": "video/mp4", "audio": "audio/mpeg"}[kind],
        size_bytes=1000,
        width=320 if kind != "audio" else None,
        height=240 if kind != "audio" else None,
        duration_seconds=seconds,
        file=f"uploads/test/{kind}-{Upload.objects.count()}.bin",
        created_at=timezone.now(),
    )


def test_an_image_to_video_charge_says_which_model(alice):
    image = upload(alice, "image")
    row = create(alice, inputs=Inputs(images=(image,), first_last_frame=False))
    assert row.model == "image-to-video"
    charge = CreditEntry.objects.get(reference=row.ledger_reference)
    assert charge.description == "5 s std video (image to video)"
    assert list(GenerationInput.objects.filter(generation=row).values_list("upload_id", "role")) == [
        (image.pk, "image")
    ]


def test_a_reference_video_is_billed_on_its_input_seconds_and_records_every_input(alice):
    image, video, audio = (
        upload(alice, "image"),
        upload(alice, "video", Decimal(3)),
        upload(alice, "audio", Decimal(2)),
    )
    row = create(alice, inputs=Inputs(images=(image,), video=video, audios=(audio,)))
    row.refresh_from_db()
    assert (row.model, row.input_seconds) == ("omni-reference", 3)
    charge = CreditEntry.objects.get(reference=row.ledger_reference)
    assert charge.description == "5 s std video (reference video)"
    assert charge.amount_cents == -row.cost_cents
    roles = set(GenerationInput.objects.filter(generation=row).values_list("upload_id", "role"))
    assert roles == {(image.pk, "image"), (video.pk, "video"), (audio.pk, "audio")}


@pytest.mark.parametrize("role", ["image", "video", "audio"])
def test_an_input_deleted_before_the_submit_is_refused_naming_its_field(alice, role):
    image, video, audio = (
        upload(alice, "image"),
        upload(alice, "video", Decimal(3)),
        upload(alice, "audio", Decimal(2)),
    )
    gone = {"image": image, "video": video, "audio": audio}[role]
    Upload.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    with pytest.raises(InputGone) as refused:
        create(alice, inputs=Inputs(images=(image,), video=video, audios=(audio,)))
    assert refused.value.field == {"image": "image_ids", "video": "video_id", "audio": "audio_ids"}[role]
    assert not Generation.objects.exists()


# --- generation_fail -----------------------------------------------------------------------------------


def test_a_fail_writes_every_field_refunds_once_and_tells_the_webhook(alice, frozen, caplog):
    caplog.set_level(logging.WARNING, logger="generations.services")
    generation = moved(create(alice, webhook_url=HOOK), Status.RUNNING, next_poll_at=timezone.now())
    frozen.shift(timedelta(seconds=5))
    long_error = "E" * 600
    assert generation_fail(
        generation_id=generation.pk, error=long_error, detail="d-1", failure_class="deadline"
    )
    row = Generation.objects.get(pk=generation.pk)
    assert (row.status, row.error, row.error_detail, row.failure_class) == (
        Status.FAILED,
        "E" * 500,
        "d-1",
        "deadline",
    )
    assert (row.finished_at, row.next_poll_at, row.updated_at) == (timezone.now(), None, timezone.now())
    refund = CreditEntry.objects.get(reference=row.ledger_reference, kind=CreditEntry.Kind.REFUND)
    assert (refund.user_id, refund.amount_cents) == (alice.pk, 120)
    assert refund.description == "Refund: the video could not be made"
    assert refund.idempotency_key == f"generation:{row.pk}:refund"
    assert WebhookDelivery.objects.filter(generation=row, event="generation.failed").count() == 1
    assert log_lines(caplog) == [f"generation {row.pk} failed (deadline): {long_error} d-1"]
    assert generation_fail(generation_id=generation.pk, error="again", failure_class="deadline") is False
    assert len(ledger(row)) == 2


def test_a_fail_reads_its_generation_once_and_refunds_in_one_locked_pass(alice, django_assert_num_queries):
    generation = moved(create(alice), Status.RUNNING)
    # The savepoint; the claim; the owner and price (one read, nothing deferred); the refund: its
    # key looked up, its savepoint, the account's lock, the key again under it, the guarded update,
    # the entry, the release; the webhook check (the row, the owner's email choice); the release.
    with django_assert_num_queries(13):
        assert generation_fail(generation_id=generation.pk, error="x", failure_class="deadline")
    assert ledger(generation) == [(CreditEntry.Kind.CHARGE, -120), (CreditEntry.Kind.REFUND, 120)]


def test_a_fail_without_detail_stores_none(alice):
    generation = create(alice)
    assert generation_fail(generation_id=generation.pk, error="It broke.", failure_class="create_failed")
    generation.refresh_from_db()
    assert generation.error_detail == ""


def test_a_fail_only_from_the_named_statuses_and_the_seen_moment(alice):
    generation = moved(create(alice), Status.RUNNING)
    assert not generation_fail(
        generation_id=generation.pk, error="x", failure_class="deadline", from_statuses=(Status.QUEUED,)
    )
    stale = generation.updated_at - timedelta(seconds=1)
    assert not generation_fail(
        generation_id=generation.pk, error="x", failure_class="deadline", seen_updated_at=stale
    )
    other = moved(create(alice), Status.RUNNING)
    assert generation_fail(
        generation_id=other.pk,
        error="x",
        failure_class="deadline",
        from_statuses=(Status.RUNNING,),
        seen_updated_at=other.updated_at,
    )
    generation.refresh_from_db()
    assert generation.status == Status.RUNNING
    assert ledger(generation) == [(CreditEntry.Kind.CHARGE, -120)]


# --- The submit claims ---------------------------------------------------------------------------


def test_the_submit_claim_counts_attempts_and_release_gives_it_back(alice, frozen):
    generation = create(alice)
    other = create(alice)
    submitting = create(alice)
    assert generation_claim_submit(generation_id=submitting.pk)
    frozen.shift(timedelta(seconds=10))
    claimed = generation_claim_submit(generation_id=generation.pk)
    assert (claimed.pk, claimed.status, claimed.submit_attempts) == (generation.pk, Status.SUBMITTING, 1)
    assert generation_claim_submit(generation_id=generation.pk) is None
    row = Generation.objects.get(pk=generation.pk)
    assert (row.status, row.submit_attempts, row.updated_at) == (Status.SUBMITTING, 1, timezone.now())
    frozen.shift(timedelta(seconds=10))
    assert generation_release_submit(generation_id=generation.pk, detail="create attempt failed: 503") is True
    assert generation_release_submit(generation_id=generation.pk, detail="again") is False
    row.refresh_from_db()
    assert (row.status, row.error_detail, row.updated_at) == (
        Status.QUEUED,
        "create attempt failed: 503",
        timezone.now(),
    )
    assert generation_claim_submit(generation_id=generation.pk).submit_attempts == 2
    row.refresh_from_db()
    assert row.submit_attempts == 2
    other.refresh_from_db()
    assert (other.status, other.submit_attempts) == (Status.QUEUED, 0)
    submitting.refresh_from_db()
    assert (submitting.status, submitting.error_detail) == (Status.SUBMITTING, "")


def test_a_submit_with_an_upstream_job_is_not_released(alice):
    generation = create(alice)
    assert generation_claim_submit(generation_id=generation.pk)
    Generation.objects.filter(pk=generation.pk).update(upstream_job_id="job-1")
    assert generation_release_submit(generation_id=generation.pk, detail="x") is False
    generation.refresh_from_db()
    assert generation.status == Status.SUBMITTING


def test_an_unknown_outcome_is_noted_on_a_submitting_generation_only(alice, frozen):
    submitting, queued, twin = create(alice), create(alice), create(alice)
    assert generation_claim_submit(generation_id=submitting.pk)
    assert generation_claim_submit(generation_id=twin.pk)
    frozen.shift(timedelta(seconds=5))
    generation_note_unknown_outcome(generation_id=submitting.pk, detail="unknown outcome: timeout")
    generation_note_unknown_outcome(generation_id=queued.pk, detail="unknown outcome: timeout")
    submitting.refresh_from_db()
    queued.refresh_from_db()
    twin.refresh_from_db()
    assert (submitting.error_detail, submitting.updated_at) == ("unknown outcome: timeout", timezone.now())
    assert (queued.error_detail, twin.error_detail) == ("", "")


def test_mark_running_starts_the_one_poll_chain(alice, frozen, django_capture_on_commit_callbacks):
    generation = create(alice)
    other = create(alice)
    assert generation_claim_submit(generation_id=generation.pk)
    with django_capture_on_commit_callbacks(execute=True):
        assert generation_mark_running(
            generation_id=generation.pk, job_id="job-1", amount=Decimal("0.40"), first_poll_in=20
        )
    row = Generation.objects.get(pk=generation.pk)
    now = timezone.now()
    assert (row.status, row.upstream_job_id, row.upstream_amount) == (
        Status.RUNNING,
        "job-1",
        Decimal("0.40"),
    )
    assert (row.submitted_at, row.poll_count, row.next_poll_at, row.updated_at) == (
        now,
        0,
        now + timedelta(seconds=20),
        now,
    )
    assert scheduled_jobs() == [("generations.jobs.poll", (str(row.pk), 0), ALIGNED + timedelta(seconds=21))]
    assert not generation_mark_running(generation_id=generation.pk, job_id="job-2", first_poll_in=20)
    other.refresh_from_db()
    assert (other.status, other.upstream_job_id) == (Status.QUEUED, "")


def test_a_generation_that_has_ended_cannot_be_marked_running(alice):
    cancelled = create(alice)
    Generation.objects.filter(pk=cancelled.pk).update(status=Status.FAILED)
    assert not generation_mark_running(generation_id=cancelled.pk, job_id="job-1", first_poll_in=20)
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.upstream_job_id) == (Status.FAILED, "")


def test_mark_running_without_an_amount_leaves_it_unknown(alice):
    generation = create(alice)
    assert generation_mark_running(generation_id=generation.pk, job_id="job-1", first_poll_in=20)
    generation.refresh_from_db()
    assert generation.upstream_amount is None


def test_a_generation_that_has_a_job_cannot_take_another(alice):
    generation = moved(create(alice), Status.SUBMITTING, upstream_job_id="job-1")
    assert not generation_mark_running(generation_id=generation.pk, job_id="job-2", first_poll_in=20)
    generation.refresh_from_db()
    assert (generation.status, generation.upstream_job_id) == (Status.SUBMITTING, "job-1")


# --- Polling ----------------------------------------------------------------------------------------


def test_the_poll_interval_doubles_up_to_its_cap(settings):
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    settings.GENERATION_POLL_MAX_SECONDS = 30
    assert [poll_interval(n) for n in range(5)] == [5, 10, 20, 30, 30]
    settings.GENERATION_POLL_MAX_SECONDS = 10**9
    assert poll_interval(25) == 5 * 2**20


def test_an_upstream_status_outside_a_smallint_is_stored_as_unknown():
    assert [storable_status(s) for s in (2, -32768, 32767, 32768, None)] == [2, -32768, 32767, None, None]


def test_a_poll_claims_the_next_link_and_books_it(alice, settings, frozen):
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    settings.GENERATION_POLL_MAX_SECONDS = 30
    generation = moved(create(alice), Status.RUNNING, poll_count=2)
    other = moved(create(alice), Status.RUNNING, poll_count=2)
    frozen.shift(timedelta(seconds=5))
    assert generation_record_poll(generation_id=generation.pk, seen_poll_count=2, upstream_status=1) == 20
    row = Generation.objects.get(pk=generation.pk)
    assert (row.poll_count, row.upstream_status) == (3, 1)
    assert (row.next_poll_at, row.updated_at) == (timezone.now() + timedelta(seconds=20), timezone.now())
    assert generation_record_poll(generation_id=generation.pk, seen_poll_count=2, upstream_status=1) is None
    assert generation_record_poll(generation_id=generation.pk, seen_poll_count=3, upstream_status=70000) == 30
    row.refresh_from_db()
    assert (row.poll_count, row.upstream_status) == (4, None)
    other.refresh_from_db()
    assert other.poll_count == 2


def test_a_poll_of_a_generation_no_longer_running_claims_nothing(alice):
    generation = moved(create(alice), Status.FETCHING, poll_count=2)
    assert generation_record_poll(generation_id=generation.pk, seen_poll_count=2, upstream_status=1) is None
    generation.refresh_from_db()
    assert generation.poll_count == 2


def test_an_ad_hoc_poll_notes_the_status_and_a_refund(alice):
    generation = moved(create(alice), Status.RUNNING, upstream_status=0)
    other = moved(create(alice), Status.RUNNING, upstream_status=0)
    generation_note_upstream(generation_id=generation.pk, upstream_status=70000, upstream_refunded=False)
    generation.refresh_from_db()
    assert (generation.upstream_status, generation.upstream_refunded) == (0, False)
    generation_note_upstream(generation_id=generation.pk, upstream_status=1, upstream_refunded=False)
    generation.refresh_from_db()
    assert (generation.upstream_status, generation.upstream_refunded) == (1, False)
    generation_note_upstream(generation_id=generation.pk, upstream_status=None, upstream_refunded=True)
    generation.refresh_from_db()
    assert (generation.upstream_status, generation.upstream_refunded) == (1, True)
    other.refresh_from_db()
    assert (other.upstream_status, other.upstream_refunded) == (0, False)


def test_a_lost_poll_chain_is_replaced_by_the_next_number(alice, frozen, django_capture_on_commit_callbacks):
    generation = moved(create(alice), Status.RUNNING, poll_count=3, next_poll_at=None)
    other = moved(create(alice), Status.RUNNING, poll_count=3)
    frozen.shift(timedelta(seconds=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert generation_restart_polling(generation_id=generation.pk, seen_poll_count=3) == 4
        assert generation_restart_polling(generation_id=generation.pk, seen_poll_count=3) is None
    row = Generation.objects.get(pk=generation.pk)
    assert (row.poll_count, row.next_poll_at, row.updated_at) == (4, timezone.now(), timezone.now())
    assert queued_jobs() == [("generations.jobs.poll", (str(row.pk), 4))]
    other.refresh_from_db()
    assert other.poll_count == 3
    fetching = moved(create(alice), Status.FETCHING, poll_count=3)
    assert generation_restart_polling(generation_id=fetching.pk, seen_poll_count=3) is None


# --- Fetching and succeeding -------------------------------------------------------------------------


def test_the_fetch_claim_records_the_result_and_queues_the_download(
    alice, frozen, django_capture_on_commit_callbacks
):
    generation = moved(create(alice), Status.RUNNING, poll_count=2, next_poll_at=timezone.now())
    other = moved(create(alice), Status.RUNNING, poll_count=2)
    frozen.shift(timedelta(seconds=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert generation_claim_fetch(
            generation_id=generation.pk, result_url="https://v.example/1.mp4", upstream_status=2
        )
        assert not generation_claim_fetch(
            generation_id=generation.pk, result_url="https://v.example/2.mp4", upstream_status=2
        )
    row = Generation.objects.get(pk=generation.pk)
    assert (row.status, row.result_url, row.upstream_status) == (
        Status.FETCHING,
        "https://v.example/1.mp4",
        2,
    )
    assert (row.poll_count, row.next_poll_at, row.updated_at) == (3, None, timezone.now())
    assert queued_jobs() == [("generations.jobs.fetch", (str(row.pk),))]
    other.refresh_from_db()
    assert other.status == Status.RUNNING


def test_a_fetch_claim_that_runs_the_download_itself_queues_nothing(
    alice, django_capture_on_commit_callbacks
):
    generation = moved(create(alice), Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        assert generation_claim_fetch(
            generation_id=generation.pk,
            result_url="https://v.example/1.mp4",
            upstream_status=2,
            queue_fetch=False,
        )
    assert queued_jobs() == []


def test_a_live_download_keeps_its_own_row_fresh_only(alice, frozen):
    fetching = moved(create(alice), Status.FETCHING)
    running = moved(create(alice), Status.RUNNING)
    frozen.shift(timedelta(minutes=5))
    assert generation_fetch_heartbeat(generation_id=fetching.pk) is True
    assert generation_fetch_heartbeat(generation_id=running.pk) is False
    fetching.refresh_from_db()
    running.refresh_from_db()
    assert fetching.updated_at == timezone.now()
    assert running.updated_at == timezone.now() - timedelta(minutes=5)


def test_a_download_attempt_is_counted_on_its_own_generation_only(alice):
    first = moved(create(alice), Status.FETCHING)
    second = moved(create(alice), Status.FETCHING)
    running = moved(create(alice), Status.RUNNING)
    attempt = generation_start_fetch_attempt(generation_id=second.pk)
    assert (attempt.pk, attempt.fetch_attempts) == (second.pk, 1)
    assert generation_start_fetch_attempt(generation_id=running.pk) is None
    counts = dict(Generation.objects.values_list("pk", "fetch_attempts"))
    assert (counts[first.pk], counts[second.pk], counts[running.pk]) == (0, 1, 0)


def test_a_success_writes_every_field_and_tells_the_webhook(alice, frozen):
    generation = moved(create(alice, webhook_url=HOOK), Status.FETCHING, error="old")
    other = moved(create(alice), Status.FETCHING)
    frozen.shift(timedelta(seconds=5))
    assert (
        generation_succeed(generation_id=generation.pk, video_name="videos/v.mp4", video_bytes=1234) is True
    )
    assert generation_succeed(generation_id=generation.pk, video_name="videos/w.mp4", video_bytes=1) is False
    row = Generation.objects.get(pk=generation.pk)
    assert (row.status, row.video.name, row.video_bytes, row.error) == (
        Status.SUCCEEDED,
        "videos/v.mp4",
        1234,
        "",
    )
    assert (row.finished_at, row.updated_at) == (timezone.now(), timezone.now())
    assert WebhookDelivery.objects.filter(generation=row, event="generation.succeeded").count() == 1
    other.refresh_from_db()
    assert other.status == Status.FETCHING


# --- Cancel -----------------------------------------------------------------------------------------


def test_a_cancel_fails_a_queued_generation_as_its_owners_doing(alice, caplog):
    caplog.set_level(logging.INFO, logger="generations.services")
    generation = create(alice)
    cancelled = generation_cancel(generation=generation)
    assert cancelled.status == Status.FAILED  # refreshed
    row = Generation.objects.get(pk=generation.pk)
    assert (row.error, row.failure_class) == ("Cancelled by you", "cancelled")
    assert row.error_detail == "cancelled by its owner before it was submitted"
    assert ledger(row) == [(CreditEntry.Kind.CHARGE, -120), (CreditEntry.Kind.REFUND, 120)]
    assert f"generation {row.pk} cancelled by its owner" in log_lines(caplog)


def test_a_cancel_after_the_submit_claim_is_refused_with_the_row_as_it_is(alice):
    generation = create(alice)
    assert generation_claim_submit(generation_id=generation.pk)
    with pytest.raises(GenerationAlreadyStarted) as refused:
        generation_cancel(generation=generation)
    assert generation.status == Status.SUBMITTING  # refreshed before the message was chosen
    assert "already started" in refused.value.message
    assert ledger(generation) == [(CreditEntry.Kind.CHARGE, -120)]


# --- Sharing ----------------------------------------------------------------------------------------


def saved(generation: Generation) -> tuple[bool, bool, str | None]:
    row = Generation.objects.get(pk=generation.pk)
    return row.shared, row.listed, row.share_slug


def test_sharing_makes_one_link_that_survives_listing_and_private_drops_it(alice):
    generation = generation_row(alice, status=Status.SUCCEEDED)
    generation_set_visibility(generation=generation, visibility="unlisted")
    shared, listed, slug = saved(generation)
    assert (shared, listed, len(slug)) == (True, False, 11)
    generation_set_visibility(generation=generation, visibility="listed")
    assert saved(generation) == (True, True, slug)
    generation_set_visibility(generation=generation, visibility="unlisted")
    assert saved(generation) == (True, False, slug)
    generation_set_visibility(generation=generation, visibility="private")
    assert saved(generation) == (False, False, None)
    generation_set_visibility(generation=generation, visibility="listed")
    assert saved(generation)[2] not in (None, slug)


def test_sharing_saves_only_the_sharing_fields_of_a_row_read_earlier(alice):
    generation = generation_row(alice, status=Status.SUCCEEDED)
    Generation.objects.filter(pk=generation.pk).update(video_bytes=999, prompt="changed meanwhile")
    generation_set_visibility(generation=generation, visibility="listed")
    row = Generation.objects.get(pk=generation.pk)
    assert (row.video_bytes, row.prompt, row.listed) == (999, "changed meanwhile", True)


def test_only_a_finished_video_is_shared_and_an_unknown_visibility_is_an_error(alice):
    running = generation_row(alice, status=Status.RUNNING)
    with pytest.raises(NotShareable):
        generation_set_visibility(generation=running, visibility="unlisted")
    assert saved(running) == (False, False, None)
    with pytest.raises(ValueError, match=r"^Unknown visibility 'public'\.$"):
        generation_set_visibility(generation=running, visibility="public")
    generation_set_visibility(generation=running, visibility="unlisted", require_finished=False)
    assert saved(running)[:2] == (True, False)


def test_the_admins_share_box_lists_whatever_the_status_and_clearing_it_makes_private(alice):
    running = generation_row(alice, status=Status.RUNNING)
    assert generation_set_share(generation=running, shared=True) is running
    assert saved(running)[:2] == (True, True)
    generation_set_share(generation=running, shared=False)
    assert saved(running) == (False, False, None)


# --- Signed tokens ----------------------------------------------------------------------------------


def test_a_callback_url_carries_a_token_for_its_generation_until_six_hours_past_the_deadline(
    alice, settings, frozen
):
    settings.SITE_URL = "https://studio.example"
    settings.GENERATION_DEADLINE_SECONDS = 1800
    generation = create(alice)
    url = callback_url(generation.pk)
    token = callback_token(generation.pk)
    assert url == f"https://studio.example/webhooks/shortapi/{token}/"
    assert generation_id_from_callback_token(token) == str(generation.pk)
    assert signing.loads(token, salt="generations.shortapi-callback") == str(generation.pk)
    assert generation_id_from_callback_token(signing.dumps(str(generation.pk))) is None
    frozen.shift(timedelta(seconds=1800) + timedelta(hours=6) - timedelta(seconds=5))
    assert generation_id_from_callback_token(token) == str(generation.pk)
    frozen.shift(timedelta(seconds=10))
    assert generation_id_from_callback_token(token) is None


def test_a_video_token_names_its_generation_and_its_share_slug(alice):
    generation = generation_row(alice)
    assert generation_id_from_video_token(video_token(generation.pk)) == (str(generation.pk), None)
    token = video_token(generation.pk, share_slug="abc_DEF-123")
    assert generation_id_from_video_token(token) == (str(generation.pk), "abc_DEF-123")
    assert (
        signing.TimestampSigner(salt="generations.video-url").unsign(token) == f"{generation.pk}~abc_DEF-123"
    )


# --- Delete -----------------------------------------------------------------------------------------


def test_a_delete_hides_the_row_and_removes_its_files_after_commit(
    alice, media, frozen, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.INFO, logger="generations.services")
    generation = generation_row(alice, status=Status.SUCCEEDED, shared=True)
    video = default_storage.save(f"videos/t/{generation.pk}.mp4", ContentFile(b"video"))
    poster = default_storage.save(f"posters/t/{generation.pk}.jpg", ContentFile(b"poster"))
    Generation.objects.filter(pk=generation.pk).update(video=video, poster=poster)
    other = generation_row(alice, status=Status.SUCCEEDED, shared=True)
    frozen.shift(timedelta(seconds=5))
    with django_capture_on_commit_callbacks(execute=True):
        generation_delete(generation=generation)
        assert default_storage.exists(video) and default_storage.exists(poster)
    row = Generation.objects.get(pk=generation.pk)
    assert (row.deleted_at, row.updated_at) == (timezone.now(), timezone.now())
    assert (row.video.name, row.poster.name, row.shared, row.listed, row.share_slug) == (
        "",
        "",
        False,
        False,
        None,
    )
    assert not default_storage.exists(video) and not default_storage.exists(poster)
    assert f"generation {row.pk} deleted by its owner" in log_lines(caplog)
    other.refresh_from_db()
    assert (other.deleted_at, other.shared) == (None, True)
    with pytest.raises(GenerationUnfinished):
        generation_delete(generation=generation)  # deleted already


def test_a_file_that_cannot_be_removed_is_logged_and_the_others_still_go(
    alice, media, django_capture_on_commit_callbacks, caplog
):
    generation = generation_row(alice, status=Status.SUCCEEDED)
    # A directory with something in it: the storage's delete raises OSError for it.
    stuck = f"videos/t/{generation.pk}.mp4"
    default_storage.save(f"{stuck}/inside", ContentFile(b"x"))
    poster = default_storage.save(f"posters/t/{generation.pk}.jpg", ContentFile(b"poster"))
    Generation.objects.filter(pk=generation.pk).update(video=stuck, poster=poster)
    with django_capture_on_commit_callbacks(execute=True):
        generation_delete(generation=generation)
    assert not default_storage.exists(poster)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"could not delete stored file {stuck}"
    ]
    generation.refresh_from_db()
    assert generation.deleted_at is not None


def test_a_failed_generation_without_files_is_deleted_too(alice, django_capture_on_commit_callbacks):
    generation = generation_row(alice, status=Status.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        generation_delete(generation=generation)
    generation.refresh_from_db()
    assert generation.deleted_at is not None


def test_an_unfinished_generation_is_not_deleted(alice):
    generation = generation_row(alice, status=Status.FETCHING)
    with pytest.raises(GenerationUnfinished):
        generation_delete(generation=generation)
    generation.refresh_from_db()
    assert generation.deleted_at is None
