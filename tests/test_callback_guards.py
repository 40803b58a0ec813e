"""The upstream's callback to us (`POST /webhooks/shortapi/<token>/`) is a hint, never the truth:
an unknown or expired token, a generation that is gone, or a body that names no usable job id
queues nothing; only a live generation's callback queues the one step it calls for."""

from datetime import timedelta
from urllib.parse import urlsplit

import django_rq
import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from generations.models import Generation
from generations.services import callback_url
from tests.factories import generation_row

Status = Generation.Status


def queued() -> list[tuple[str, tuple]]:
    queue = django_rq.get_queue("default")
    return [(job.func_name, tuple(job.args)) for job in queue.jobs]


def call_back(generation_id: object, body: bytes | str = b"{}", *, capture) -> object:
    with capture(execute=True):
        return Client().post(
            urlsplit(callback_url(generation_id)).path, data=body, content_type="application/json"
        )


def test_a_callback_with_a_forged_token_is_404_and_queues_nothing(alice, django_capture_on_commit_callbacks):
    generation = generation_row(alice, status=Status.RUNNING, upstream_job_id="job-1")
    path = urlsplit(callback_url(generation.pk)).path
    forged = path.replace("/webhooks/shortapi/", "/webhooks/shortapi/x")
    response = Client().post(forged, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert queued() == []


def test_a_callback_token_expires_some_hours_after_the_deadline(
    alice, settings, django_capture_on_commit_callbacks
):
    generation = generation_row(alice, status=Status.RUNNING, upstream_job_id="job-1")
    url = urlsplit(callback_url(generation.pk)).path
    later = timezone.now() + timedelta(seconds=settings.GENERATION_DEADLINE_SECONDS, hours=6, minutes=1)
    with time_machine.travel(later):
        response = Client().post(url, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert queued() == []


def test_a_callback_for_a_generation_that_is_gone_is_404(alice, django_capture_on_commit_callbacks):
    generation = generation_row(alice, status=Status.RUNNING, upstream_job_id="job-1")
    generation_id = generation.pk
    generation.delete()
    response = call_back(generation_id, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 404
    assert queued() == []


def test_a_callback_for_a_running_generation_queues_a_poll(alice, django_capture_on_commit_callbacks):
    generation = generation_row(alice, status=Status.RUNNING, upstream_job_id="job-1")
    response = call_back(generation.pk, b'{"job_id": "job-1"}', capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert queued() == [("generations.jobs.poll", (str(generation.pk),))]


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.FETCHING])
def test_a_callback_for_a_generation_past_running_queues_nothing(
    alice, status, django_capture_on_commit_callbacks
):
    generation = generation_row(alice, status=status, upstream_job_id="job-1")
    response = call_back(generation.pk, b'{"job_id": "job-1"}', capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert queued() == []


@pytest.mark.parametrize(
    ("body", "job_id"),
    [
        (b'{"job_id": "job-9"}', "job-9"),
        (b'{"data": {"job_id": "job-9", "status": 2}}', "job-9"),
        (b'{"id": 12345}', "12345"),
    ],
)
def test_a_callback_naming_a_job_the_worker_never_saved_queues_its_adoption(
    alice, body, job_id, django_capture_on_commit_callbacks
):
    generation = generation_row(alice, status=Status.SUBMITTING, upstream_job_id="")
    response = call_back(generation.pk, body, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert queued() == [("generations.jobs.adopt_job", (str(generation.pk), job_id))]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b'["job-9"]',
        b'{"job_id": true}',
        b'{"job_id": ""}',
        b'{"job_id": ["job-9"]}',
        ('{"job_id": "' + "j" * 129 + '"}').encode(),
        b'{"job_id": "job-9", "pad": "' + b"x" * (64 * 1024) + b'"}',
    ],
    ids=["not-json", "not-utf8", "a-list", "a-bool", "empty", "a-list-id", "too-long-id", "too-big"],
)
def test_a_callback_body_without_a_usable_job_id_queues_nothing(
    alice, body, django_capture_on_commit_callbacks
):
    generation = generation_row(alice, status=Status.QUEUED, upstream_job_id="")
    response = call_back(generation.pk, body, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert queued() == []
    assert Generation.objects.get(pk=generation.pk).upstream_job_id == ""
