"""The ShortAPI callback (generations.webhooks) is a hint, never the truth: anyone who has seen its URL
can post any body to it. It only ever queues a poll of a running generation, or a check of a job id
for one whose create answer was lost (jobs.adopt_job), and reads nothing else from the body.
Asserted on what lands in the real queue. See tests/MUTATION.md."""

import json

import django_rq
import pytest

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
def queued(alice) -> Generation:
    generation, _ = generation_create(
        user=alice, prompt="a heron", mode="std", duration=5, aspect_ratio="16:9"
    )
    return generation


@pytest.fixture
def running(queued) -> Generation:
    assert generation_claim_submit(generation_id=queued.pk)
    assert generation_mark_running(generation_id=queued.pk, job_id="job-1", first_poll_in=60)
    return queued


def queued_jobs() -> list[tuple[str, tuple]]:
    return [(job.func_name, job.args) for job in django_rq.get_queue("default").jobs]


@pytest.fixture
def client(client, django_capture_on_commit_callbacks):
    """The test client, with what a request queues on commit (django-rq's COMMIT_MODE) queued."""

    class Committing:
        def __getattr__(self, name):
            method = getattr(client, name)

            def committed(*args, **kwargs):
                with django_capture_on_commit_callbacks(execute=True):
                    return method(*args, **kwargs)

            return committed

    return Committing()


def call(client, generation_or_token, body: object = None, raw: bytes | None = None):
    token = (
        generation_or_token
        if isinstance(generation_or_token, str)
        else callback_token(generation_or_token.pk)
    )
    data = raw if raw is not None else json.dumps(body if body is not None else {})
    return client.post(f"/webhooks/shortapi/{token}/", data=data, content_type="application/json")


def test_a_callback_for_a_running_generation_queues_one_poll(client, running):
    response = call(client, running, {"data": {"job_id": "someone-elses"}})
    assert response.status_code == 200 and response.json() == {"ok": True}
    assert queued_jobs() == [("generations.jobs.poll", (str(running.pk),))]


@pytest.mark.parametrize(
    ("body", "job_id"),
    [
        ({"data": {"job_id": "job-9"}}, "job-9"),
        ({"job_id": "job-9"}, "job-9"),
        ({"data": {"id": "job-9"}}, "job-9"),
        ({"id": 4711}, "4711"),
        ({"data": {"job_id": "j" * 128}}, "j" * 128),
        ({"data": {"job_id": "7"}}, "7"),  # one character is an id too
    ],
)
def test_a_callback_naming_a_job_for_a_generation_without_one_queues_a_check_of_it(
    client, queued, body, job_id
):
    assert call(client, queued, body).status_code == 200
    assert queued_jobs() == [("generations.jobs.adopt_job", (str(queued.pk), job_id))]
    assert Generation.objects.get(pk=queued.pk).upstream_job_id == ""  # only checked, never taken as said


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"job_id": True}},
        {"data": {"job_id": ""}},
        {"data": {"job_id": "j" * 129}},
        {"data": {"job_id": ["a"]}},
        {"data": {"job_id": None}},
        ["job-9"],
        "job-9",
        {},
    ],
)
def test_a_callback_without_a_usable_job_id_queues_nothing(client, queued, body):
    assert call(client, queued, body).status_code == 200
    assert queued_jobs() == []


def test_a_callback_body_that_is_not_json_queues_nothing(client, queued):
    assert call(client, queued, raw=b"\xff\xfe not json").status_code == 200
    assert call(client, queued, raw=b"{not json").status_code == 200
    assert queued_jobs() == []


def test_a_callback_body_over_64_kib_is_not_read(client, queued):
    body = json.dumps({"data": {"job_id": "job-9"}, "pad": "x" * 64 * 1024}).encode()
    assert call(client, queued, raw=body).status_code == 200
    assert queued_jobs() == []


def test_a_callback_for_a_finished_generation_queues_nothing(client, running):
    Generation.objects.filter(pk=running.pk).update(status=Generation.Status.SUCCEEDED)
    assert call(client, running, {"data": {"job_id": "job-9"}}).status_code == 200
    assert queued_jobs() == []


def test_a_callback_with_a_forged_token_is_not_found_and_queues_nothing(client, running):
    forged = callback_token(running.pk)[:-4] + "AAAA"
    response = call(client, forged, {"data": {"job_id": "job-9"}})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert queued_jobs() == []


def test_a_callback_for_a_generation_that_does_not_exist_is_not_found(client, db):
    response = call(client, "x", {})
    assert response.status_code == 404
    response = call(client, callback_token("00000000-0000-0000-0000-000000000000"), {})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert queued_jobs() == []


def test_a_callback_is_a_post(client, running):
    assert client.get(f"/webhooks/shortapi/{callback_token(running.pk)}/").status_code == 405
    assert queued_jobs() == []


def test_a_callback_body_of_exactly_64_kib_is_read(client, queued):
    body = json.dumps({"data": {"job_id": "job-9"}, "pad": ""}).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (64 * 1024 - len(body)) + b'"')
    assert len(body) == 64 * 1024
    assert call(client, queued, raw=body).status_code == 200
    assert queued_jobs() == [("generations.jobs.adopt_job", (str(queued.pk), "job-9"))]


def test_a_callback_naming_a_job_for_a_failed_generation_that_never_had_one_queues_nothing(client, queued):
    Generation.objects.filter(pk=queued.pk).update(status=Generation.Status.FAILED)
    assert call(client, queued, {"data": {"job_id": "job-9"}}).status_code == 200
    assert queued_jobs() == []


def test_a_callback_for_a_generation_gone_since_its_token_was_made_says_so(client, queued):
    token = callback_token(queued.pk)
    Generation.objects.filter(pk=queued.pk).delete()
    response = call(client, token, {"data": {"job_id": "job-9"}})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Unknown callback."}}
    assert queued_jobs() == []


@pytest.mark.parametrize("state", ["queued", "running"])
def test_a_callback_reads_its_generation_in_one_query(client, request, state):
    """A callback may come for every job at once: it reads the three columns it needs, once."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    generation = request.getfixturevalue(state)
    with CaptureQueriesContext(connection) as queries:
        assert call(client, generation, {"data": {"job_id": "job-9"}}).status_code == 200
    reads = [q["sql"] for q in queries if "generations_generation" in q["sql"]]
    assert len(reads) == 1, reads
    assert len(queued_jobs()) == 1
