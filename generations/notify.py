"""Telling a generation's owner that it ended: a webhook to their server (if the generation names
one) and an email (if they asked for them). Called once, from the one place a generation's status
ends (generations.services: generation_succeed and generation_fail, the latter behind every
failure: upstream, deadline, sweeper, operator, cancel), inside the transaction that ended it:
the rows commit with the new status or not at all, and the jobs start once they have."""

from django.conf import settings
from django.urls import reverse

from accounts.models import AccountSettings, EmailNotice
from accounts.notices import notice_queue, usd
from generations.models import Generation
from generations.user_webhooks import webhook_delivery_create

CANCELLED_CLASS = "cancelled"


def generation_ended(*, generation_id: object) -> None:
    generation = Generation.objects.select_related("user").get(pk=generation_id)
    webhook_delivery_create(generation=generation)
    wants_email = (
        AccountSettings.objects.filter(user_id=generation.user_id)
        .values_list("email_on_finish", flat=True)
        .first()
    )
    # A cancel is the owner's own doing: their script or their click already knows.
    if wants_email and generation.failure_class != CANCELLED_CLASS:
        _email(generation)


def _email(generation: Generation) -> None:
    succeeded = generation.status == Generation.Status.SUCCEEDED
    prompt = generation.prompt if len(generation.prompt) <= 60 else generation.prompt[:59] + "…"
    subject = f"Your video is ready: {prompt}" if succeeded else f"Your video could not be made: {prompt}"
    notice_queue(
        user=generation.user,
        kind=EmailNotice.Kind.GENERATION_SUCCEEDED if succeeded else EmailNotice.Kind.GENERATION_FAILED,
        key=f"generation:{generation.pk}:finished",
        subject=subject,
        template="emails/generation_finished",
        context={
            "generation": generation,
            "succeeded": succeeded,
            "cost": usd(generation.cost_cents),
            "video_page_url": settings.SITE_URL + reverse("generation_detail", args=[generation.pk]),
            "account_url": settings.SITE_URL + reverse("account"),
        },
    )
