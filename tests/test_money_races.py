"""Money racing everything else, with real threads on PostgreSQL: whatever commits in between, no
other write can move a balance, and every event is counted once.

SQLite runs one writer at a time, so these races cannot happen there; they are skipped on it.
"""

import threading

import pytest
from django.contrib.auth.forms import PasswordChangeForm
from django.db import connection, connections
from django.test import Client

from accounts.billing.audit import audit_mismatches
from accounts.billing.ledger import credits_charge, credits_grant, credits_refund
from accounts.models import CreditEntry, User
from accounts.services import api_token_create
from generations.models import Generation
from generations.services import generation_create, generation_fail
from tests.factories import ApiClient, balance, in_threads, make_user, owed, wait_for_a_lock_wait
from tests.fake_stripe import (
    deliver,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time: these races cannot happen there")


def test_a_password_change_racing_five_charges_keeps_every_charge(settings):
    settings.SHORTAPI_KEY = "configured"
    alice = make_user("alice", 1000)
    _, token = api_token_create(user=alice, name="script")
    # Django's password-change view loads the User, hashes for a while, then saves the whole row.
    stale = User.objects.get(pk=alice.pk)
    form = PasswordChangeForm(
        stale,
        {
            "old_password": "pw-alicealice",
            "new_password1": "brand-New-pass-9",
            "new_password2": "brand-New-pass-9",
        },
    )
    assert form.is_valid(), form.errors
    statuses: list[int] = []

    def submit() -> None:
        statuses.append(ApiClient(token).post("/api/v1/generations", {"prompt": "a heron"}).status_code)

    in_threads(*[submit] * 5)
    form.save()  # user.save(): every column of the row as it was loaded

    assert statuses == [201] * 5
    assert balance(alice) == 1000 - 5 * 120
    assert Client().login(username="alice", password="brand-New-pass-9")
    assert audit_mismatches() == []


def test_a_stripe_refund_racing_held_generations_failing_takes_the_credits_once(fake_stripe, settings):
    settings.SHORTAPI_KEY = "configured"
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 10
    carol = make_user("carol")
    from accounts.billing.topups import topup_create

    topup = topup_create(user=carol, amount_cents=1000)
    assert (
        deliver(
            fake_stripe.event("checkout.session.completed", fake_stripe.mark_paid(topup.stripe_session_id))
        ).status_code
        == 200
    )
    held = [
        generation_create(user=carol, prompt=f"clip {i}", mode="std", duration=5, aspect_ratio="16:9")[0]
        for i in range(8)
    ]
    assert (balance(carol), owed(carol)) == (1000 - 8 * 120, 0)  # 960 held by unfinished videos
    refund = fake_stripe.event("charge.refunded", fake_stripe.refund(topup.stripe_session_id, 1000))

    def fail(generation) -> None:
        assert generation_fail(generation_id=generation.pk, error="x", failure_class="upstream_failed")

    # The refund races four failures; the other four fail after it (their refunds pay the debt).
    in_threads(lambda: deliver(refund, client=Client()), *[lambda g=g: fail(g) for g in held[:4]])
    for generation in held[4:]:
        fail(generation)

    # In: 1,000 bought + 960 refunded. Out: 960 charged + 1,000 taken back. Nothing left, nothing owed.
    assert (balance(carol), owed(carol)) == (0, 0)
    (taken,) = CreditEntry.objects.filter(kind="take_back")
    assert taken.amount_cents == -1000
    assert CreditEntry.objects.filter(kind="refund").count() == 8
    assert audit_mismatches() == []


def test_the_audit_reads_one_snapshot_while_charges_commit():
    users = [make_user(name, 100_000) for name in ("alice", "bob", "carol", "dave")]
    done = threading.Event()
    reports: list[list[str]] = []

    def spend(user: User) -> None:
        for i in range(60):
            key = f"{user.username}-{i}"
            credits_charge(
                user_id=user.pk, amount_cents=7, description="x", idempotency_key=key, reference=""
            )
            if i % 3 == 0:
                credits_refund(
                    user_id=user.pk, amount_cents=7, description="x", idempotency_key=f"{key}-r", reference=""
                )
            if i % 5 == 0:
                credits_grant(user=user, amount_cents=11, reason="x")

    def audit() -> None:
        while not done.is_set():
            reports.append(audit_mismatches())

    auditor = threading.Thread(target=lambda: (audit(), connections.close_all()))
    auditor.start()
    try:
        in_threads(*[lambda u=u: spend(u) for u in users])
    finally:
        done.set()
        auditor.join(timeout=60)
    reports.append(audit_mismatches())

    assert len(reports) > 3
    assert [r for r in reports if r] == []


def test_an_admin_save_of_a_generation_cannot_undo_a_status_claim(admin_client, settings):
    settings.SHORTAPI_KEY = "configured"
    alice = make_user("alice", 1000)
    generation, _ = generation_create(
        user=alice, prompt="a kite", mode="std", duration=5, aspect_ratio="16:9"
    )
    Generation.objects.filter(pk=generation.pk).update(status="running", upstream_job_id="job-1")
    url = f"/admin/generations/generation/{generation.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    # What a browser sends back besides the one editable field: each inline's management form.
    inlines = {
        f"{formset.formset.prefix}-{name}": value
        for formset in page.context["inline_admin_formsets"]
        for name, value in formset.formset.management_form.initial.items()
    }
    locked, release = threading.Event(), threading.Event()

    def worker_fails_it() -> None:
        # A worker holds the row (as its claim's UPDATE does) while the operator's save comes in.
        from django.db import transaction

        with transaction.atomic():
            Generation.objects.select_for_update().filter(pk=generation.pk).get()
            locked.set()
            release.wait(timeout=30)
            generation_fail(
                generation_id=generation.pk, error="upstream said no", failure_class="upstream_failed"
            )

    def operator_saves() -> None:
        locked.wait(timeout=30)
        # The admin reads the row (status "running"), then its save waits for the worker's lock.
        response = admin_client.post(url, {"shared": "on", "_save": "Save", **inlines})
        assert response.status_code == 302, response.content[:2000]

    def release_once_the_save_waits() -> None:
        locked.wait(timeout=30)
        wait_for_a_lock_wait()
        release.set()

    in_threads(worker_fails_it, operator_saves, release_once_the_save_waits)

    generation.refresh_from_db()
    assert generation.status == "failed"
    assert generation.shared is True  # the operator's own change is kept
    assert balance(alice) == 1000
    assert audit_mismatches() == []
