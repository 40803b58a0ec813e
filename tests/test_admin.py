"""The operator's admin: actions through services with an audit trail, the overview, the queues."""

from decimal import Decimal

import django_rq
import pytest
from django.test import Client
from django.utils import timezone

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditEntry
from generations.models import Generation, OperatorAction
from generations.services import generation_create
from tests.factories import balance, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    user = make_user("olga", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def generation(alice, settings):
    settings.SHORTAPI_KEY = "configured"
    generation, _ = generation_create(
        user=alice, prompt="a kite", mode="std", duration=5, aspect_ratio="16:9"
    )
    return generation


@pytest.fixture
def act(django_capture_on_commit_callbacks):
    def act(client, action, *generations):
        # Jobs are enqueued on commit; this test's transaction never commits, so run them here.
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/admin/generations/generation/",
                {"action": action, "_selected_action": [str(g.pk) for g in generations]},
                follow=True,
            )

    return act


def test_fail_and_refund_settles_once_and_records_the_operator(operator, generation, alice, act):
    response = act(operator, "fail_and_refund", generation)
    assert "Failed and refunded: 1 of 1" in response.content.decode()
    generation.refresh_from_db()
    assert generation.status == "failed" and generation.failure_class == "operator"
    alice.refresh_from_db()
    assert balance(alice) == 10_000
    response = act(operator, "fail_and_refund", generation)
    assert "1 skipped" in response.content.decode()
    assert CreditEntry.objects.filter(kind="refund").count() == 1
    action = OperatorAction.objects.get()
    assert (action.operator, action.action, action.generation_id) == (
        "olga",
        "fail_and_refund",
        generation.pk,
    )
    assert audit_mismatches() == []


def test_poll_now_only_for_running_generations(operator, generation, act):
    queue = django_rq.get_queue("default")
    queue.empty()
    assert "0 of 1" in act(operator, "poll_now", generation).content.decode()
    Generation.objects.filter(pk=generation.pk).update(status="running", upstream_job_id="job-1")
    assert "Poll queued: 1 of 1" in act(operator, "poll_now", generation).content.decode()
    assert [job.func_name for job in queue.jobs] == ["generations.jobs.poll"]


def test_retry_submit_puts_a_stuck_submit_back_in_the_queue(operator, generation, act):
    queue = django_rq.get_queue("default")
    queue.empty()
    Generation.objects.filter(pk=generation.pk).update(status="submitting")
    assert "Submit queued again: 1 of 1" in act(operator, "retry_submit", generation).content.decode()
    generation.refresh_from_db()
    assert generation.status == "queued"
    assert [job.func_name for job in queue.jobs] == ["generations.jobs.submit"]
    Generation.objects.filter(pk=generation.pk).update(status="running", upstream_job_id="job-1")
    assert "0 of 1" in act(operator, "retry_submit", generation).content.decode()


def test_the_generation_admin_searches_by_job_id_and_filters(operator, generation):
    Generation.objects.filter(pk=generation.pk).update(upstream_job_id="sim_abc123")
    response = operator.get("/admin/generations/generation/?q=sim_abc123")
    assert str(generation.pk) in response.content.decode()
    assert operator.get("/admin/generations/generation/?status__exact=failed").status_code == 200
    assert operator.get(f"/admin/generations/generation/{generation.pk}/change/").status_code == 200


def test_the_ledger_is_read_only_in_the_admin(operator, alice):
    entry = CreditEntry.objects.filter(user=alice).first()
    assert operator.get("/admin/accounts/creditentry/add/").status_code == 403
    response = operator.post(f"/admin/accounts/creditentry/{entry.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert CreditEntry.objects.filter(pk=entry.pk).exists()


def test_the_overview_shows_todays_figures(operator, generation):
    Generation.objects.filter(pk=generation.pk).update(
        status="succeeded", upstream_amount="0.9000", finished_at=timezone.now()
    )
    response = operator.get("/admin/overview/")
    assert response.status_code == 200
    overview = response.context["o"]
    assert overview.by_status["succeeded"] == 1
    assert overview.revenue_cents == 120
    assert overview.upstream_spend_usd == Decimal("0.9")
    assert overview.margin_usd == Decimal("0.3")
    assert overview.duration_p50 is not None


def test_staff_pages_are_for_staff_only(alice):
    client = Client()
    assert client.get("/admin/overview/").status_code == 302
    assert client.get("/admin/django-rq/").status_code == 302
    client.force_login(alice)
    assert client.get("/admin/overview/").status_code == 302
    assert client.get("/admin/django-rq/").status_code == 302


def rq_paths() -> list[str]:
    """Every URL of django-rq's dashboard, as django_rq.urls lists them, with sample arguments."""
    import django_rq.urls
    from django.urls import URLPattern, reverse

    samples = {
        "queue_index": 0,
        "connection_index": 0,
        "scheduler_index": 0,
        "job_id": "x",
        "result_id": "x",
        "key": "x",
        "scheduler_name": "x",
        "cron_job_name": "a/b",
        "token": "x",
    }
    paths = set()
    for pattern in django_rq.urls.urlpatterns:
        assert isinstance(pattern, URLPattern)
        names = getattr(pattern.pattern, "converters", None) or pattern.pattern.regex.groupindex
        paths.add(reverse(f"django_rq:{pattern.name}", kwargs={n: samples[n] for n in names}))
    return sorted(paths)


@pytest.fixture
def bare_staff():
    """Staff, with no permission at all: what a support agent or a contractor might be given."""
    user = make_user("stan", is_staff=True)
    client = Client()
    client.force_login(user)
    return user, client


def test_permissionless_staff_get_403_on_the_overview(bare_staff):
    _, client = bare_staff
    assert client.get("/admin/overview/").status_code == 403
    assert client.get("/admin/overview/?day=2026-11-01").status_code == 403
    html = client.get("/admin/").content.decode()
    assert "/admin/overview/" not in html and "/admin/django-rq/" not in html


def test_permissionless_staff_get_403_on_every_queue_page_and_action(bare_staff):
    _, client = bare_staff
    queue = django_rq.get_queue("default", commit_mode="auto")  # now, not at a commit that never comes
    queue.enqueue("generations.jobs.sweep")
    paths = rq_paths()
    assert len(paths) >= 20 and "/admin/django-rq/queues/0/empty/" in paths
    for path in paths:
        assert client.get(path).status_code == 403, path
        assert client.post(path, {"job_ids": ["x"], "action": "delete"}).status_code == 403, path
    assert queue.count == 1  # nothing was emptied, deleted or requeued
    # django-rq's own admin entry (a second mount of the same views) is not there at all.
    assert client.get("/admin/django_rq/dashboard/").status_code == 404
    assert client.post("/admin/django_rq/dashboard/queues/0/empty/").status_code == 404


def test_the_named_permissions_open_the_operator_pages(bare_staff):
    from django.contrib.auth.models import Permission

    user, client = bare_staff
    user.user_permissions.add(Permission.objects.get(codename="view_overview"))
    assert client.get("/admin/overview/").status_code == 200
    assert client.get("/admin/django-rq/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="manage_queues"))
    client.force_login(user)  # a fresh user object, without the cached permissions
    assert client.get("/admin/django-rq/").status_code == 200
    assert client.get("/admin/django-rq/queues/0/").status_code == 200


def test_superusers_reach_the_queue_pages(operator):
    # Left out: pages naming a job or a worker (django-rq answers an unknown one with a 500) and
    # rq-scheduler's page (not installed: RQ's own scheduler is used).
    pages = [p for p in rq_paths() if "/x" not in p and "/a/b" not in p and "/schedulers/" not in p]
    assert len(pages) >= 10
    for path in pages:
        assert operator.get(path).status_code in (200, 302), path


def grant_form_key(operator, selected) -> str:
    """Open the grant form as an operator would, and read the key it was made with."""
    form = operator.post("/admin/accounts/user/", selected)
    assert form.status_code == 200 and b"Grant or take back credits" in form.content
    return str(form.context["form"]["idempotency_key"].value())


def test_grant_credits_from_the_admin_goes_through_the_ledger(operator, alice, bob):
    url = "/admin/accounts/user/"
    selected = {"action": "grant_credits", "_selected_action": [alice.pk, bob.pk]}
    key = grant_form_key(operator, selected)
    bad = operator.post(
        url, {**selected, "apply": "1", "amount_cents": "0", "reason": "x", "idempotency_key": key}
    )
    assert b"other than zero" in bad.content
    response = operator.post(
        url,
        {**selected, "apply": "1", "amount_cents": "-10500", "reason": "oops", "idempotency_key": key},
        follow=True,
    )
    assert "Not changed (balance too low): alice, bob" in response.content.decode()
    key = grant_form_key(operator, selected)
    operator.post(
        url,
        {
            **selected,
            "apply": "1",
            "amount_cents": "250",
            "reason": "sorry for the wait",
            "idempotency_key": key,
        },
    )
    assert balance(alice) == 10_250
    entry = CreditEntry.objects.filter(user=alice).first()
    assert (entry.kind, entry.description, entry.created_by) == ("grant", "sorry for the wait", "olga")
    assert OperatorAction.objects.filter(action="grant_credits", operator="olga").count() == 2
    assert audit_mismatches() == []


def test_a_double_submitted_grant_form_grants_once(operator, alice, bob):
    url = "/admin/accounts/user/"
    selected = {"action": "grant_credits", "_selected_action": [alice.pk, bob.pk]}
    key = grant_form_key(operator, selected)
    apply = {**selected, "apply": "1", "amount_cents": "300", "reason": "goodwill", "idempotency_key": key}

    operator.post(url, apply)
    again = operator.post(url, apply, follow=True)  # a double click, or the browser re-sending the POST

    assert "Already applied for 2 user(s)" in again.content.decode()
    assert (balance(alice), balance(bob)) == (10_300, 10_300)
    assert CreditEntry.objects.filter(description="goodwill").count() == 2
    assert OperatorAction.objects.filter(action="grant_credits").count() == 2
    assert audit_mismatches() == []


def test_a_grant_form_without_its_key_changes_nothing(operator, alice):
    url = "/admin/accounts/user/"
    selected = {"action": "grant_credits", "_selected_action": [alice.pk]}

    response = operator.post(url, {**selected, "apply": "1", "amount_cents": "300", "reason": "x"})

    assert b"This form is out of date" in response.content
    assert balance(alice) == 10_000


def test_the_user_page_shows_the_newest_fifty_entries_and_still_saves(operator, alice):
    from accounts.billing.ledger import credits_grant

    for i in range(60):
        credits_grant(user=alice, amount_cents=1, reason=f"tiny {i}")
    page = operator.get(f"/admin/accounts/user/{alice.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "tiny 59" in html and "tiny 5<" not in html and "newest 50" in html
    form = page.context["adminform"].form
    data = {
        k: v
        for k, v in form.initial.items()
        if v is not None and k not in ("password", "groups", "user_permissions")
    }
    data.update(
        {
            "username": "alice",
            "email": "alice@new.example.com",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        }
    )
    formset = page.context["inline_admin_formsets"][0].formset
    for name, value in formset.management_form.initial.items():
        data[f"credit_entries-{name}"] = value
    for index, entry_form in enumerate(formset.forms):  # the hidden inputs a browser sends back
        data[f"credit_entries-{index}-id"] = entry_form.instance.pk
        data[f"credit_entries-{index}-user"] = alice.pk
    response = operator.post(f"/admin/accounts/user/{alice.pk}/change/", data)
    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [f.errors for f in response.context["inline_admin_formsets"][0].formset.forms][:3],
        response.context["inline_admin_formsets"][0].formset.non_form_errors(),
    )
    alice.refresh_from_db()
    assert alice.email == "alice@new.example.com" and balance(alice) == 10_060
