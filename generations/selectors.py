"""Reads: what a user may see, and how a generation looks from outside."""

import base64
import binascii
import uuid
from datetime import UTC, datetime

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest
from django.urls import reverse

from accounts.models import User
from generations.models import Generation, WebhookDelivery

PUBLIC_STATUSES = {
    "queued": (Generation.Status.QUEUED, Generation.Status.SUBMITTING),
    "running": (Generation.Status.RUNNING, Generation.Status.FETCHING),
    "succeeded": (Generation.Status.SUCCEEDED,),
    "failed": (Generation.Status.FAILED,),
}


def generation_for_user(*, user: User, generation_id: object) -> Generation:
    """The user's own generation, or 404: another user's is indistinguishable from none."""
    try:
        visible = Generation.objects.visible().prefetch_related("inputs__upload")
        return visible.get(pk=generation_id, user=user)
    except (Generation.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such generation.") from None


def generations_for_user(*, user: User, status: str | None = None) -> QuerySet[Generation]:
    # Inputs with their uploads: the API lists their ids, the gallery shows their thumbnails.
    queryset = (
        Generation.objects.visible()
        .filter(user=user)
        .prefetch_related("inputs__upload")
        .order_by("-created_at", "-id")
    )
    if status:
        queryset = queryset.filter(status__in=PUBLIC_STATUSES[status])
    return queryset


def encode_cursor(generation: Generation) -> str:
    raw = f"{generation.created_at.isoformat()}|{generation.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def apply_cursor(queryset: QuerySet[Generation], cursor: str) -> QuerySet[Generation]:
    """Keyset pagination (newest first); raises ValueError for a cursor we did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_raw, _, pk = raw.partition("|")
        created_at = datetime.fromisoformat(created_raw)
        pk_value = uuid.UUID(pk)
        # Only cursors we could have made: aware, and well inside what every database stores.
        if created_at.tzinfo is None or not 2000 <= created_at.astimezone(UTC).year <= 9000:
            raise ValueError
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise ValueError("The cursor is not valid; use the `next` URL as given.") from None
    return queryset.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk_value))


def video_url(request: HttpRequest | None, generation: Generation, *, public: bool = False) -> str | None:
    """The signed link to the stored MP4. `public` for one shown to others (a shared page,
    Explore): it names the share slug, and dies when the video stops being shared."""
    if generation.status != Generation.Status.SUCCEEDED or not generation.video:
        return None
    if public and not (generation.shared and generation.share_slug):
        return None
    from generations.services import video_token

    share_slug = generation.share_slug if public else None
    path = reverse("video_file", args=[video_token(generation.pk, share_slug=share_slug)])
    if request is not None:
        return request.build_absolute_uri(path)
    from django.conf import settings

    return settings.SITE_URL + path


# --- The web portal: gallery, explore, public pages ------------------------------------------

GALLERY_SEARCH_MAX = 200
ESTIMATE_SAMPLE = 20


def gallery_generations(
    *,
    user: User,
    status: str | None = None,
    mode: str | None = None,
    aspect_ratio: str | None = None,
    q: str | None = None,
) -> QuerySet[Generation]:
    """The user's generations, newest first, narrowed by filters the caller has already checked."""
    queryset = generations_for_user(user=user, status=status).defer("error_detail", "result_url")
    if mode:
        queryset = queryset.filter(mode=mode)
    if aspect_ratio:
        queryset = queryset.filter(aspect_ratio=aspect_ratio)
    if q:
        queryset = queryset.filter(prompt__icontains=q[:GALLERY_SEARCH_MAX])
    return queryset


def _public_generations() -> QuerySet[Generation]:
    """Shared, finished videos (listed or not). Only the owner's username is loaded, so a template
    cannot leak anything else about them."""
    return (
        Generation.objects.visible()
        .filter(shared=True, status=Generation.Status.SUCCEEDED)
        .select_related("user")
        .only(
            "id",
            "prompt",
            "mode",
            "duration",
            "aspect_ratio",
            "status",
            "video",
            "poster",
            "shared",
            "listed",
            "share_slug",
            "created_at",
            "finished_at",
            "user",
            "user__username",
        )
        .order_by("-finished_at", "-id")
    )


def explore_generations(*, q: str | None = None) -> QuerySet[Generation]:
    """Everyone's videos listed on Explore, newest first."""
    queryset = _public_generations().filter(listed=True)
    if q:
        queryset = queryset.filter(prompt__icontains=q[:GALLERY_SEARCH_MAX])
    return queryset


def shared_generation(*, slug: str) -> Generation:
    """A video its owner shares (listed or only by link), or 404: unsharing hides it at once."""
    generation = _public_generations().filter(share_slug=slug).first()
    if generation is None:
        raise Http404("No such shared video.")
    return generation


def generation_visible_to(*, user: User | AnonymousUser, generation_id: object) -> Generation:
    """For posters: the owner sees their own; anybody sees a shared, finished one; an operator who
    may view generations sees any (the admin's preview); else 404."""
    visible = Q(shared=True, status=Generation.Status.SUCCEEDED)
    if user.is_authenticated:
        visible = Q() if user.has_perm("generations.view_generation") else visible | Q(user=user)
    try:
        return Generation.objects.visible().filter(visible).get(pk=generation_id)
    except (Generation.DoesNotExist, ValidationError, ValueError, TypeError):
        raise Http404("No such generation.") from None


def generation_estimate_seconds(*, mode: str, duration: int) -> int | None:
    """How long a video like this usually takes, from the last few that succeeded (any user's).

    The median, not the mean: one stuck job should not make every estimate look hopeless."""
    rows = list(
        Generation.objects.filter(
            status=Generation.Status.SUCCEEDED, mode=mode, duration=duration, finished_at__isnull=False
        )
        .order_by("-finished_at")
        .values_list("created_at", "finished_at")[:ESTIMATE_SAMPLE]
    )
    if not rows:
        return None
    seconds = sorted((finished - created).total_seconds() for created, finished in rows)
    middle = len(seconds) // 2
    median = seconds[middle] if len(seconds) % 2 else (seconds[middle - 1] + seconds[middle]) / 2
    return max(1, round(median))


RECENT_DELIVERIES = 10


def recent_webhook_deliveries(*, user: User) -> list[WebhookDelivery]:
    """The user's newest webhook deliveries, for the account page."""
    return list(
        WebhookDelivery.objects.filter(user=user)
        .select_related("generation")
        .only(
            "id",
            "event",
            "webhook_id",
            "url",
            "state",
            "attempt_count",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
            "generation__id",
            "generation__prompt",
            "generation__deleted_at",
        )
        .order_by("-created_at", "-id")[:RECENT_DELIVERIES]
    )
