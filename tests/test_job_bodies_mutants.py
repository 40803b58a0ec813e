"""The four generation jobs' own bodies (generations.jobs submit, poll, fetch, make_poster), held to
exactly what they do, step by step. mutmut skipped them while they were decorated; each test here
kills mutants `tests/mutants.py generations.jobs` let through in them (tests/MUTATION.md). The jobs
are called directly; upstream is the bundled simulator over real HTTP, or a closed port."""

import logging

import pytest

from generations import jobs
from generations.models import Generation
from generations.services import generation_claim_submit, generation_create, generation_mark_running
from seedance_site.logs import ContextFilter

pytestmark = pytest.mark.django_db

Status = Generation.Status
CLOSED_PORT = "http://127.0.0.1:9"  # nothing listens: every call is RetryLater


@pytest.fixture(autouse=True)
def configured(settings) -> None:
    settings.SHORTAPI_KEY = "configured"


class Collected(logging.Handler):
    """The job's log records, with the context a log line is printed with."""

    def __init__(self) -> None:
        super().__init__()
        self.addFilter(ContextFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected():
    handler = Collected()
    logger = logging.getLogger("generations.jobs")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def create(user, prompt: str = "a heron") -> Generation:
    generation, _ = generation_create(user=user, prompt=prompt, mode="std", duration=5, aspect_ratio="16:9")
    return generation


def running(user) -> Generation:
    generation = create(user)
    assert generation_claim_submit(generation_id=generation.pk)
    assert generation_mark_running(generation_id=generation.pk, job_id="job-1", first_poll_in=60)
    return generation


# --- poll ------------------------------------------------------------------------------------------


def test_a_polls_log_lines_carry_the_generations_id(alice, settings, collected):
    settings.SHORTAPI_BASE_URL = CLOSED_PORT
    generation = running(alice)

    jobs.poll(str(generation.pk))

    [record] = collected.records
    assert record.getMessage().startswith(f"generation {generation.pk}: query failed, will poll again: ")
    assert record.context_fields == {"generation": str(generation.pk)}
