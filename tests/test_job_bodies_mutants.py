"""The four generation jobs' own bodies (generations.jobs submit, poll, fetch, make_poster), held to
exactly what they do, step by step. mutmut skipped them while they were decorated; each test here
kills mutants `tests/mutants.py generations.jobs` let through in them (tests/MUTATION.md). The jobs
are called directly; upstream is the bundled simulator over real HTTP, or a closed port."""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import django_rq
import pytest
import time_machine
from django.core.files import File
from django.core.files.storage import default_storage

from generations import jobs, shortapi
from generations.models import Generation
from generations.services import (
    callback_url,
    generation_claim_submit,
    generation_create,
    generation_mark_running,
)
from seedance_site.logs import ContextFilter
from tests import media as clips
from tests.factories import SIM_KEY, generation_row

pytestmark = pytest.mark.django_db

Status = Generation.Status
NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
PROMPT = "[sim:no-callback] a heron lands on a misty lake"
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens: every call is RetryLater


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


def queued_jobs() -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in django_rq.get_queue("default").get_jobs()]


def scheduled_jobs() -> list[tuple[str, tuple, datetime]]:
    queue = django_rq.get_queue("default")
    registry = queue.scheduled_job_registry
    return [
        (queue.fetch_job(i).func_name, queue.fetch_job(i).args, registry.get_scheduled_time(i))
        for i in registry.get_job_ids()
    ]


class Collected(logging.Handler):
    """The job's log records, with the context a log line is printed with."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected():
    handler = Collected()
    logger = logging.getLogger("generations")  # the jobs' own lines and the services' they call
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def create(user, prompt: str = PROMPT) -> Generation:
    generation, _ = generation_create(user=user, prompt=prompt, mode="std", duration=5, aspect_ratio="16:9")
    return generation


def running(user) -> Generation:
    generation = create(user)
    assert generation_claim_submit(generation_id=generation.pk)
    assert generation_mark_running(generation_id=generation.pk, job_id="job-1", first_poll_in=60)
    return generation


# --- submit -----------------------------------------------------------------------------------------


def test_a_submit_creates_the_job_with_its_callback_and_books_the_first_poll(
    alice, upstream, settings, frozen, committed, collected
):
    settings.GENERATION_FIRST_POLL_SECONDS = 7
    generation = create(alice)
    gid = str(generation.pk)
    collected.records.clear()

    with committed():
        jobs.submit(gid)

    [job] = upstream.jobs.values()
    assert (job.args["prompt"], job.args["duration"], job.callback_url) == (PROMPT, 5, callback_url(gid))
    generation.refresh_from_db()
    assert (generation.status, generation.upstream_job_id) == (Status.RUNNING, job.job_id)
    assert (generation.submit_attempts, generation.upstream_amount) == (1, Decimal("1.2"))
    assert scheduled_jobs() == [("generations.jobs.poll", (gid, 0), NOW + timedelta(seconds=7))]
    assert queued_jobs() == []
    assert collected.records == []  # nothing went wrong, so nothing is logged


@pytest.mark.parametrize("status", [Status.SUBMITTING, Status.RUNNING, Status.FAILED])
def test_a_submit_of_a_generation_no_longer_queued_asks_upstream_nothing(alice, upstream, committed, status):
    generation = create(alice)
    Generation.objects.filter(pk=generation.pk).update(status=status)

    with committed():
        jobs.submit(str(generation.pk))

    assert upstream.stats()["create_calls"] == 0
    generation.refresh_from_db()
    assert (generation.status, generation.submit_attempts) == (status, 0)
    assert scheduled_jobs() == queued_jobs() == []


def test_an_unreachable_upstream_gives_the_submit_back_to_the_queue_after_the_backoff(
    alice, settings, frozen, committed, collected
):
    settings.SHORTAPI_BASE_URL = CLOSED_PORT
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    settings.GENERATION_SUBMIT_RETRY_SECONDS = 60
    generation = create(alice)
    gid = str(generation.pk)
    frozen.shift(timedelta(seconds=59))  # just inside the window
    collected.records.clear()

    with committed():
        jobs.submit(gid)

    generation.refresh_from_db()
    assert (generation.status, generation.submit_attempts) == (Status.QUEUED, 1)
    assert generation.error_detail == "create attempt failed: could not connect to ShortAPI: ConnectionError"
    assert scheduled_jobs() == [("generations.jobs.submit", (gid,), NOW + timedelta(seconds=64))]
    assert collected.records == []


def test_an_unreachable_upstream_fails_and_refunds_the_submit_once_the_window_has_passed(
    alice, settings, frozen, committed, collected
):
    settings.SHORTAPI_BASE_URL = CLOSED_PORT
    settings.GENERATION_SUBMIT_RETRY_SECONDS = 60
    generation = create(alice)
    gid = str(generation.pk)
    Generation.objects.filter(pk=generation.pk).update(submit_attempts=2)
    frozen.shift(timedelta(seconds=60))  # exactly the window
    collected.records.clear()

    with committed():
        jobs.submit(gid)

    generation.refresh_from_db()
    assert (generation.status, generation.failure_class) == (Status.FAILED, "create_failed")
    assert generation.error_detail == (
        "create failed 3 times over 60 s; last: could not connect to ShortAPI: ConnectionError"
    )
    assert generation.error == (
        "The video service could not be reached, so the video was not started. "
        "Your credits have been returned."
    )
    assert scheduled_jobs() == []
    assert [r.context_fields for r in collected.records] == [{"generation": gid}]


def test_a_create_upstream_turns_down_fails_and_refunds_the_generation(alice, upstream, committed):
    generation = create(alice, "[sim:create-error] a heron")

    with committed():
        jobs.submit(str(generation.pk))

    generation.refresh_from_db()
    assert (generation.status, generation.failure_class) == (Status.FAILED, "create_rejected")
    assert generation.error.startswith("The video service turned this request down.")
    assert "1001" in generation.error_detail or "Insufficient" in generation.error_detail
    assert scheduled_jobs() == []


def test_a_create_with_an_unknown_outcome_is_never_sent_again_and_waits_for_a_callback(
    alice, upstream, committed
):
    generation = create(alice, "[sim:create-504] a heron")

    with committed():
        jobs.submit(str(generation.pk))

    assert upstream.stats()["create_calls"] == 1
    generation.refresh_from_db()
    assert (generation.status, generation.upstream_job_id) == (Status.SUBMITTING, "")
    assert generation.error_detail.startswith("unknown outcome: ")
    assert scheduled_jobs() == queued_jobs() == []


# --- poll -------------------------------------------------------------------------------------------


def running_upstream(user, prompt: str = PROMPT, **fields) -> tuple[Generation, str]:
    """A running generation whose job the simulator has (made at NOW when the clock is frozen)."""
    generation = create(user, prompt)
    assert generation_claim_submit(generation_id=generation.pk)
    job = shortapi.create_job(**jobs.job_request(generation), callback_url=None)
    assert generation_mark_running(generation_id=generation.pk, job_id=job.job_id, first_poll_in=60)
    if fields:
        Generation.objects.filter(pk=generation.pk).update(**fields)
    generation.refresh_from_db()
    django_rq.get_queue("default").scheduled_job_registry.remove_jobs()
    return generation, job.job_id


@pytest.fixture
def polls(settings):
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    settings.GENERATION_POLL_MAX_SECONDS = 60


def test_a_scheduled_poll_of_a_job_in_progress_books_the_next_link(alice, upstream, frozen, committed, polls):
    generation, job_id = running_upstream(alice)
    gid = str(generation.pk)

    with committed():
        jobs.poll(gid, 0)

    generation.refresh_from_db()
    assert (generation.status, generation.poll_count, generation.upstream_status) == (Status.RUNNING, 1, 0)
    assert upstream.jobs[job_id].query_calls == 1
    assert scheduled_jobs() == [("generations.jobs.poll", (gid, 1), NOW + timedelta(seconds=5))]


def test_a_sub_second_poll_interval_is_booked_as_it_is_not_raised_to_a_second(
    alice, upstream, frozen, committed, settings
):
    settings.GENERATION_POLL_INITIAL_SECONDS = 0.4  # as the tests' and the bench's fast simulators
    settings.GENERATION_POLL_MAX_SECONDS = 0.5
    generation, _ = running_upstream(alice)

    with committed():
        jobs.poll(str(generation.pk), 0)

    # NOW + 0.4 s, which RQ keeps as NOW's whole second: due as soon as the scheduler looks.
    assert scheduled_jobs() == [("generations.jobs.poll", (str(generation.pk), 1), NOW)]


@pytest.mark.parametrize(
    ("left", "booked"),
    # 2.6, 0.2 or 0.7 s to the deadline, plus a second; RQ keeps whole seconds, so the link is
    # booked to the second after the deadline's. Half a second would book 0.2's at NOW, before it.
    [(2.6, 3), (0.2, 1), (0.7, 1)],
)
def test_the_last_link_is_booked_just_after_the_deadline(
    alice, upstream, frozen, committed, polls, left, booked
):
    generation, _ = running_upstream(alice, deadline_at=NOW + timedelta(seconds=left))

    with committed():
        jobs.poll(str(generation.pk), 0)

    assert scheduled_jobs() == [
        ("generations.jobs.poll", (str(generation.pk), 1), NOW + timedelta(seconds=booked))
    ]


@pytest.mark.parametrize(
    ("status", "chain"), [(Status.FETCHING, 0), (Status.FAILED, None), (Status.RUNNING, 3)]
)
def test_a_poll_of_a_generation_not_running_or_of_an_old_chain_asks_nothing(
    alice, upstream, frozen, committed, polls, status, chain
):
    generation, job_id = running_upstream(alice, status=status)

    with committed():
        jobs.poll(str(generation.pk), chain)

    assert upstream.jobs[job_id].query_calls == 0
    generation.refresh_from_db()
    assert (generation.status, generation.poll_count, generation.upstream_status) == (status, 0, None)
    assert scheduled_jobs() == queued_jobs() == []


def test_an_ad_hoc_poll_notes_what_upstream_said_and_books_nothing(alice, upstream, frozen, committed, polls):
    generation, job_id = running_upstream(alice)

    with committed():
        jobs.poll(str(generation.pk))

    assert upstream.jobs[job_id].query_calls == 1
    generation.refresh_from_db()
    assert (generation.status, generation.poll_count, generation.upstream_status) == (Status.RUNNING, 0, 0)
    assert scheduled_jobs() == queued_jobs() == []


def test_a_poll_that_cannot_reach_upstream_books_the_next_link_with_what_it_knew(
    alice, settings, frozen, committed, polls, collected
):
    settings.SHORTAPI_BASE_URL = CLOSED_PORT
    generation = running(alice)
    Generation.objects.filter(pk=generation.pk).update(upstream_status=1)
    gid = str(generation.pk)
    django_rq.get_queue("default").scheduled_job_registry.remove_jobs()
    collected.records.clear()

    with committed():
        jobs.poll(gid, 0)

    generation.refresh_from_db()
    assert (generation.poll_count, generation.upstream_status) == (1, 1)
    assert scheduled_jobs() == [("generations.jobs.poll", (gid, 1), NOW + timedelta(seconds=5))]
    [record] = collected.records
    assert record.getMessage() == (
        f"generation {gid}: query failed, will poll again: could not query ShortAPI: ConnectionError"
    )
    assert record.context_fields == {"generation": gid}


def test_a_poll_of_a_failed_job_fails_and_refunds_with_the_providers_words(
    alice, upstream, frozen, committed, polls
):
    generation, job_id = running_upstream(alice)
    upstream.finish(job_id, status=3)

    with committed():
        jobs.poll(str(generation.pk), 0)

    generation.refresh_from_db()
    assert (generation.status, generation.failure_class) == (Status.FAILED, "upstream_failed")
    assert generation.error == (
        "The video service could not make this video. It said: “Content moderation rejected the prompt”. "
        "Your credits have been returned."
    )
    assert generation.error_detail.startswith("upstream status 3: {")
    assert "'refunded': True" in generation.error_detail
    assert (generation.upstream_status, generation.upstream_refunded) == (3, True)
    assert scheduled_jobs() == []


def test_a_poll_past_the_deadline_asks_once_more_then_fails_and_refunds(
    alice, upstream, frozen, committed, polls
):
    generation, job_id = running_upstream(alice, deadline_at=NOW, poll_count=4)

    with committed():
        jobs.poll(str(generation.pk), 4)

    assert upstream.jobs[job_id].query_calls == 1
    generation.refresh_from_db()
    assert (generation.status, generation.failure_class) == (Status.FAILED, "deadline")
    assert generation.error_detail == "no result after 4 polls"
    assert scheduled_jobs() == []


def test_an_undocumented_upstream_status_is_logged_and_polled_again(
    alice, upstream, frozen, committed, polls, collected
):
    generation, _ = running_upstream(alice, "[sim:no-callback][sim:status-7] a heron")
    gid = str(generation.pk)
    frozen.shift(timedelta(seconds=30))  # the job's time is up
    collected.records.clear()

    with committed():
        jobs.poll(gid, 0)

    [record] = collected.records
    assert record.getMessage().startswith(f"generation {gid}: undocumented upstream status 7: {{")
    generation.refresh_from_db()
    assert (generation.status, generation.poll_count, generation.upstream_status) == (Status.RUNNING, 1, 7)
    assert [job[:2] for job in scheduled_jobs()] == [("generations.jobs.poll", (gid, 1))]


def test_a_poll_of_a_finished_job_downloads_the_video_itself(
    alice, upstream, frozen, committed, polls, media, collected
):
    generation, job_id = running_upstream(alice)
    gid = str(generation.pk)
    upstream.finish(job_id, status=2)
    collected.records.clear()

    with committed():
        jobs.poll(gid, 0)

    generation.refresh_from_db()
    assert generation.status == Status.SUCCEEDED
    assert (generation.upstream_status, generation.poll_count, generation.fetch_attempts) == (2, 1, 1)
    assert generation.result_url.startswith(upstream.url)
    assert generation.video.name == f"videos/2026/11/{gid}.mp4"
    assert (media / generation.video.name).stat().st_size == generation.video_bytes > 0
    assert scheduled_jobs() == queued_jobs() == []  # the poster waits on the low queue
    assert [job.func_name for job in django_rq.get_queue("low").get_jobs()] == [
        "generations.jobs.make_poster"
    ]
    assert collected.records[-1].getMessage() == (
        f"generation {gid} succeeded: {generation.video_bytes} bytes stored as {generation.video.name}"
    )
    assert {r.context_fields["generation"] for r in collected.records} == {gid}


# --- poll ------------------------------------------------------------------------------------------


def test_a_polls_log_lines_carry_the_generations_id(alice, settings, collected):
    settings.SHORTAPI_BASE_URL = CLOSED_PORT
    generation = running(alice)
    collected.records.clear()

    jobs.poll(str(generation.pk))

    [record] = collected.records
    assert record.getMessage().startswith(f"generation {generation.pk}: query failed, will poll again: ")
    assert record.context_fields == {"generation": str(generation.pk)}


# --- make_poster -----------------------------------------------------------------------------------


def stored_video(user, tmp_path, **fields) -> Generation:
    generation = generation_row(user, **fields)
    clip = clips.video(tmp_path / "clip.mp4", seconds=1, color="red")
    with clip.open("rb") as source:
        name = default_storage.save(f"videos/2026/03/{generation.pk}.mp4", File(source))
    Generation.objects.filter(pk=generation.pk).update(
        video=name, created_at=datetime(2026, 3, 4, tzinfo=UTC)
    )
    generation.refresh_from_db()
    return generation


def test_a_poster_is_the_first_frame_of_the_stored_video(alice, media, tmp_path, monkeypatch):
    generation = stored_video(alice, tmp_path)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)

    jobs.make_poster(str(generation.pk))

    assert list(workdir.iterdir()) == []  # the video copied to a directory of its own, then gone

    generation.refresh_from_db()
    assert generation.poster.name == f"posters/2026/03/{generation.pk}.jpg"
    assert clips.probe(media / generation.poster.name).count("mjpeg") >= 1
    red, green, blue = clips.frame_color(media / generation.poster.name, at=0)
    assert red > 200 and green < 60 and blue < 60


@pytest.mark.parametrize(
    "fields",
    [
        {"status": Status.FETCHING},
        {"status": Status.FAILED},
        {"poster": "posters/2026/03/before.jpg"},
        {"video": ""},
        {"deleted_at": NOW},
    ],
)
def test_a_poster_is_made_only_for_a_visible_succeeded_video_without_one(alice, media, tmp_path, fields):
    stored_video(alice, tmp_path)  # another video that wants a poster: not this job's
    generation = stored_video(alice, tmp_path)
    Generation.objects.filter(pk=generation.pk).update(**fields)

    jobs.make_poster(str(generation.pk))

    generation.refresh_from_db()
    assert generation.poster.name == fields.get("poster", "")
    assert not (media / "posters").exists()


def test_a_poll_acts_on_its_own_generation_only(alice, upstream, frozen, committed, polls):
    other, other_job = running_upstream(alice)
    generation = create(alice)  # still queued

    with committed():
        jobs.poll(str(generation.pk), 0)

    assert upstream.jobs[other_job].query_calls == 0
    other.refresh_from_db()
    assert (other.poll_count, other.upstream_status) == (0, None)
    assert scheduled_jobs() == []


# --- fetch -----------------------------------------------------------------------------------------


def fetching(user, url: str, attempts: int = 0) -> Generation:
    generation = create(user)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FETCHING, result_url=url, upstream_job_id="job-1", fetch_attempts=attempts
    )
    generation.refresh_from_db()
    return generation


@pytest.fixture
def downloads(settings):
    settings.SHORTAPI_BASE_URL = CLOSED_PORT  # the trusted host: nothing listens there
    settings.GENERATION_FETCH_ATTEMPTS = 3
    settings.GENERATION_POLL_INITIAL_SECONDS = 5


def test_a_fetch_of_a_generation_not_fetching_downloads_nothing(alice, upstream, committed, media):
    generation, job_id = running_upstream(alice)
    upstream.finish(job_id, status=2)
    Generation.objects.filter(pk=generation.pk).update(result_url=f"{upstream.url}/files/{job_id}.mp4")

    with committed():
        jobs.fetch(str(generation.pk))

    assert upstream.stats()["video_downloads"] == 0
    generation.refresh_from_db()
    assert (generation.status, generation.fetch_attempts) == (Status.RUNNING, 0)


def test_a_fetch_that_could_not_reach_the_video_is_tried_again_after_the_backoff(
    alice, downloads, frozen, committed, media
):
    generation = fetching(alice, f"{CLOSED_PORT}/files/v.mp4", attempts=1)
    gid = str(generation.pk)

    with committed():
        jobs.fetch(gid)

    generation.refresh_from_db()
    assert (generation.status, generation.fetch_attempts) == (Status.FETCHING, 2)
    assert scheduled_jobs() == [("generations.jobs.fetch", (gid,), NOW + timedelta(seconds=10))]


def test_the_last_fetch_that_could_not_reach_the_video_fails_and_refunds(
    alice, downloads, frozen, committed, media
):
    generation = fetching(alice, f"{CLOSED_PORT}/files/v.mp4", attempts=2)

    with committed():
        jobs.fetch(str(generation.pk))

    generation.refresh_from_db()
    assert (generation.status, generation.failure_class) == (Status.FAILED, "download_failed")
    assert generation.error.startswith("The finished video could not be copied to your gallery.")
    assert generation.error_detail == (
        f"attempt 3: could not fetch the video: ConnectionError ({CLOSED_PORT}/files/v.mp4)"
    )
    assert scheduled_jobs() == []


def test_a_failed_fetch_names_at_most_300_characters_of_the_url(alice, downloads, frozen, committed, media):
    url = f"{CLOSED_PORT}/files/v.mp4?signature=" + "s" * 400
    generation = fetching(alice, url, attempts=2)

    with committed():
        jobs.fetch(str(generation.pk))

    generation.refresh_from_db()
    assert generation.error_detail.endswith(f" ({url[:300]})")


def test_a_fetch_of_something_that_is_not_a_video_fails_at_once(alice, upstream, committed, media, settings):
    settings.GENERATION_FETCH_ATTEMPTS = 3
    generation, job_id = running_upstream(alice, "[sim:no-callback][sim:video-html] a heron")
    upstream.finish(job_id, status=2)
    url = f"{upstream.url}/files/{job_id}.mp4"
    Generation.objects.filter(pk=generation.pk).update(status=Status.FETCHING, result_url=url)

    with committed():
        jobs.fetch(str(generation.pk))

    generation.refresh_from_db()
    assert (generation.status, generation.failure_class, generation.fetch_attempts) == (
        Status.FAILED,
        "download_failed",
        1,
    )
    assert generation.error_detail == f"attempt 1: the video URL served text/html, not a video ({url})"
    assert scheduled_jobs() == []


@pytest.mark.parametrize(("attempts", "ends"), [(0, Status.FETCHING), (2, Status.FAILED)])
def test_a_video_the_storage_could_not_write_is_tried_again_then_failed(
    alice, upstream, frozen, committed, settings, tmp_path, attempts, ends
):
    settings.GENERATION_FETCH_ATTEMPTS = 3
    settings.GENERATION_POLL_INITIAL_SECONDS = 5
    blocked = tmp_path / "media"
    blocked.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = str(blocked)
    generation, job_id = running_upstream(alice)
    upstream.finish(job_id, status=2)
    gid = str(generation.pk)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FETCHING, result_url=f"{upstream.url}/files/{job_id}.mp4", fetch_attempts=attempts
    )

    with committed():
        jobs.fetch(gid)

    generation.refresh_from_db()
    assert generation.status == ends
    if ends == Status.FETCHING:
        assert scheduled_jobs() == [("generations.jobs.fetch", (gid,), NOW + timedelta(seconds=5))]
    else:
        assert generation.error_detail.startswith("storage write failed: ")
        assert scheduled_jobs() == []


def test_a_fetch_stores_the_video_and_logs_it_under_the_generations_id(
    alice, upstream, frozen, committed, media, collected
):
    generation, job_id = running_upstream(alice)
    upstream.finish(job_id, status=2)
    gid = str(generation.pk)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FETCHING, result_url=f"{upstream.url}/files/{job_id}.mp4"
    )
    collected.records.clear()

    with committed():
        jobs.fetch(gid)

    generation.refresh_from_db()
    assert (generation.status, generation.fetch_attempts) == (Status.SUCCEEDED, 1)
    assert generation.video.name == f"videos/2026/11/{gid}.mp4"
    low = django_rq.get_queue("low").get_jobs()
    assert [(job.func_name, job.args) for job in low] == [("generations.jobs.make_poster", (gid,))]
    [record] = [r for r in collected.records if r.name == "generations.jobs"]
    assert (
        record.getMessage()
        == f"generation {gid} succeeded: {generation.video_bytes} bytes stored as {generation.video.name}"
    )
    assert record.context_fields == {"generation": gid}


@pytest.mark.parametrize(("every", "beats"), [(0.01, True), (3600, False)])
def test_a_long_download_says_it_is_alive_every_heartbeat_interval(
    alice, upstream, committed, settings, tmp_path, monkeypatch, every, beats
):
    settings.GENERATION_FETCH_HEARTBEAT_SECONDS = every
    settings.GENERATION_FETCH_ATTEMPTS = 3
    monkeypatch.setattr(upstream, "slow_seconds", 0.5)
    blocked = tmp_path / "media"  # the storage fails after the download: no other write touches the row
    blocked.write_text("a file where the media folder should be")
    settings.MEDIA_ROOT = str(blocked)
    generation, job_id = running_upstream(alice, "[sim:no-callback][sim:video-slow] a heron")
    upstream.finish(job_id, status=2)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FETCHING, result_url=f"{upstream.url}/files/{job_id}.mp4"
    )
    before = Generation.objects.get(pk=generation.pk).updated_at

    with committed():
        jobs.fetch(str(generation.pk))

    generation.refresh_from_db()
    assert (generation.status, generation.fetch_attempts) == (Status.FETCHING, 1)
    assert (generation.updated_at > before) is beats


def test_a_download_slower_than_its_time_limit_is_cut_off_and_tried_again(
    alice, upstream, committed, settings, media, monkeypatch
):
    settings.VIDEO_DOWNLOAD_MAX_SECONDS = 0.2
    settings.GENERATION_FETCH_ATTEMPTS = 3
    monkeypatch.setattr(upstream, "slow_seconds", 2)
    generation, job_id = running_upstream(alice, "[sim:no-callback][sim:video-slow] a heron")
    upstream.finish(job_id, status=2)
    Generation.objects.filter(pk=generation.pk).update(
        status=Status.FETCHING, result_url=f"{upstream.url}/files/{job_id}.mp4"
    )

    with committed():
        jobs.fetch(str(generation.pk))

    generation.refresh_from_db()
    assert (generation.status, generation.video.name) == (Status.FETCHING, "")
    assert [job[:2] for job in scheduled_jobs()] == [("generations.jobs.fetch", (str(generation.pk),))]
