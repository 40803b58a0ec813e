"""generations.jobs, held to exactly what it does: the failure message a user reads, the retry
backoff, the create request, a callback's job adopted only when upstream shows it as ours, every
branch of the sweeper (with its boundaries), the poster. Each test kills mutants
`make mutants MODULES=generations.jobs` let through (tests/MUTATION.md). The jobs are called
directly; upstream is the bundled simulator over real HTTP, or a closed port."""

import logging
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import django_rq
import pytest
import time_machine
from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import CreditEntry
from generations import jobs, shortapi
from generations.models import Generation, Upload, WebhookDelivery
from generations.services import generation_claim_submit, generation_create
from generations.uploads import Inputs, generation_input_urls
from seedance_site.logs import ContextFilter
from tests import media
from tests.factories import SIM_KEY, generation_row, ledger

pytestmark = pytest.mark.django_db

Status = Generation.Status
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
PROMPT = "[sim:no-callback] a heron lands on a misty lake"


@pytest.fixture(autouse=True)
def configured(settings) -> None:
    settings.SHORTAPI_KEY = "configured"


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def upstream(simulator, settings):
    simulator.reset()
    settings.SHORTAPI_BASE_URL = simulator.url
    settings.SHORTAPI_KEY = SIM_KEY
    return simulator


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """django-rq queues a job when the transaction commits: `with committed():` runs those commits."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def create(user, prompt: str = "a heron", **extra) -> Generation:
    generation, _ = generation_create(
        user=user, prompt=prompt, mode="std", duration=5, aspect_ratio="16:9", **extra
    )
    return generation


def moved(generation: Generation, status: str, **fields) -> Generation:
    Generation.objects.filter(pk=generation.pk).update(status=status, **fields)
    generation.refresh_from_db()
    return generation


def queued_jobs() -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in django_rq.get_queue("default").get_jobs()]


def scheduled_jobs() -> list[tuple[str, tuple, datetime]]:
    queue = django_rq.get_queue("default")
    registry = queue.scheduled_job_registry
    return [
        (queue.fetch_job(i).func_name, queue.fetch_job(i).args, registry.get_scheduled_time(i))
        for i in registry.get_job_ids()
    ]


def log_lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "generations.jobs"]


# --- _fail: what the user reads ----------------------------------------------------------------------


def test_a_failure_quotes_the_providers_words_once_and_says_the_credits_came_back(alice):
    generation = create(alice)
    assert jobs._fail(str(generation.pk), "upstream_failed", "status 3", "  Refused: reason TAX.  ")
    generation.refresh_from_db()
    assert generation.error == (
        "The video service could not make this video. It said: “Refused: reason TAX”. "
        "Your credits have been returned."
    )
    assert (generation.error_detail, generation.failure_class) == ("status 3", "upstream_failed")
    assert ledger(generation) == [(CreditEntry.Kind.CHARGE, -120), (CreditEntry.Kind.REFUND, 120)]


def test_a_failure_without_the_providers_words_says_what_happened(alice):
    generation = create(alice)
    assert jobs._fail(str(generation.pk), "create_failed", "create failed 3 times")
    generation.refresh_from_db()
    assert generation.error == (
        "The video service could not be reached, so the video was not started. "
        "Your credits have been returned."
    )


def test_a_failure_decided_on_a_row_read_earlier_waits_for_nothing_to_have_moved(alice, frozen):
    generation = moved(create(alice), Status.RUNNING)
    seen = Generation.objects.get(pk=generation.pk)
    frozen.shift(timedelta(seconds=1))
    Generation.objects.filter(pk=generation.pk).update(updated_at=timezone.now())  # a callback touched it
    assert not jobs._fail(str(generation.pk), "deadline", "late", seen=seen)
    moved(generation, Status.FETCHING)
    seen = Generation.objects.get(pk=generation.pk)
    Generation.objects.filter(pk=generation.pk).update(status=Status.RUNNING)  # same moment, other status
    assert not jobs._fail(str(generation.pk), "deadline", "late", seen=seen)
    seen = Generation.objects.get(pk=generation.pk)
    assert jobs._fail(str(generation.pk), "deadline", "late", seen=seen)


# --- _backoff ----------------------------------------------------------------------------------------


def test_the_retry_backoff_doubles_from_the_first_poll_interval_up_to_a_minute(settings):
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    assert [jobs._backoff(n) for n in range(7)] == [5, 5, 10, 20, 40, 60, 60]


# --- job_request -------------------------------------------------------------------------------------


def test_a_text_to_video_request_names_its_settings_and_no_inputs(alice, django_assert_num_queries):
    generation = create(alice, prompt="a fox")
    with django_assert_num_queries(0):  # no inputs to look up
        request = jobs.job_request(generation)
    assert request == {
        "prompt": "a fox",
        "mode": "std",
        "duration": 5,
        "aspect_ratio": "16:9",
        "model": "text-to-video",
        "image_urls": None,
        "video_url": None,
        "audio_urls": None,
        "first_last_frame": False,
    }


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


def test_a_reference_request_carries_every_input_as_a_signed_link(alice):
    images = (upload(alice, "image"), upload(alice, "image"))
    video, audio = upload(alice, "video", Decimal(3)), upload(alice, "audio", Decimal(2))
    generation = create(alice, inputs=Inputs(images=images, video=video, audios=(audio,)))
    urls = generation_input_urls(generation)
    assert len(urls["image"]) == 2 and len(urls["video"]) == 1 and len(urls["audio"]) == 1
    assert jobs.job_request(generation) == {
        "prompt": "a heron",
        "mode": "std",
        "duration": 5,
        "aspect_ratio": "16:9",
        "model": "omni-reference",
        "image_urls": urls["image"],
        "video_url": urls["video"][0],
        "audio_urls": urls["audio"],
        "first_last_frame": False,
    }


def test_a_first_and_last_frame_request_says_so(alice):
    images = (upload(alice, "image"), upload(alice, "image"))
    generation = create(alice, inputs=Inputs(images=images, first_last_frame=True))
    request = jobs.job_request(generation)
    assert (request["model"], request["first_last_frame"]) == ("image-to-video", True)
    assert request["image_urls"] == generation_input_urls(generation)["image"]
    assert (request["video_url"], request["audio_urls"]) == (None, None)


# --- adopt_job: a callback's job id, taken only when upstream shows it as ours ----------------------


def lost_submit(user) -> tuple[Generation, str]:
    """A generation whose create reached upstream but whose answer never came back: its job exists."""
    generation = create(user, prompt=PROMPT)
    assert generation_claim_submit(generation_id=generation.pk)
    job = shortapi.create_job(**jobs.job_request(generation), callback_url="http://127.0.0.1:9/cb")
    return generation, job.job_id


def test_a_callbacks_job_that_upstream_shows_as_this_request_is_adopted_and_polled(
    alice, upstream, settings, caplog, committed
):
    settings.GENERATION_FIRST_POLL_SECONDS = 30
    caplog.set_level(logging.WARNING, logger="generations.jobs")
    generation, job_id = lost_submit(alice)
    with committed():
        jobs.adopt_job(str(generation.pk), job_id)
    generation.refresh_from_db()
    assert (generation.status, generation.upstream_job_id) == (Status.RUNNING, job_id)
    assert ("generations.jobs.poll", (str(generation.pk),)) in queued_jobs()
    assert f"generation {generation.pk} resumed from a callback with job {job_id}" in log_lines(caplog)


class Collected(logging.Handler):
    """The records as a production handler sees them: with the log context's fields."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_job_for_another_request_is_refused(alice, upstream, caplog, committed):
    caplog.set_level(logging.WARNING, logger="generations.jobs")
    generation, _ = lost_submit(alice)
    other = create(alice, prompt="[sim:no-callback] something else")
    other_job = shortapi.create_job(**jobs.job_request(other), callback_url="http://127.0.0.1:9/cb")
    collected = Collected()
    logging.getLogger("generations.jobs").addHandler(collected)
    try:
        with committed():
            jobs.adopt_job(str(generation.pk), other_job.job_id)
    finally:
        logging.getLogger("generations.jobs").removeHandler(collected)
    assert [r.context_fields for r in collected.records] == [{"generation": str(generation.pk)}]
    generation.refresh_from_db()
    assert (generation.status, generation.upstream_job_id) == (Status.SUBMITTING, "")
    assert log_lines(caplog) == [
        f"generation {generation.pk}: refused job {other_job.job_id} from a callback: "
        "upstream does not show it as this request"
    ]
    assert queued_jobs() == []


def test_a_job_another_generation_has_is_refused_without_asking_upstream(alice, upstream, caplog):
    caplog.set_level(logging.WARNING, logger="generations.jobs")
    generation, job_id = lost_submit(alice)
    generation_row(alice, status=Status.RUNNING, upstream_job_id=job_id)
    queries = upstream.jobs[job_id].query_calls
    jobs.adopt_job(str(generation.pk), job_id)
    generation.refresh_from_db()
    assert (generation.status, generation.upstream_job_id) == (Status.SUBMITTING, "")
    assert log_lines(caplog) == [
        f"generation {generation.pk}: refused job {job_id} from a callback: another generation has it"
    ]
    assert upstream.jobs[job_id].query_calls == queries


def test_a_generation_that_already_has_a_job_or_has_ended_adopts_nothing(alice, upstream, committed):
    """Decided from our own row alone: upstream is not even asked."""
    generation, job_id = lost_submit(alice)
    Generation.objects.filter(pk=generation.pk).update(upstream_job_id="job-own")
    with committed():
        jobs.adopt_job(str(generation.pk), job_id)
    generation.refresh_from_db()
    assert generation.upstream_job_id == "job-own"
    assert upstream.jobs[job_id].query_calls == 0
    failed, failed_job = lost_submit(alice)
    moved(failed, Status.FAILED)
    with committed():
        jobs.adopt_job(str(failed.pk), failed_job)
    failed.refresh_from_db()
    assert (failed.status, failed.upstream_job_id) == (Status.FAILED, "")
    assert upstream.jobs[failed_job].query_calls == 0
    assert queued_jobs() == []


def test_a_job_upstream_does_not_know_is_refused(alice, upstream, caplog):
    caplog.set_level(logging.WARNING, logger="generations.jobs")
    generation, _ = lost_submit(alice)
    jobs.adopt_job(str(generation.pk), "job-nobody-made")
    generation.refresh_from_db()
    assert generation.upstream_job_id == ""
    [line] = log_lines(caplog)
    assert line.startswith(
        f"generation {generation.pk}: refused job job-nobody-made from a callback: ShortAPI"
    )


def test_an_unreachable_upstream_is_asked_again_later_five_times_in_all(
    alice, settings, caplog, frozen, committed
):
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"  # nothing listens: RetryLater
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    caplog.set_level(logging.WARNING, logger="generations.jobs")
    generation = moved(create(alice), Status.SUBMITTING)
    gid = str(generation.pk)
    with committed():
        jobs.adopt_job(gid, "job-1")
    assert scheduled_jobs() == [("generations.jobs.adopt_job", (gid, "job-1", 2), NOW + timedelta(seconds=5))]
    registry = django_rq.get_queue("default").scheduled_job_registry
    registry.remove(registry.get_job_ids()[0])
    with committed():
        jobs.adopt_job(gid, "job-1", 4)
    assert scheduled_jobs() == [
        ("generations.jobs.adopt_job", (gid, "job-1", 5), NOW + timedelta(seconds=40))
    ]
    assert log_lines(caplog) == []
    with committed():
        jobs.adopt_job(gid, "job-1", 5)
    assert len(scheduled_jobs()) == 1  # no sixth
    [line] = log_lines(caplog)
    said = "could not query ShortAPI: ConnectionError"
    assert line == f"generation {gid}: could not check job job-1 from a callback: {said}"


# --- reconcile: every branch, at its boundaries -------------------------------------------------------


def at(user, status: str, *, updated: timedelta, deadline: timedelta = timedelta(minutes=20), **fields):
    """A generation in `status`, last touched `updated` ago, its deadline `deadline` from now."""
    generation = create(user)
    Generation.objects.filter(pk=generation.pk).update(
        status=status, updated_at=NOW - updated, deadline_at=NOW + deadline, **fields
    )
    generation.refresh_from_db()
    return generation


def test_the_sweeper_settles_or_resumes_each_lost_generation_and_leaves_the_rest(
    alice, settings, frozen, committed
):
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100
    settings.SUBMIT_RATE_LIMIT = "100/m"
    second = timedelta(seconds=1)
    g = {
        "queued_past_deadline": at(alice, Status.QUEUED, updated=second, deadline=timedelta(0)),
        "queued_stale": at(alice, Status.QUEUED, updated=jobs.SUBMIT_STALE + second),
        "queued_just_in_time": at(alice, Status.QUEUED, updated=jobs.SUBMIT_STALE),
        "submitting_stale": at(alice, Status.SUBMITTING, updated=jobs.UNKNOWN_OUTCOME_GRACE + second),
        "submitting_just_in_time": at(alice, Status.SUBMITTING, updated=jobs.UNKNOWN_OUTCOME_GRACE),
        "submitting_past_deadline": at(alice, Status.SUBMITTING, updated=second, deadline=-second),
        "running_no_poll": at(alice, Status.RUNNING, updated=second, next_poll_at=None, poll_count=3),
        "running_late": at(
            alice, Status.RUNNING, updated=second, next_poll_at=NOW - jobs.POLL_LATE - second, poll_count=1
        ),
        "running_just_in_time": at(alice, Status.RUNNING, updated=second, next_poll_at=NOW - jobs.POLL_LATE),
        "running_past_deadline": at(
            alice, Status.RUNNING, updated=second, deadline=timedelta(0), next_poll_at=NOW, poll_count=7
        ),
        "fetching_stale": at(alice, Status.FETCHING, updated=jobs.FETCH_STALE + second),
        "fetching_just_in_time": at(alice, Status.FETCHING, updated=jobs.FETCH_STALE),
        "fetching_stale_past_deadline": at(
            alice, Status.FETCHING, updated=jobs.FETCH_STALE + second, deadline=-second
        ),
        "fetching_fresh_past_deadline": at(alice, Status.FETCHING, updated=second, deadline=-second),
    }
    ids = {name: str(generation.pk) for name, generation in g.items()}
    with committed():
        lines = jobs.reconcile()
    assert sorted(lines) == sorted(
        [
            f"{ids['queued_past_deadline']} failed: never submitted before its deadline (refunded)",
            f"{ids['queued_stale']} resumed: submit queued again",
            f"{ids['submitting_stale']} failed: create never confirmed (refunded)",
            f"{ids['submitting_past_deadline']} failed: create never confirmed (refunded)",
            f"{ids['running_no_poll']} resumed: poll queued",
            f"{ids['running_late']} resumed: poll queued",
            f"{ids['running_past_deadline']} resumed: poll queued (past deadline)",
            f"{ids['fetching_stale']} resumed: fetch queued again",
            f"{ids['fetching_stale_past_deadline']} failed: download never finished (refunded)",
        ]
    )
    rows = {name: Generation.objects.get(pk=generation.pk) for name, generation in g.items()}
    failed = {
        name: (row.failure_class, row.error_detail)
        for name, row in rows.items()
        if row.status == Status.FAILED
    }
    assert failed == {
        "queued_past_deadline": ("create_failed", "never submitted before the deadline"),
        "submitting_stale": ("unknown_outcome", "create never confirmed and no callback came"),
        "submitting_past_deadline": ("unknown_outcome", "create never confirmed and no callback came"),
        "fetching_stale_past_deadline": ("download_failed", "download never finished before the deadline"),
    }
    assert (rows["running_no_poll"].poll_count, rows["running_late"].poll_count) == (4, 2)
    assert rows["running_past_deadline"].poll_count == 8
    assert rows["running_just_in_time"].poll_count == 0
    assert sorted(queued_jobs()) == sorted(
        [
            ("generations.jobs.submit", (ids["queued_stale"],)),
            ("generations.jobs.poll", (ids["running_no_poll"], 4)),
            ("generations.jobs.poll", (ids["running_late"], 2)),
            ("generations.jobs.poll", (ids["running_past_deadline"], 8)),
            ("generations.jobs.fetch", (ids["fetching_stale"],)),
        ]
    )
    for name in (
        "queued_just_in_time",
        "submitting_just_in_time",
        "fetching_just_in_time",
        "fetching_fresh_past_deadline",
    ):
        assert rows[name].status == g[name].status, name
        assert rows[name].updated_at == g[name].updated_at, name
    assert all(len(ledger(rows[name])) == 2 for name in failed)  # refunded, once


def test_the_sweeper_reads_each_generation_in_one_query(alice, frozen, django_assert_num_queries):
    """It reads only the columns it decides on, all in the first query: none is fetched again
    row by row (what `.only()` without one of them would do)."""
    second = timedelta(seconds=1)
    at(alice, Status.QUEUED, updated=second)
    at(alice, Status.SUBMITTING, updated=second)
    at(alice, Status.RUNNING, updated=second, next_poll_at=NOW)
    at(alice, Status.FETCHING, updated=second)
    with django_assert_num_queries(1):
        assert jobs.reconcile() == []
    lost = at(alice, Status.RUNNING, updated=second, next_poll_at=None, poll_count=2)
    with django_assert_num_queries(2):  # the read, and the claim of the new chain
        assert jobs.reconcile() == [f"{lost.pk} resumed: poll queued"]


def test_the_scheduled_sweep_logs_each_line_and_books_its_next_run(
    alice, caplog, frozen, committed, settings, media
):
    caplog.set_level(logging.INFO, logger="generations.jobs")
    settings.UPLOAD_UNUSED_DAYS = 30
    stale = at(alice, Status.QUEUED, updated=timedelta(minutes=5))
    unused = upload(alice, "image")
    Upload.objects.filter(pk=unused.pk).update(created_at=NOW - timedelta(days=31))
    with committed():
        jobs.sweep()
    assert log_lines(caplog) == [
        f"sweeper: {stale.pk} resumed: submit queued again",
        f"sweeper: upload {unused.pk} unused for 30 days: deleted",
    ]
    assert [name for name, _, _ in scheduled_jobs()] == ["generations.jobs.sweep"]


# --- Webhook deliveries ------------------------------------------------------------------------------


def test_a_webhook_delivery_job_makes_one_try_of_that_delivery(alice, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    generation = create(alice, webhook_url="http://127.0.0.1:9/hook")
    assert jobs._fail(str(generation.pk), "deadline", "late")
    delivery = WebhookDelivery.objects.get(generation=generation)
    jobs.deliver_webhook(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.attempt_count == 1


# --- The poster --------------------------------------------------------------------------------------


def test_the_poster_is_the_first_frame_as_a_jpeg(tmp_path, monkeypatch):
    clip = media.video(tmp_path / "clip.mp4", seconds=1)
    monkeypatch.chdir(tmp_path)
    jpeg = jobs._poster_frame(str(clip))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]  # cut in a directory of its own
    assert jpeg[:3] == b"\xff\xd8\xff"
    (tmp_path / "poster.jpg").write_bytes(jpeg)
    assert "mjpeg" in media.probe(tmp_path / "poster.jpg")


def test_a_poster_from_a_file_that_is_not_a_video_is_an_error(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    with pytest.raises(subprocess.CalledProcessError) as failed:
        jobs._poster_frame(str(junk))
    assert failed.value.stderr  # ffmpeg's complaint kept for the log, not printed on the worker's terminal


def test_a_poster_is_stored_once_for_a_visible_generation(alice, media):
    generation = generation_row(alice, status=Status.SUCCEEDED)
    other = generation_row(alice, status=Status.SUCCEEDED)
    created = datetime(2026, 3, 4, tzinfo=UTC)
    jobs._store_poster(str(generation.pk), created, b"\xff\xd8first")
    generation.refresh_from_db()
    assert generation.poster.name == f"posters/2026/03/{generation.pk}.jpg"
    with default_storage.open(generation.poster.name, "rb") as stored:
        assert stored.read() == b"\xff\xd8first"
    jobs._store_poster(str(generation.pk), created, b"\xff\xd8twin")  # a twin job, second
    generation.refresh_from_db()
    assert generation.poster.name == f"posters/2026/03/{generation.pk}.jpg"
    assert default_storage.listdir("posters/2026/03")[1] == [f"{generation.pk}.jpg"]
    other.refresh_from_db()
    assert other.poster.name == ""
    Generation.objects.filter(pk=other.pk).update(deleted_at=timezone.now())
    jobs._store_poster(str(other.pk), created, b"\xff\xd8late")
    other.refresh_from_db()
    assert other.poster.name == ""
    assert default_storage.listdir("posters/2026/03")[1] == [f"{generation.pk}.jpg"]
