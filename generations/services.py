"""Every write that changes a generation's status or money goes through here.

Status changes are claims: `filter(pk=..., status=OLD).update(status=NEW)`, acted on only
when exactly one row changed. That is what makes every job safe to run twice, and what
lets a callback, a scheduled poll, the sweeper and an operator race without harm.
"""

import logging
import secrets
import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, QuerySet
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from accounts.billing.ledger import InsufficientCredits, credits_charge, credits_refund
from accounts.models import User
from accounts.notices import balance_low_notice
from accounts.preferences import submit_settings
from accounts.spending import SpendLimitReached, spend_limit_check
from generations import shortapi
from generations.models import Generation, Upload
from generations.pricing import MODEL_LABELS, TEXT_TO_VIDEO, quote
from generations.uploads import NO_INPUTS, Inputs, inputs_record
from seedance_site.queues import get_queue

logger = logging.getLogger(__name__)
Status = Generation.Status

CALLBACK_SALT = "generations.shortapi-callback"
VIDEO_SALT = "generations.video-url"


class UpstreamUnconfigured(Exception):
    message = "Video generation is not configured on this server yet (no ShortAPI key). Try again later."


class TooManyActive(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"You already have {limit} videos in progress, the most at once. Wait for one to finish."
        )


class SubmittingTooFast(TooManyActive):
    """Also a TooManyActive, so every caller that handles the one limit handles the other."""

    def __init__(self) -> None:
        self.limit = 0
        Exception.__init__(self, "You are starting videos too fast. Wait a minute, then try again.")


class IdempotencyKeyOfDeleted(Exception):
    """The key started a generation its owner has since deleted. Keys are spent for good
    (CONTRACT §5b), and the deleted one is shown nowhere, so the repeat is refused."""

    message = (
        "This Idempotency-Key was used for a video you have since deleted. "
        "Send a new key to make another video."
    )


class InputGone(Exception):
    """An input was deleted between the form's check and the submit (its owner, another tab)."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.message = "One of the chosen uploads was deleted meanwhile: choose it again or another one."
        super().__init__(self.message)


def generation_for_key(*, user: User, idempotency_key: str) -> Generation | None:
    """The generation this key already started, if any; IdempotencyKeyOfDeleted if deleted."""
    existing = Generation.objects.filter(user=user, idempotency_key=idempotency_key).first()
    if existing is not None and existing.deleted_at is not None:
        raise IdempotencyKeyOfDeleted()
    return existing


__all__ = [
    "IdempotencyKeyOfDeleted",
    "InputGone",
    "InsufficientCredits",
    "SpendLimitReached",
    "SubmittingTooFast",
    "TooManyActive",
    "UpstreamUnconfigured",
]

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _submit_rate_exceeded(user_id: int) -> bool:
    """A fixed window per user in the cache (Redis), shared by every web process."""
    count, _, unit = settings.SUBMIT_RATE_LIMIT.partition("/")
    period = _PERIODS[unit[-1]] * int(unit[:-1] or 1)
    key = f"submit-rate:{user_id}:{int(time.time() // period)}"
    cache.add(key, 0, timeout=period + 5)
    try:
        return cache.incr(key) > int(count)
    except ValueError:  # the key expired between add and incr
        return False


# Jobs that finish work already paid for go to the front of the queue: a burst of new
# submissions or poster frames must not delay a finished video by minutes.
URGENT_JOBS = frozenset({"generations.jobs.poll", "generations.jobs.fetch"})
# And jobs that can wait go to the "low" queue, which a worker takes only when "default" is empty.
LOW_PRIORITY_JOBS = frozenset({"generations.jobs.make_poster"})


def job_timeout(func_path: str) -> int | None:
    """RQ's time limit for a job, when the queue's default (5 minutes) is not right for it."""
    if func_path in ("generations.jobs.fetch", "generations.jobs.poll"):  # a poll may download too
        # Above the download's own overall limit, so the download ends (and is retried or failed
        # cleanly) before RQ would kill the job halfway through writing the file.
        return int(settings.VIDEO_DOWNLOAD_MAX_SECONDS) + 120
    return None


def enqueue(func_path: str, *args: object, delay: float | None = None, job_id: str | None = None) -> None:
    queue = get_queue("low" if func_path in LOW_PRIORITY_JOBS else "default")
    kwargs: dict[str, object] = {"at_front": func_path in URGENT_JOBS}
    if job_id:
        kwargs["job_id"] = job_id
    timeout = job_timeout(func_path)
    if timeout:
        kwargs["job_timeout"] = timeout
    if delay and delay > 0:
        # RQ books it to the whole second (its scheduled registry scores whole seconds), so it may
        # run up to a second early. Nothing needs more: a poll or a retry a little early is harmless,
        # and a poll that lands just before the deadline books one more that lands after it.
        queue.enqueue_in(timedelta(seconds=delay), func_path, *args, **kwargs)
    else:
        queue.enqueue(func_path, *args, **kwargs)


def enqueue_on_commit(func_path: str, *args: object, delay: float | None = None) -> None:
    # Only after commit: a worker must never pick up an id whose row it cannot see yet.
    transaction.on_commit(lambda: enqueue(func_path, *args, delay=delay))


def generation_create(
    *,
    user: User,
    prompt: str,
    mode: str,
    duration: int,
    aspect_ratio: str,
    idempotency_key: str | None = None,
    inputs: Inputs = NO_INPUTS,
    webhook_url: str = "",
) -> tuple[Generation, bool]:
    """Hold the credits and queue the generation; return it and whether it is new.

    `inputs` (checked by GenerationForm) decide the model and, for omni-reference, the billed input
    seconds. Raises IdempotencyKeyOfDeleted, UpstreamUnconfigured, SubmittingTooFast,
    TooManyActive, InputGone, SpendLimitReached or InsufficientCredits, leaving nothing behind.
    """
    if idempotency_key:
        existing = generation_for_key(user=user, idempotency_key=idempotency_key)
        if existing is not None:
            return existing, False
    if not shortapi.is_configured():
        raise UpstreamUnconfigured()
    if _submit_rate_exceeded(user.pk):
        raise SubmittingTooFast()
    price = quote(mode, duration, model=inputs.model, input_seconds=inputs.input_seconds)
    # Read before the lock: a limit changed at this very moment is a limit changed just after.
    # (The low-balance mark too, in the same read: it is looked at after commit.)
    choices = submit_settings(user_id=user.pk)
    # Under the lock only what a concurrent submission of the same user could change: the active
    # count, the month's spend, the balance; the generation and its charge are written in the same
    # transaction so the next submission sees them. The low-balance email is looked at after commit.
    with transaction.atomic():
        # The user's row lock serialises one user's submissions, so the active count and an
        # idempotency key cannot both be read as free by two requests at once.
        User.objects.select_for_update().filter(pk=user.pk).values_list("pk").get()
        if idempotency_key:
            existing = generation_for_key(user=user, idempotency_key=idempotency_key)
            if existing is not None:
                return existing, False
        active = Generation.objects.filter(user=user, status__in=Generation.ACTIVE).count()
        if active >= settings.MAX_ACTIVE_GENERATIONS_PER_USER:
            raise TooManyActive(settings.MAX_ACTIVE_GENERATIONS_PER_USER)
        _lock_inputs(inputs)
        # Under the same lock: eight submissions at once cannot all read the same month's spend.
        spend_limit_check(
            user_id=user.pk, cost_cents=price.cost_cents, limit_cents=choices.monthly_spend_limit_cents
        )
        generation = Generation.objects.create(
            user=user,
            prompt=prompt,
            mode=mode,
            duration=duration,
            aspect_ratio=aspect_ratio,
            model=price.model,
            first_last_frame=inputs.first_last_frame,
            input_seconds=price.input_seconds,
            cost_cents=price.cost_cents,
            cents_per_second=price.cents_per_second,
            idempotency_key=idempotency_key or None,
            webhook_url=webhook_url,
            deadline_at=timezone.now() + timedelta(seconds=settings.GENERATION_DEADLINE_SECONDS),
        )
        inputs_record(generation=generation, inputs=inputs)
        what = "" if price.model == TEXT_TO_VIDEO else f" ({MODEL_LABELS[price.model].lower()})"
        charge = credits_charge(
            user_id=user.pk,
            amount_cents=price.cost_cents,
            description=f"{duration} s {mode} video{what}",
            idempotency_key=f"{generation.ledger_reference}:charge",
            reference=generation.ledger_reference,
            new_key=True,
        )
        enqueue_on_commit("generations.jobs.submit", str(generation.pk))
    balance_low_notice(user=user, entry=charge, threshold=choices.low_balance_email_cents)
    logger.info("generation %s created for %s: %s cents", generation.pk, user.username, price.cost_cents)
    return generation, True


def _lock_inputs(inputs: Inputs) -> None:
    """Hold the inputs' rows until commit: upload_delete takes the same lock, so an upload is
    either deleted before (InputGone) or seen as used by the delete after."""
    for role, field in (("image", "image_ids"), ("video", "video_id"), ("audio", "audio_ids")):
        ids = {upload.pk for r, _, upload in inputs.slots() if r == role}
        if ids and Upload.objects.select_for_update().live().filter(pk__in=ids).count() != len(ids):
            raise InputGone(field)


def generation_fail(
    *,
    generation_id: object,
    error: str,
    detail: str = "",
    failure_class: str,
    from_statuses: tuple[str, ...] = Generation.ACTIVE,
    seen_updated_at: datetime | None = None,
) -> bool:
    """Fail an unfinished generation and refund its credits, exactly once. True if we did it.

    A caller that decided from what it saw earlier (the sweeper) names that status and
    `updated_at`: if anything moved the row since (a callback resumed it, a download beat its
    heartbeat), the claim finds no row and nothing happens.
    """
    claim = Generation.objects.filter(pk=generation_id, status__in=from_statuses)
    if seen_updated_at is not None:
        claim = claim.filter(updated_at=seen_updated_at)
    with transaction.atomic():
        claimed = claim.update(
            status=Status.FAILED,
            error=error[:500],
            error_detail=detail,
            failure_class=failure_class,
            finished_at=timezone.now(),
            next_poll_at=None,
            updated_at=timezone.now(),
        )
        if not claimed:
            return False
        generation = Generation.objects.only("user_id", "cost_cents").get(pk=generation_id)
        credits_refund(
            user_id=generation.user_id,
            amount_cents=generation.cost_cents,
            description="Refund: the video could not be made",
            idempotency_key=f"generation:{generation_id}:refund",
            reference=f"generation:{generation_id}",
        )
        _ended(generation_id)
    logger.warning("generation %s failed (%s): %s %s", generation_id, failure_class, error, detail)
    return True


def update_returning(queryset: QuerySet[Generation], **changes: object) -> Generation | None:
    """`queryset.update(**changes)` that also returns the row it changed, as it is after the change,
    in one statement (UPDATE … RETURNING: PostgreSQL, and SQLite from 3.35): a claim and the read
    that follows it are one round trip, not two. For a queryset of at most one row (a claim by pk)."""
    query = queryset.query.chain(UpdateQuery)
    query.add_update_values(changes)
    update_sql, params = query.get_compiler(queryset.db).as_sql()
    # raw() turns the columns into a model instance with the backend's own converters.
    rows = list(queryset.model.objects.db_manager(queryset.db).raw(f"{update_sql} RETURNING *", params))
    return rows[0] if rows else None


def generation_claim_submit(*, generation_id: object) -> Generation | None:
    """The queued generation, now `submitting` (None when another job or a cancel moved it first)."""
    return update_returning(
        Generation.objects.filter(pk=generation_id, status=Status.QUEUED),
        status=Status.SUBMITTING,
        submit_attempts=F("submit_attempts") + 1,
        updated_at=timezone.now(),
    )


def generation_release_submit(*, generation_id: object, detail: str) -> bool:
    """Give a failed create attempt back to the queue, to be tried again."""
    return bool(
        Generation.objects.filter(pk=generation_id, status=Status.SUBMITTING, upstream_job_id="").update(
            status=Status.QUEUED, error_detail=detail, updated_at=timezone.now()
        )
    )


def generation_mark_running(
    *, generation_id: object, job_id: str, amount: Decimal | None = None, first_poll_in: float
) -> bool:
    """Record the upstream job; only a generation that has no job yet can take one.

    The winner of this claim (the submit job, or a callback that resumed a lost submit) starts
    the generation's one poll chain: its first scheduled poll, number 0.
    """
    now = timezone.now()
    fields = {
        "status": Status.RUNNING,
        "upstream_job_id": job_id,
        "submitted_at": now,
        "poll_count": 0,
        "next_poll_at": now + timedelta(seconds=first_poll_in),
        "updated_at": now,
    }
    if amount is not None:
        fields["upstream_amount"] = amount
    claimed = Generation.objects.filter(
        pk=generation_id, status__in=(Status.QUEUED, Status.SUBMITTING), upstream_job_id=""
    ).update(**fields)
    if claimed:
        enqueue_on_commit("generations.jobs.poll", str(generation_id), 0, delay=first_poll_in)
    return bool(claimed)


def generation_note_unknown_outcome(*, generation_id: object, detail: str) -> None:
    Generation.objects.filter(pk=generation_id, status=Status.SUBMITTING).update(
        error_detail=detail, updated_at=timezone.now()
    )


def poll_interval(poll_count: int) -> float:
    base = settings.GENERATION_POLL_INITIAL_SECONDS
    return min(base * (2 ** min(poll_count, 20)), settings.GENERATION_POLL_MAX_SECONDS)


# upstream_status is a SMALLINT: an undocumented value outside it is kept as unknown (None)
# rather than crashing every poll on PostgreSQL until the deadline.
SMALLINT = range(-32768, 32768)


def storable_status(status: int | None) -> int | None:
    return status if status in SMALLINT else None


def generation_record_poll(
    *, generation_id: object, seen_poll_count: int, upstream_status: int | None
) -> float | None:
    """Claim the next link of the poll chain (poll_count seen → seen + 1); return the delay to
    book it after, or None when the chain has moved on (a twin poll, or the sweeper restarted it)."""
    delay = poll_interval(seen_poll_count)
    claimed = Generation.objects.filter(
        pk=generation_id, status=Status.RUNNING, poll_count=seen_poll_count
    ).update(
        poll_count=seen_poll_count + 1,
        upstream_status=storable_status(upstream_status),
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        updated_at=timezone.now(),
    )
    return delay if claimed else None


def generation_note_upstream(
    *, generation_id: object, upstream_status: int | None, upstream_refunded: bool
) -> None:
    """What an ad-hoc poll learnt, without touching the chain. A job the provider reports as
    refunded cost us nothing: the overview must not count it as spend."""
    fields: dict[str, object] = {}
    if storable_status(upstream_status) is not None:
        fields["upstream_status"] = upstream_status
    if upstream_refunded:
        fields["upstream_refunded"] = True
    if fields:
        Generation.objects.filter(pk=generation_id).update(**fields)


def generation_restart_polling(*, generation_id: object, seen_poll_count: int) -> int | None:
    """Start a new poll chain for a running generation whose chain was lost; the old chain, if it
    is only late, finds its number taken and stops. Returns the new chain's number, or None."""
    now = timezone.now()
    claimed = Generation.objects.filter(
        pk=generation_id, status=Status.RUNNING, poll_count=seen_poll_count
    ).update(poll_count=seen_poll_count + 1, next_poll_at=now, updated_at=now)
    if not claimed:
        return None
    enqueue_on_commit("generations.jobs.poll", str(generation_id), seen_poll_count + 1)
    return seen_poll_count + 1


def generation_claim_fetch(
    *, generation_id: object, result_url: str, upstream_status: int, queue_fetch: bool = True
) -> bool:
    """Claim the download of a finished job's video; the winner queues `fetch` (or, with
    `queue_fetch=False`, runs it itself)."""
    claimed = Generation.objects.filter(pk=generation_id, status=Status.RUNNING).update(
        status=Status.FETCHING,
        result_url=result_url,
        upstream_status=upstream_status,
        poll_count=F("poll_count") + 1,
        next_poll_at=None,
        updated_at=timezone.now(),
    )
    if claimed and queue_fetch:
        enqueue_on_commit("generations.jobs.fetch", str(generation_id))
    return bool(claimed)


def generation_start_fetch_attempt(*, generation_id: object) -> Generation | None:
    """The generation whose video is to be downloaded, its attempt counted (None once it is not
    `fetching`: finished by a twin, or failed)."""
    return update_returning(
        Generation.objects.filter(pk=generation_id, status=Status.FETCHING),
        fetch_attempts=F("fetch_attempts") + 1,
    )


def generation_fetch_heartbeat(*, generation_id: object) -> bool:
    """A download still in progress says so: the sweeper queues a fetch again only for one whose
    `updated_at` went stale, so a long, live download must keep it fresh. False once it is not
    ours any more (failed, or finished by a twin)."""
    return bool(
        Generation.objects.filter(pk=generation_id, status=Status.FETCHING).update(updated_at=timezone.now())
    )


def generation_succeed(*, generation_id: object, video_name: str, video_bytes: int) -> bool:
    with transaction.atomic():
        claimed = Generation.objects.filter(pk=generation_id, status=Status.FETCHING).update(
            status=Status.SUCCEEDED,
            video=video_name,
            video_bytes=video_bytes,
            error="",
            finished_at=timezone.now(),
            updated_at=timezone.now(),
        )
        if claimed:
            _ended(generation_id)
    return bool(claimed)


def _ended(generation_id: object) -> None:
    """The generation just ended (its claim to succeeded or failed won, in this transaction):
    these two services are the only ways a status ends, so this runs once for each generation."""
    from generations.notify import generation_ended

    generation_ended(generation_id=generation_id)


CANCELLED = "Cancelled by you"


class GenerationAlreadyStarted(Exception):
    def __init__(self, generation: Generation) -> None:
        self.message = (
            "This video has already finished, so there is nothing to cancel."
            if generation.is_finished
            else "This video has already started (the video service has it), so it can no longer be "
            "cancelled. If it fails, its credits come back."
        )
        super().__init__(self.message)


def generation_cancel(*, generation: Generation) -> Generation:
    """Cancel a generation still queued: it fails with "Cancelled by you" and every credit comes
    back, once. A claim from queued only: the submit job claims queued → submitting before it calls
    upstream, so exactly one of the two wins; a cancel that loses raises GenerationAlreadyStarted."""
    from generations.notify import CANCELLED_CLASS

    if not generation_fail(
        generation_id=generation.pk,
        error=CANCELLED,
        detail="cancelled by its owner before it was submitted",
        failure_class=CANCELLED_CLASS,
        from_statuses=(Status.QUEUED,),
    ):
        generation.refresh_from_db()
        raise GenerationAlreadyStarted(generation)
    generation.refresh_from_db()
    logger.info("generation %s cancelled by its owner", generation.pk)
    return generation


class NotShareable(Exception):
    message = "Only a finished video can be shared."


def generation_set_visibility(
    *, generation: Generation, visibility: str, require_finished: bool = True
) -> Generation:
    """Private, unlisted ("anyone with the link") or listed (on Explore too).

    Going private drops the share slug: the page /v/<slug>/, the signed video links made for it and
    its og:video all name that slug, so each stops at once, not when its signature expires. Sharing
    again makes a new link. Between unlisted and listed the link stays the same."""
    if visibility not in Generation.Visibility.CHOICES:
        raise ValueError(f"Unknown visibility {visibility!r}.")
    if visibility == Generation.Visibility.PRIVATE:
        generation.shared, generation.listed, generation.share_slug = False, False, None
    else:
        if require_finished and generation.status != Generation.Status.SUCCEEDED:
            raise NotShareable()
        if not generation.share_slug:
            generation.share_slug = secrets.token_urlsafe(8)[:11]
        generation.shared = True
        generation.listed = visibility == Generation.Visibility.LISTED
    generation.save(update_fields=["shared", "listed", "share_slug", "updated_at"])
    return generation


def generation_set_share(*, generation: Generation, shared: bool) -> Generation:
    """The admin's "shared" box: ticked shares it as sharing always did (listed on Explore too);
    cleared makes it private. An operator's choice, taken whatever the status (only a succeeded
    video is ever shown publicly)."""
    visibility = Generation.Visibility.LISTED if shared else Generation.Visibility.PRIVATE
    return generation_set_visibility(generation=generation, visibility=visibility, require_finished=False)


# --- Signed tokens ---------------------------------------------------------------------------


def callback_token(generation_id: object) -> str:
    return signing.dumps(str(generation_id), salt=CALLBACK_SALT, compress=False)


def callback_url(generation_id: object) -> str:
    return f"{settings.SITE_URL}/webhooks/shortapi/{callback_token(generation_id)}/"


# A callback token carries its signing time (signing.dumps is timestamped) and expires this long
# after the generation's deadline: every callback for a live generation is in time, and a token
# read from an old access log is worthless.
CALLBACK_TOKEN_GRACE = timedelta(hours=6)


def generation_id_from_callback_token(token: str) -> str | None:
    max_age = timedelta(seconds=settings.GENERATION_DEADLINE_SECONDS) + CALLBACK_TOKEN_GRACE
    try:
        return signing.loads(token, salt=CALLBACK_SALT, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired included
        return None


def video_token(generation_id: object, *, share_slug: str | None = None) -> str:
    """The owner's link names the generation alone. A link handed to the public (a shared page,
    Explore, og:video) names its share slug too, so unsharing — which drops the slug — ends it."""
    value = f"{generation_id}~{share_slug}" if share_slug else str(generation_id)
    return signing.TimestampSigner(salt=VIDEO_SALT).sign(value)


def generation_id_from_video_token(token: str) -> tuple[str, str | None] | None:
    """(generation id, share slug or None) from a valid, unexpired video token; else None."""
    try:
        value = signing.TimestampSigner(salt=VIDEO_SALT).unsign(
            token, max_age=settings.VIDEO_URL_MAX_AGE_SECONDS
        )
    except signing.BadSignature:
        return None
    generation_id, _, share_slug = value.partition("~")
    return generation_id, share_slug or None


# --- The web portal ------------------------------------------------------------------------


class GenerationUnfinished(Exception):
    message = "This video is still being made. You can delete it once it has finished."


def _delete_stored_files(names: list[str]) -> None:
    from django.core.files.storage import default_storage

    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            # The row is gone either way; an orphaned file is an operator's chore, not the user's.
            logger.exception("could not delete stored file %s", name)


def generation_delete(*, generation: Generation) -> None:
    """Delete a finished generation for its owner: its stored video and poster go, and it
    disappears from every page and from the API.

    The row itself stays (marked deleted), because the ledger's charge and refund name it. The
    credits stay spent: a succeeded video was delivered, and a failed one was refunded already.
    An unfinished one raises GenerationUnfinished, since a worker may be about to store its video."""
    with transaction.atomic():
        row = (
            Generation.objects.select_for_update()
            .visible()
            .filter(pk=generation.pk, status__in=Generation.FINISHED)
            .values("video", "poster")
            .first()
        )
        if row is None:
            raise GenerationUnfinished()
        Generation.objects.filter(pk=generation.pk).update(
            deleted_at=timezone.now(),
            video="",
            poster="",
            shared=False,
            listed=False,
            share_slug=None,
            updated_at=timezone.now(),
        )
        names = [name for name in (row["video"], row["poster"]) if name]
        # Files go only once the change is committed: a rolled-back delete keeps a playable video.
        transaction.on_commit(lambda: _delete_stored_files(names))
    logger.info("generation %s deleted by its owner", generation.pk)
