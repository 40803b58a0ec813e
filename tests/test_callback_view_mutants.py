"""generations.webhooks.shortapi_callback, held to exactly what it does: who may call it and how (the
decorators, applied by assignment so that mutmut mutates the view's body) and what it answers. Each
test kills mutants `tests/mutants.py generations.webhooks` let through, or pins what the decorators
promise (tests/MUTATION.md). The rest of the callback is in tests/test_callback_guard.py."""

import django_rq
import pytest
from django.test import Client

from generations.models import Generation
from generations.services import (
    callback_token,
    generation_claim_submit,
    generation_create,
    generation_mark_running,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def configured(settings) -> None:
    settings.SHORTAPI_KEY = "configured"


@pytest.fixture
def running(alice) -> Generation:
    generation, _ = generation_create(
        user=alice, prompt="a heron", mode="std", duration=5, aspect_ratio="16:9"
    )
    assert generation_claim_submit(generation_id=generation.pk)
    assert generation_mark_running(generation_id=generation.pk, job_id="job-1", first_poll_in=60)
    return generation


def queued_jobs() -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in django_rq.get_queue("default").jobs]


def test_the_callback_needs_no_csrf_token(running, django_capture_on_commit_callbacks):
    client = Client(enforce_csrf_checks=True)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/webhooks/shortapi/{callback_token(running.pk)}/", {})

    assert response.status_code == 200
    assert queued_jobs() == [("generations.jobs.poll", (str(running.pk),))]


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_the_callback_answers_only_a_post(running, method):
    response = getattr(Client(), method)(f"/webhooks/shortapi/{callback_token(running.pk)}/")

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert queued_jobs() == []


def test_a_forged_callback_token_says_unknown_callback(db):
    response = Client().post("/webhooks/shortapi/forged/", {})

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Unknown callback."}}
