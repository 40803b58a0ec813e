"""What operators do by hand from the admin. Each goes through the same services as the
workers do, so the usual claims and the ledger's idempotency keep it safe, and each leaves
an `OperatorAction` naming who did it."""

from django.db import transaction

from accounts.billing.ledger import credits_grant
from accounts.models import CreditEntry, User
from generations.models import Generation, OperatorAction
from generations.services import enqueue, generation_fail

Status = Generation.Status


def _record(
    *, operator: str, action: str, generation: Generation | None = None, user=None, note: str
) -> None:
    OperatorAction.objects.create(
        operator=operator, action=action, generation=generation, user=user, note=note
    )


def generation_poll_now(*, generation: Generation, operator: str) -> bool:
    if generation.status != Status.RUNNING:
        return False
    enqueue("generations.jobs.poll", str(generation.pk))
    _record(operator=operator, action="poll_now", generation=generation, note="poll queued")
    return True


def generation_retry_submit(*, generation: Generation, operator: str) -> bool:
    """Queue the create call again. Only for a generation that has no upstream job: one stuck
    mid-submit is put back to queued first (the operator accepts that its first create call may
    have reached upstream: that is why this is a manual action)."""
    with transaction.atomic():
        released = Generation.objects.filter(
            pk=generation.pk, status__in=(Status.QUEUED, Status.SUBMITTING), upstream_job_id=""
        ).update(status=Status.QUEUED)
        if not released:
            return False
        _record(
            operator=operator, action="retry_submit", generation=generation, note=f"was {generation.status}"
        )
        transaction.on_commit(lambda: enqueue("generations.jobs.submit", str(generation.pk)))
    return True


def generation_fail_and_refund(*, generation: Generation, operator: str, reason: str = "") -> bool:
    with transaction.atomic():
        failed = generation_fail(
            generation_id=generation.pk,
            error="An operator stopped this video. Your credits have been returned.",
            detail=f"failed by {operator}: {reason}".strip(": "),
            failure_class="operator",
        )
        if failed:
            _record(operator=operator, action="fail_and_refund", generation=generation, note=reason)
    return failed


def user_grant_credits(
    *, user: User, amount_cents: int, reason: str, operator: str, idempotency_key: str | None = None
) -> CreditEntry:
    """Grant (or take back) credits by hand. The same key twice grants once and records once."""
    with transaction.atomic():
        entry = credits_grant(
            user=user,
            amount_cents=amount_cents,
            reason=reason,
            created_by=operator,
            idempotency_key=idempotency_key,
        )
        if not entry.replayed:
            _record(operator=operator, action="grant_credits", user=user, note=f"{amount_cents:+d}: {reason}")
    return entry
