"""CI says what it tested: on a machine whose PostgreSQL or Redis does not answer, `.ci/run` fails
loudly before any test runs, instead of going green on SQLite or the embedded Redis."""

import os
import shutil
import socket
import subprocess

from tests.factories import ROOT


def closed_port() -> int:
    """A port nothing listens on: bound for a moment by us, then let go."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ci_run(**env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / ".ci" / "run")],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_without_postgresql_fails_before_any_test_runs():
    result = ci_run(CI_PG_PORT=str(closed_port()))

    assert result.returncode != 0
    assert "CI FAILED:" in result.stderr
    assert "PostgreSQL" in result.stderr
    assert "never on SQLite" in result.stderr or "client tools are missing" in result.stderr
    assert "--- make test" not in result.stdout
    assert "--- venv" not in result.stdout


def test_ci_without_redis_fails_before_any_test_runs():
    result = ci_run(CI_REDIS_PORT=str(closed_port()))

    assert result.returncode != 0
    assert "--- make test" not in result.stdout
    if postgresql_answers():
        assert "CI FAILED: Redis does not answer" in result.stderr
    else:  # CI stops at its first check, PostgreSQL's: still loud, still before any test
        assert "CI FAILED:" in result.stderr and "PostgreSQL" in result.stderr


def postgresql_answers() -> bool:
    return (
        shutil.which("pg_isready") is not None
        and subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"]).returncode == 0
    )
