"""The ShortAPI client sorts every failure of a create call, over real HTTP to the simulator: it is
retried only when the request provably did nothing upstream, and is otherwise an unknown outcome
(never sent again: a second create would make, and pay for, a second job)."""

import socket

import pytest

from generations import shortapi
from tests.factories import SIM_KEY


@pytest.fixture
def upstream(simulator, settings):
    simulator.reset()
    settings.SHORTAPI_BASE_URL = simulator.url
    settings.SHORTAPI_KEY = SIM_KEY
    settings.SHORTAPI_READ_TIMEOUT = 1.5
    return simulator


def create(prompt: str) -> shortapi.CreatedJob:
    return shortapi.create_job(prompt=prompt, mode="fast", duration=4, aspect_ratio="16:9", callback_url=None)


@pytest.mark.parametrize(
    ("marker", "outcome", "jobs_made"),
    [
        pytest.param("[sim:create-reset]", shortapi.UnknownOutcome, 1, id="reset-after-sending"),
        pytest.param("[sim:create-timeout]", shortapi.UnknownOutcome, 1, id="read-timeout"),
        pytest.param("[sim:create-504]", shortapi.UnknownOutcome, 1, id="504"),
        pytest.param("[sim:create-malformed]", shortapi.UnknownOutcome, 1, id="2xx-not-json"),
        pytest.param("[sim:create-500x1]", shortapi.UnknownOutcome, 0, id="500-conservatively"),
        pytest.param("[sim:create-502x1]", shortapi.RetryLater, 0, id="502"),
        pytest.param("[sim:create-503x1]", shortapi.RetryLater, 0, id="503"),
        pytest.param("[sim:create-429x1]", shortapi.RetryLater, 0, id="429"),
        pytest.param("[sim:create-error]", shortapi.GiveUp, 0, id="refused"),
    ],
)
def test_each_create_failure_is_sorted(upstream, marker, outcome, jobs_made):
    with pytest.raises(outcome) as raised:
        create(f"{marker} a gull")

    assert type(raised.value) is outcome
    assert upstream.stats()["jobs"] == jobs_made


def test_a_refused_connection_is_retried(settings):
    with socket.socket() as closed:  # bound, never listening: the port refuses connections
        closed.bind(("127.0.0.1", 0))
        settings.SHORTAPI_BASE_URL = f"http://127.0.0.1:{closed.getsockname()[1]}"
        settings.SHORTAPI_KEY = SIM_KEY
        with pytest.raises(shortapi.RetryLater, match="could not connect"):
            create("nobody home")


def test_an_unresolvable_host_is_retried(settings):
    settings.SHORTAPI_BASE_URL = "http://shortapi.invalid"
    settings.SHORTAPI_KEY = SIM_KEY
    with pytest.raises(shortapi.RetryLater, match="could not connect"):
        create("no such host")


def test_a_query_that_fails_in_any_way_is_retried(upstream):
    job = create("[sim:query-500x1][sim:query-timeout-x1] a gull")
    for _ in range(2):
        with pytest.raises(shortapi.RetryLater):
            shortapi.query_job(job.job_id)
    assert shortapi.query_job(job.job_id).status in (0, 1, 2)
