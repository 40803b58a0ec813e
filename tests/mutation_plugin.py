"""A pytest plugin for mutation testing only (`make mutants`, loaded with `-p tests.mutation_plugin`).

mutmut runs the tests of each mutant in a process forked from one that has already imported the
settings, so every mutant would share (and each re-create, migrations and all) the test database
named for that first process. Here each process takes a database file of its own instead, copied
from a template migrated once by tests/mutants.py: a fresh, fully migrated database in milliseconds,
whatever a killed mutant left behind in its own.
"""

import os
import shutil
from pathlib import Path

import pytest

TEMPLATE = "SEEDANCE_MUTANTS_DB_TEMPLATE"
MODULES = "SEEDANCE_MUTANTS_MODULES"

# The tests that speak for each module. mutmut runs, for a mutant, the tests that call its function;
# for the ledger that is nearly every test (each user is given credits), so each module is judged by
# its own tests only: those written about it. A mutant none of them reaches counts as "no tests".
MODULE_TESTS = {
    "accounts.billing.ledger": ["test_ledger", "test_ledger_guards", "test_audit"],
    "accounts.billing.topups": ["test_billing", "test_stripe_guards", "test_billing_pages"],
    "accounts.billing.stripe_events": ["test_billing", "test_stripe_guards"],
    "accounts.billing.views": [
        "test_billing_views_mutants",
        "test_billing",
        "test_stripe_guards",
        "test_billing_pages",
    ],
    # Not test_pipeline nor test_polling (50 s of live-server runs): every survivor of the
    # generation_create path (called by nearly every test) would run them, a minute each.
    "generations.services": [
        "test_services_mutants",
        "test_status_claims_guard",
        "test_video_links_guard",
        "test_cancel",
        "test_sweeper",
        "test_api_generations",
    ],
    # Not test_pipeline, test_polling nor test_faults (live-server runs, a minute and more for each
    # survivor). The jobs' own bodies (submit, poll, fetch, make_poster) are pinned narrowly by
    # test_job_bodies_mutants; the sweeper, adopt_job, _fail, job_request and the poster helpers
    # by test_jobs_mutants.
    "generations.jobs": [
        "test_job_bodies_mutants",
        "test_jobs_mutants",
        "test_status_claims_guard",
        "test_sweeper",
        "test_callback_guard",
    ],
    "generations.user_webhooks": ["test_user_webhooks_mutants", "test_webhooks"],
    "generations.webhooks": ["test_callback_view_mutants", "test_callback_guard"],
    "generations.downloads": ["test_download_guards", "test_faults"],
}
# A mutant's tests never run this long; a claim its process could not give back (killed on timeout)
# frees itself after this.
CLAIM_SECONDS = 3600


def pytest_configure(config: pytest.Config) -> None:
    template = os.environ.get(TEMPLATE)
    if not template:
        return
    from django.conf import settings
    from django.db import connections

    if not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        raise pytest.UsageError("make mutants runs on SQLite: unset DATABASE_URL")
    target = Path(template).with_name(f"test-{os.getpid()}.sqlite3")
    shutil.copyfile(template, target)
    # settings.DATABASES and the connection handler share this dict; no connection is open yet in a
    # freshly forked process (one inherited from the parent would be closed by close_all below).
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(target)
    connections.close_all()
    config.option.reuse_db = True  # the copy is migrated already: keep it, never re-create it
    config.option.create_db = False
    config._seedance_mutants_db = target  # type: ignore[attr-defined]
    config._seedance_mutants_redis = _own_redis_database(settings)  # type: ignore[attr-defined]


def _own_redis_database(settings) -> tuple[str, str] | None:
    """Processes running side by side (mutmut's workers) each need a Redis database of their own too:
    the suite empties its database before every test. The run's own (embedded) server has 15."""
    import redis

    from seedance_site import test_redis

    claims = redis.Redis.from_url(test_redis.with_db(os.environ["REDIS_URL"], 0))
    for db in test_redis.DATABASES:
        key = f"seedance:test-run-db:{db}"
        holder = claims.get(key)
        if holder is not None and not _alive(int(holder)):
            # Left by a worker killed on a timeout, or a run stopped by hand: free it, unless
            # another process freed and took it meanwhile (compare and delete, in one step).
            claims.eval(RELEASE_IF_HELD_BY, 1, key, holder)
        if claims.set(key, os.getpid(), nx=True, ex=CLAIM_SECONDS):
            url = test_redis.with_db(os.environ["REDIS_URL"], db)
            redis.Redis.from_url(url).flushdb()
            os.environ["REDIS_URL"] = url  # for the workers and commands the tests start
            for queue in settings.RQ_QUEUES.values():  # "low" too: else shared, and never emptied
                queue["URL"] = url
            settings.CACHES["default"]["LOCATION"] = url
            return test_redis.with_db(url, 0), key
    raise pytest.UsageError("every Redis database of the mutation run's server is taken")


RELEASE_IF_HELD_BY = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _module_of(mutant: str) -> str | None:
    for module in MODULE_TESTS:
        if mutant.startswith(f"{module}.x"):
            return module
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each module's own tests: for a mutant, its module's; for the clean run, the run's modules'."""
    if not os.environ.get(TEMPLATE):
        return
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    if mutant in ("fail", "mutant_generation", "list_all_tests"):
        return  # mutmut checks that a failing test is seen as one, and lists every test
    if mutant and mutant != "stats":
        module = _module_of(mutant)
        modules = [module] if module else []
    else:  # the clean run and the mapping of tests to functions: the tests of this run's modules
        modules = [m for m in os.environ.get(MODULES, "").split(",") if m in MODULE_TESTS]
    if not modules:
        return
    allowed = {f"tests/{name}.py" for module in modules for name in MODULE_TESTS[module]}
    keep = [item for item in items if item.nodeid.split("::")[0] in allowed]
    dropped = [item for item in items if item.nodeid.split("::")[0] not in allowed]
    if mutant == "stats" and not keep:
        return  # tests new to mutmut, none of them this run's: mapped anyway (pytest fails on none)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    if mutant and mutant != "stats":
        _fastest_first(items)


def _fastest_first(items: list[pytest.Item]) -> None:
    """mutmut hands a mutant's tests to pytest as a set, so pytest runs them in no useful order and a
    mutant the first fast test would kill could wait a minute for the pipeline tests (test_faults)
    first. Run them in the order of their clean run's durations (mutmut's stats), fastest first,
    so that -x stops a killed mutant as early as it can; tests with no figure yet come first.

    A module's own narrow tests (tests/test_*_mutants.py) go before all others: a short test of
    another module that waits on a worker (run_jobs, up to a minute) for what the mutant broke
    would otherwise run first and time out, where the narrow test fails in a fraction of a second."""
    try:
        from mutmut.state import state

        durations = state().duration_by_test
    except Exception:  # noqa: BLE001 - an ordering only: without mutmut's figures keep pytest's
        return
    position = {id(item): n for n, item in enumerate(items)}
    items.sort(
        key=lambda item: (
            not item.nodeid.split("::")[0].endswith("_mutants.py"),
            durations.get(item.nodeid, 0.0),
            position[id(item)],
        )
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    target = getattr(config, "_seedance_mutants_db", None)
    if target is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    claim = getattr(config, "_seedance_mutants_redis", None)
    if claim is not None:
        import redis

        redis.Redis.from_url(claim[0]).delete(claim[1])
