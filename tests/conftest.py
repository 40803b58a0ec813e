"""The suite's fixtures, built on tests.factories (the helpers' one home)."""

import contextlib
import os
from collections.abc import Iterator

import django_rq
import pytest
from django.core.cache import cache

from accounts.billing.audit import audit_mismatches
from accounts.models import User
from tests.factories import CHROMIUM, CHROMIUM_ARGS, ROOT, SIM_KEY, ApiClient, api_for, make_user, run_jobs

# The Stripe fixtures (`fake_stripe`, `stripe_server`), registered once for every module.
from tests.fake_stripe import fake_stripe_fixture, stripe_server_fixture  # noqa: F401


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI (`SEEDANCE_FORBID_SKIPS=1`, set by .ci/run) a skipped test fails the run: a suite that
    skipped its browser or PostgreSQL tests has not tested what it claims."""
    if not os.environ.get("SEEDANCE_FORBID_SKIPS") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        names = ", ".join(report.nodeid for report in skipped[:10])
        print(f"\nFAILED: {len(skipped)} tests skipped with SEEDANCE_FORBID_SKIPS set: {names}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def clean_redis() -> None:
    # Rate-limit counters and queued jobs from one test must not leak into the next. The
    # database is this run's own (seedance_site.test_redis), never another run's.
    django_rq.get_connection("default").flushdb()
    cache.clear()


@pytest.fixture
def alice(db) -> User:
    return make_user("alice", 10_000)


@pytest.fixture
def bob(db) -> User:
    return make_user("bob", 10_000)


@pytest.fixture
def carol(db) -> User:
    return make_user("carol", 0)


@pytest.fixture
def alice_api(alice: User) -> ApiClient:
    return api_for(alice)


@pytest.fixture
def bob_api(bob: User) -> ApiClient:
    return api_for(bob)


# --- The pipeline: the simulator over real HTTP, a real RQ worker on real Redis ---------------


@pytest.fixture(scope="session")
def simulator():
    from generations.simulator import Simulator

    sim = Simulator(
        api_key=SIM_KEY,
        job_seconds=0.4,
        cache_dir=ROOT / "var" / "simulator-test-cache",
        create_delay=3.0,
        query_delay=3.0,
        big_bytes=3 * 1024 * 1024,
    ).start()
    yield sim
    sim.stop()


@pytest.fixture
def pipeline(simulator, live_server, settings, tmp_path):
    """Settings that point the portal at the simulator, callbacks at the live server."""
    simulator.reset()
    settings.SHORTAPI_BASE_URL = simulator.url
    settings.SHORTAPI_KEY = SIM_KEY
    settings.SITE_URL = live_server.url
    settings.SHORTAPI_READ_TIMEOUT = 1.5
    settings.GENERATION_FIRST_POLL_SECONDS = 0.2
    settings.GENERATION_POLL_INITIAL_SECONDS = 0.2
    settings.GENERATION_POLL_MAX_SECONDS = 0.5
    settings.VIDEO_MAX_BYTES = 2 * 1024 * 1024
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return simulator


@pytest.fixture
def api(pipeline) -> ApiClient:
    """Alice's API client, for tests that run the pipeline (transactional: workers see her)."""
    return api_for(make_user("alice", 10_000))


@pytest.fixture
def books_balance(db):
    """After the test, each balance still equals the sum of its ledger."""
    yield
    assert audit_mismatches() == []


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop marked as running in this thread (it steps it
    # from a greenlet), and Django then refuses ORM calls here (the worker's, the assertions').
    # Nothing async ever runs alongside them, so the guard is safely lifted for these tests.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def deliver(django_capture_on_commit_callbacks):
    """Run a request's on-commit work and then the mail jobs it queued (a real RQ worker)."""

    @contextlib.contextmanager
    def delivering():
        with django_capture_on_commit_callbacks(execute=True):
            yield
        run_jobs()

    return delivering


@pytest.fixture
def media(settings, tmp_path):
    """Stored files go to a fresh folder of this test's own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"
