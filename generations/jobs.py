"""RQ entry points. Each does one short step and schedules the next; none waits on the
outside world, so one worker carries any number of generations in flight. Each is safe to
run twice: it starts from a claim, and a lost claim means someone else did the work."""

import logging
import os
import subprocess
import tempfile
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError
from django.utils import timezone

from generations import shortapi
from generations.downloads import DownloadError, download_to_tempfile
from generations.models import Generation
from generations.services import (
    callback_url,
    enqueue,
    generation_claim_fetch,
    generation_claim_submit,
    generation_fail,
    generation_fetch_heartbeat,
    generation_mark_running,
    generation_note_unknown_outcome,
    generation_note_upstream,
    generation_record_poll,
    generation_release_submit,
    generation_restart_polling,
    generation_start_fetch_attempt,
    generation_succeed,
)
from generations.uploads import generation_input_urls, uploads_sweep
from seedance_site.logs import log_context

logger = logging.getLogger(__name__)
Status = Generation.Status

# What the user reads when something goes wrong; operators get the detail.
USER_ERRORS = {
    "create_rejected": "The video service turned this request down.",
    "create_failed": "The video service could not be reached, so the video was not started.",
    "unknown_outcome": "The video service did not confirm the request in time.",
    "upstream_failed": "The video service could not make this video.",
    "deadline": "The video took too long to make, so it was cancelled.",
    "download_failed": "The finished video could not be copied to your gallery.",
}


def _fail(
    generation_id: str,
    failure_class: str,
    detail: str,
    upstream_error: str | None = None,
    *,
    seen: Generation | None = None,
) -> bool:
    """Fail and refund. With `seen` (the row as the caller read it), only if it has not moved since."""
    error = USER_ERRORS[failure_class]
    if upstream_error:
        said = upstream_error.strip()
        error = f"{error} It said: “{said.rstrip('.')}”."
    conditions = {}
    if seen is not None:
        conditions = {"from_statuses": (seen.status,), "seen_updated_at": seen.updated_at}
    return generation_fail(
        generation_id=generation_id,
        error=error + " Your credits have been returned.",
        detail=detail,
        failure_class=failure_class,
        **conditions,
    )


def _backoff(attempt: int) -> float:
    return min(settings.GENERATION_POLL_INITIAL_SECONDS * (2 ** max(attempt - 1, 0)), 60.0)


def job_request(generation: Generation) -> dict[str, Any]:
    """What the create call asks for this generation (shortapi.job_args' arguments): its settings
    and its inputs as signed links. The links are the same each time they are built, so a job a
    callback names can be checked against exactly this (adopt_job)."""
    urls = generation_input_urls(generation) if generation.model != Generation.Model.TEXT_TO_VIDEO else {}
    return {
        "prompt": generation.prompt,
        "mode": generation.mode,
        "duration": generation.duration,
        "aspect_ratio": generation.aspect_ratio,
        "model": generation.model,
        "image_urls": urls.get("image") or None,
        "video_url": (urls.get("video") or [None])[0],
        "audio_urls": urls.get("audio") or None,
        "first_last_frame": generation.first_last_frame,
    }


# Each job that works on one generation runs its body in log_context(generation=...), so every
# log line it writes carries the id. Written out, not as a decorator: mutmut skips decorated
# functions, and these are the ones most worth mutating (tests/MUTATION.md).
def submit(generation_id: str) -> None:
    with log_context(generation=generation_id):
        generation = generation_claim_submit(generation_id=generation_id)
        if generation is None:
            return
        try:
            job = shortapi.create_job(**job_request(generation), callback_url=callback_url(generation.pk))
        except shortapi.RetryLater as exc:
            waited = (timezone.now() - generation.created_at).total_seconds()
            if waited >= settings.GENERATION_SUBMIT_RETRY_SECONDS:
                _fail(
                    generation_id,
                    "create_failed",
                    f"create failed {generation.submit_attempts} times over {waited:.0f} s; last: {exc}",
                )
            elif generation_release_submit(
                generation_id=generation_id, detail=f"create attempt failed: {exc}"
            ):
                enqueue("generations.jobs.submit", generation_id, delay=_backoff(generation.submit_attempts))
            return
        except shortapi.GiveUp as exc:
            _fail(generation_id, "create_rejected", str(exc))
            return
        except shortapi.UnknownOutcome as exc:
            # Never create again blindly: the callback (carrying the job id) resumes it, or the
            # sweeper fails and refunds it once the grace period has passed.
            generation_note_unknown_outcome(generation_id=generation_id, detail=f"unknown outcome: {exc}")
            return
        # The claim books the first poll of the generation's one poll chain.
        if not generation_mark_running(
            generation_id=generation_id,
            job_id=job.job_id,
            amount=job.amount,
            first_poll_in=settings.GENERATION_FIRST_POLL_SECONDS,
        ):
            logger.error(
                "generation %s: upstream job %s created but the row had moved on", generation_id, job.job_id
            )


ADOPT_ATTEMPTS = 5


def adopt_job(generation_id: str, job_id: str, attempt: int = 1) -> None:
    """A callback named `job_id` for a generation whose create answer never arrived. The body of
    a callback is anybody's to write, so the id is taken only once upstream shows that job as
    exactly what this generation asked for, and no other generation has it. When upstream does
    not say (its query answer need not echo the request), the id is refused: the sweeper then
    fails and refunds the unconfirmed create, the safe side."""
    with log_context(generation=generation_id):
        generation = Generation.objects.filter(
            pk=generation_id, status__in=(Status.QUEUED, Status.SUBMITTING), upstream_job_id=""
        ).first()
        if generation is None:
            return
        if Generation.objects.filter(upstream_job_id=job_id).exists():
            logger.warning(
                "generation %s: refused job %s from a callback: another generation has it",
                generation_id,
                job_id,
            )
            return
        try:
            state = shortapi.query_job(job_id)
        except shortapi.RetryLater as exc:
            if attempt < ADOPT_ATTEMPTS:
                enqueue(
                    "generations.jobs.adopt_job", generation_id, job_id, attempt + 1, delay=_backoff(attempt)
                )
            else:
                logger.warning(
                    "generation %s: could not check job %s from a callback: %s", generation_id, job_id, exc
                )
            return
        except shortapi.ShortApiError as exc:
            logger.warning("generation %s: refused job %s from a callback: %s", generation_id, job_id, exc)
            return
        asked = shortapi.job_args(**job_request(generation))
        if not state.is_job_for(model=shortapi.MODEL_IDS[generation.model], args=asked):
            logger.warning(
                "generation %s: refused job %s from a callback: upstream does not show it as this request",
                generation_id,
                job_id,
            )
            return
        try:
            adopted = generation_mark_running(
                generation_id=generation_id,
                job_id=job_id,
                first_poll_in=settings.GENERATION_FIRST_POLL_SECONDS,
            )
        except IntegrityError:  # another generation took this job id meanwhile
            # Reached only by two callbacks racing: its wording is not mutation-tested (tests/MUTATION.md).
            taken = "generation %s: refused job %s from a callback: taken meanwhile"  # pragma: no mutate
            logger.warning(taken, generation_id, job_id)  # pragma: no mutate
            return
        if adopted:
            logger.warning("generation %s resumed from a callback with job %s", generation_id, job_id)
            enqueue("generations.jobs.poll", generation_id)


def poll(generation_id: str, chain: int | None = None) -> None:
    """Ask upstream about a running generation and act on what it says.

    A scheduled poll carries the number of its chain's link (the `poll_count` it was booked for),
    and only a poll that wins the claim on that number books the next link: one chain per
    generation, whatever else polls it. An ad-hoc poll (a callback, an operator's "Poll now")
    has no number: it acts on a finished or failed job but never books another poll.
    """
    with log_context(generation=generation_id):
        generation = Generation.objects.filter(pk=generation_id, status=Status.RUNNING).first()
        if generation is None:
            return
        if chain is not None and generation.poll_count != chain:
            return  # a link of a chain the sweeper replaced, or a twin of this one that ran first
        past_deadline = timezone.now() >= generation.deadline_at
        try:
            state = shortapi.query_job(generation.upstream_job_id)
        except shortapi.ShortApiError as exc:
            logger.warning("generation %s: query failed, will poll again: %s", generation_id, exc)
            state = None
        if state is not None and (state.refunded or chain is None):
            generation_note_upstream(
                generation_id=generation_id, upstream_status=state.status, upstream_refunded=state.refunded
            )
        if state is not None and state.succeeded:
            # The poll that wins the claim downloads the video itself: one RQ job less per video
            # (each costs some fifty Redis commands, bench/RESULTS.md). A worker that dies mid-download
            # leaves it `fetching`, and the sweeper queues a fetch job as before.
            if generation_claim_fetch(
                generation_id=generation_id, result_url=state.video_url, upstream_status=2, queue_fetch=False
            ):
                fetch(generation_id)
            return
        if state is not None and state.failed:
            _fail(generation_id, "upstream_failed", f"upstream status 3: {state.raw}", state.error)
            return
        if state is not None and state.status not in shortapi.IN_PROGRESS:
            logger.warning(
                "generation %s: undocumented upstream status %r: %s", generation_id, state.status, state.raw
            )
        if past_deadline:
            # Asked once more at the deadline: a job that finished meanwhile was not thrown away.
            _fail(generation_id, "deadline", f"no result after {generation.poll_count} polls")
            return
        if chain is None:
            return
        delay = generation_record_poll(
            generation_id=generation_id,
            seen_poll_count=chain,
            upstream_status=state.status if state else generation.upstream_status,
        )
        if delay is not None:
            # The last link lands just after the deadline, to ask once more and then fail. A second
            # past it, not less: RQ books to the whole second, and half a second past a deadline
            # early in its second was booked before it (polled again at once, until the deadline).
            remaining = (generation.deadline_at - timezone.now()).total_seconds()
            delay = max(0.0, min(delay, remaining + 1.0))
            enqueue("generations.jobs.poll", generation_id, chain + 1, delay=delay)


def fetch(generation_id: str) -> None:
    with log_context(generation=generation_id):
        generation = generation_start_fetch_attempt(generation_id=generation_id)
        if generation is None:
            return
        attempt = generation.fetch_attempts
        last_beat = time.monotonic()

        def heartbeat() -> None:
            nonlocal last_beat
            if time.monotonic() - last_beat >= settings.GENERATION_FETCH_HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                generation_fetch_heartbeat(generation_id=generation_id)

        try:
            tmp, size = download_to_tempfile(
                generation.result_url,
                max_bytes=settings.VIDEO_MAX_BYTES,
                max_seconds=settings.VIDEO_DOWNLOAD_MAX_SECONDS,
                progress=heartbeat,
            )
        except DownloadError as exc:
            if exc.retryable and attempt < settings.GENERATION_FETCH_ATTEMPTS:
                enqueue("generations.jobs.fetch", generation_id, delay=_backoff(attempt))
            else:
                _fail(
                    generation_id,
                    "download_failed",
                    f"attempt {attempt}: {exc} ({generation.result_url[:300]})",
                )
            return
        with tmp:
            try:
                name = default_storage.save(
                    f"videos/{generation.created_at:%Y/%m}/{generation.pk}.mp4", File(tmp)
                )
            except OSError as exc:  # the storage could not be written
                if attempt < settings.GENERATION_FETCH_ATTEMPTS:
                    enqueue("generations.jobs.fetch", generation_id, delay=_backoff(attempt))
                else:
                    _fail(generation_id, "download_failed", f"storage write failed: {exc}")
                return
            if not generation_succeed(generation_id=generation_id, video_name=name, video_bytes=size):
                default_storage.delete(name)  # a twin fetch won the claim
                return
            logger.info("generation %s succeeded: %s bytes stored as %s", generation_id, size, name)
        # The video is the user's now. Its poster (an ffmpeg run, ~27 ms of CPU) waits on the "low"
        # queue until no poll or download is waiting: it never delays another paid video.
        enqueue("generations.jobs.make_poster", generation_id)


def _poster_frame(source: str) -> bytes:
    """The first frame of the video at `source` (a local path), as JPEG bytes."""
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory() as workdir:
        poster_path = os.path.join(workdir, "poster.jpg")
        subprocess.run(
            [
                imageio_ffmpeg.get_ffmpeg_exe(),
                "-loglevel",
                "error",
                "-y",
                "-i",
                source,
                "-frames:v",
                "1",
                "-q:v",
                "4",
                poster_path,
            ],
            check=True,
            timeout=60,
            capture_output=True,
        )
        with open(poster_path, "rb") as poster:
            return poster.read()


def _store_poster(generation_id: str, created_at: Any, jpeg: bytes) -> None:
    name = default_storage.save(f"posters/{created_at:%Y/%m}/{generation_id}.jpg", ContentFile(jpeg))
    if not Generation.objects.visible().filter(pk=generation_id, poster="").update(poster=name):
        default_storage.delete(name)  # deleted meanwhile, or a twin job was first


def make_poster(generation_id: str) -> None:
    """The first frame as a JPEG for the gallery, from the stored copy. On the "low" queue: never
    holds up the video itself, nor anybody else's."""
    with log_context(generation=generation_id):
        generation = Generation.objects.visible().filter(pk=generation_id, status=Status.SUCCEEDED).first()
        if generation is None or generation.poster or not generation.video:
            return
        with tempfile.TemporaryDirectory() as workdir:
            source = os.path.join(workdir, "video.mp4")
            with default_storage.open(generation.video.name, "rb") as stored, open(source, "wb") as out:
                for chunk in iter(lambda: stored.read(1024 * 1024), b""):
                    out.write(chunk)
            jpeg = _poster_frame(source)
        _store_poster(generation_id, generation.created_at, jpeg)


# --- The sweeper ---------------------------------------------------------------------------

SUBMIT_STALE = timedelta(minutes=2)
UNKNOWN_OUTCOME_GRACE = timedelta(minutes=10)
POLL_LATE = timedelta(minutes=2)
# A live download touches updated_at every GENERATION_FETCH_HEARTBEAT_SECONDS (30 s).
FETCH_STALE = timedelta(minutes=10)


def reconcile() -> list[str]:
    """Resume or settle every generation that its jobs have lost. Returns one line for each.

    It decides from rows it read a moment earlier, so every step is a claim on what it saw: a
    fail only if the status and `updated_at` have not moved since (a callback may just have
    resumed it, a download may just have beaten its heartbeat), a new poll chain only if the
    chain's number has not moved either.
    """
    now = timezone.now()
    lines: list[str] = []
    active = Generation.objects.filter(status__in=Generation.ACTIVE).only(
        "id", "status", "deadline_at", "updated_at", "next_poll_at", "upstream_job_id", "poll_count"
    )
    for generation in active.iterator():
        gid = str(generation.pk)
        past_deadline = now >= generation.deadline_at
        if generation.status == Status.QUEUED:
            if past_deadline:
                if _fail(gid, "create_failed", "never submitted before the deadline", seen=generation):
                    lines.append(f"{gid} failed: never submitted before its deadline (refunded)")
            elif now - generation.updated_at > SUBMIT_STALE:
                enqueue("generations.jobs.submit", gid)
                lines.append(f"{gid} resumed: submit queued again")
        elif generation.status == Status.SUBMITTING:
            if past_deadline or now - generation.updated_at > UNKNOWN_OUTCOME_GRACE:
                detail = "create never confirmed and no callback came"
                if _fail(gid, "unknown_outcome", detail, seen=generation):
                    lines.append(f"{gid} failed: create never confirmed (refunded)")
        elif generation.status == Status.RUNNING:
            # Lost, not merely late: its next poll is minutes overdue (or it is past its deadline
            # and nothing has failed it). A chain that is only slow is replaced harmlessly.
            late = generation.next_poll_at is None or now - generation.next_poll_at > POLL_LATE
            if (past_deadline or late) and generation_restart_polling(
                generation_id=gid, seen_poll_count=generation.poll_count
            ) is not None:
                lines.append(f"{gid} resumed: poll queued" + (" (past deadline)" if past_deadline else ""))
        elif generation.status == Status.FETCHING:
            if now - generation.updated_at > FETCH_STALE:
                if past_deadline:
                    detail = "download never finished before the deadline"
                    if _fail(gid, "download_failed", detail, seen=generation):
                        lines.append(f"{gid} failed: download never finished (refunded)")
                else:
                    enqueue("generations.jobs.fetch", gid)
                    lines.append(f"{gid} resumed: fetch queued again")
    return lines


def sweep() -> None:
    """The scheduled sweeper: reconcile, queue again the webhooks and emails whose jobs were lost,
    remove uploads nobody used (generations.uploads), then book the next run (see
    generations.worker)."""
    from accounts.notices import notices_resume
    from generations.user_webhooks import deliveries_resume
    from generations.worker import schedule_sweeper

    for line in [*reconcile(), *deliveries_resume(), *notices_resume()]:
        logger.info("sweeper: %s", line)
    for line in uploads_sweep():
        logger.info("sweeper: %s", line)
    schedule_sweeper()


# --- Webhooks to users' servers ---------------------------------------------------------------


def deliver_webhook(delivery_id: int) -> None:
    """One try; the next is booked by the try itself (generations.user_webhooks)."""
    from generations.user_webhooks import webhook_deliver

    webhook_deliver(delivery_id=delivery_id)
