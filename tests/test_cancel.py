"""Cancelling a generation still queued (CONTRACT §4): it fails with "Cancelled by you" and every
credit comes back, exactly once; once upstream has it (or it has ended) the answer is 409
`already_started`. The submit job claims queued → submitting, the cancel claims from queued only:
they race safely (real threads, the simulator over real HTTP)."""

import threading

import django_rq
import pytest
from django.db import connections
from django.test import Client

from accounts.billing.audit import audit_mismatches
from accounts.models import CreditEntry
from generations import jobs
from generations.models import Generation
from generations.services import generation_claim_submit
from tests.factories import api_for, balance, make_user, run_jobs

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def many_at_once(settings):
    settings.MAX_ACTIVE_GENERATIONS_PER_USER = 100


def ledger(generation_id) -> list[tuple[str, int]]:
    return list(
        CreditEntry.objects.filter(reference=f"generation:{generation_id}")
        .order_by("id")
        .values_list("kind", "amount_cents")
    )


def test_a_queued_generation_is_cancelled_with_every_credit_back_once(pipeline):
    alice = make_user("alice", 10_000)
    api = api_for(alice)
    created = api.post("/api/v1/generations", {"prompt": "A red fox in fresh snow"}).json()

    response = api.post(f"/api/v1/generations/{created['id']}/cancel")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["status"], body["error"]) == (created["id"], "failed", "Cancelled by you")
    assert body["finished_at"] is not None
    assert ledger(created["id"]) == [("charge", -120), ("refund", 120)]
    alice.refresh_from_db()
    assert balance(alice) == 10_000

    again = api.post(f"/api/v1/generations/{created['id']}/cancel")
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "already_started" and "already finished" in error["message"]
    # The submit job queued for it finds nothing to do: nothing reaches upstream.
    run_jobs()
    assert pipeline.stats()["create_calls"] == 0
    assert ledger(created["id"]) == [("charge", -120), ("refund", 120)]
    assert audit_mismatches() == []


def test_cancel_is_409_once_upstream_has_it_and_404_for_others(pipeline):
    alice = make_user("alice", 10_000)
    api = api_for(alice)
    created = api.post("/api/v1/generations", {"prompt": "A red fox in fresh snow"}).json()
    assert generation_claim_submit(generation_id=created["id"])  # a worker is calling create now
    response = api.post(f"/api/v1/generations/{created['id']}/cancel")
    assert response.status_code == 409
    assert "already started" in response.json()["error"]["message"]
    assert Generation.objects.get(pk=created["id"]).status == "submitting"
    assert ledger(created["id"]) == [("charge", -120)]

    bob = api_for(make_user("bob", 10_000))
    for unknown in (created["id"], "00000000-0000-4000-8000-000000000000", "not-a-uuid"):
        response = bob.post(f"/api/v1/generations/{unknown}/cancel")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def cancel_racing_submit(api, generation_id: str, *, submit_after: float) -> int:
    """Start the cancel (over the API) and the submit job (as a worker runs it) together, the job
    `submit_after` seconds later (the API request takes longer to reach its claim than the job
    does, so without a head start the cancel always loses); the cancel's status code."""
    barrier = threading.Barrier(2)
    answers: dict[str, int] = {}

    def cancel() -> None:
        try:
            barrier.wait()
            answers["cancel"] = api.post(f"/api/v1/generations/{generation_id}/cancel").status_code
        finally:
            connections.close_all()

    def submit() -> None:
        try:
            barrier.wait()
            threading.Event().wait(submit_after)
            jobs.submit(generation_id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=cancel), threading.Thread(target=submit)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers["cancel"]


def test_cancel_racing_the_submit_job_ends_one_way_and_refunds_at_most_once(pipeline):
    """Eight rounds of a cancel and the submit job started together, the job given a head start
    of 0 to 70 ms. Each round ends one of two ways: cancelled (refunded once, nothing created
    upstream) or started (no refund, one upstream job, the cancel told it was too late)."""
    alice = make_user("alice", 10_000)
    token_api = api_for(alice)
    outcomes = []

    def one_round(take: str, race) -> None:
        created = token_api.post("/api/v1/generations", {"prompt": f"A fox, take {take}"}).json()
        django_rq.get_queue("default").empty()  # this test runs the submit job itself
        calls_before = pipeline.stats()["create_calls"]
        cancel_status = race(created["id"])
        generation = Generation.objects.get(pk=created["id"])
        created_upstream = pipeline.stats()["create_calls"] - calls_before
        if cancel_status == 200:
            assert (generation.status, generation.error) == ("failed", "Cancelled by you")
            assert created_upstream == 0 and generation.upstream_job_id == ""
            assert ledger(generation.pk) == [("charge", -120), ("refund", 120)]
            outcomes.append("cancelled")
        else:
            assert cancel_status == 409
            assert generation.status == "running" and generation.upstream_job_id
            assert created_upstream == 1
            assert ledger(generation.pk) == [("charge", -120)]
            outcomes.append("started")

    # Which side wins a round depends on the machine's load: each outcome is checked whenever
    # it happens, and each is also forced once, so both are checked in every run.
    for round_ in range(8):
        head_start = round_ * 0.01
        one_round(str(round_), lambda pk, h=head_start: cancel_racing_submit(token_api, pk, submit_after=h))

    def cancel_first(pk: str) -> int:
        answer = token_api.post(f"/api/v1/generations/{pk}/cancel").status_code
        jobs.submit(pk)
        return answer

    def submit_first(pk: str) -> int:
        jobs.submit(pk)
        return token_api.post(f"/api/v1/generations/{pk}/cancel").status_code

    one_round("cancel first", cancel_first)
    one_round("submit first", submit_first)
    assert outcomes[-2:] == ["cancelled", "started"]
    assert CreditEntry.objects.filter(kind="refund").count() == outcomes.count("cancelled")
    run_jobs(lambda: not Generation.objects.filter(status__in=Generation.ACTIVE).exists())
    assert audit_mismatches() == []


def test_the_video_page_and_the_gallery_cancel_a_queued_video(settings):
    settings.SHORTAPI_KEY = "configured"
    settings.SHORTAPI_BASE_URL = "http://127.0.0.1:9"
    alice = make_user("alice", 10_000)
    api = api_for(alice)
    first = api.post("/api/v1/generations", {"prompt": "From the video page"}).json()
    second = api.post("/api/v1/generations", {"prompt": "From the gallery"}).json()
    client = Client()
    client.force_login(alice)

    page = client.get(f"/generations/{first['id']}/").content.decode()
    assert f'action="/generations/{first["id"]}/cancel/"' in page and "Cancel and get $1.20 back" in page
    response = client.post(f"/generations/{first['id']}/cancel/", follow=True)
    assert response.redirect_chain[-1][0] == f"/generations/{first['id']}/"
    html = response.content.decode()
    assert "Cancelled. The $1.20 held for it is back." in html and "/cancel/" not in html

    gallery = client.get("/gallery/").content.decode()
    assert f'action="/generations/{second["id"]}/cancel/"' in gallery
    assert f'action="/generations/{first["id"]}/cancel/"' not in gallery  # finished: no button
    response = client.post(f"/generations/{second['id']}/cancel/", {"next": "/gallery/"})
    assert response.status_code == 302 and response["Location"] == "/gallery/"
    # `next` never leads off the site.
    third = api.post("/api/v1/generations", {"prompt": "Elsewhere"}).json()
    response = client.post(f"/generations/{third['id']}/cancel/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/generations/{third['id']}/"

    assert [g.error for g in Generation.objects.order_by("created_at")] == ["Cancelled by you"] * 3
    other = Client()
    other.force_login(make_user("bob"))
    assert other.post(f"/generations/{first['id']}/cancel/").status_code == 404
    assert audit_mismatches() == []
