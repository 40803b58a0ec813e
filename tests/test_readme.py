"""The README's commands, run as printed (issue #15, item 1).

A scratch copy of the repository runs `make run` exactly as a newcomer does (its own `var/`: a
fresh SQLite, the embedded Redis, the ShortAPI simulator, the Stripe stand-in). Beside it, one
fresh `bash` — an empty environment, as in a second terminal — runs every shell block the
README marks `<!-- runnable -->`, in order, as printed. Two things differ from a person's
terminal, both for the machine this runs on rather than for the commands: the ports (another
`make run` may hold 8000), substituted where the README prints `127.0.0.1:8000`; and a
`curl` function that notes each answer's status on stderr, so that a 401 or a 500, which
`curl -s` exits 0 on, fails the test. The README's upload example names `photo.jpg`; a
picture of that name is put in the folder first.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import ROOT
from tests.media import picture

pytestmark = pytest.mark.slow

RUNNABLE = re.compile(r"<!-- runnable -->\n```sh\n(.*?)```", re.S)
CURL_STATUS = re.compile(r"^\[curl (\d{3})\] (\S+)$", re.M)
# Copied into the scratch folder: what a fresh clone holds (the virtualenv is linked, not rebuilt).
NOT_COPIED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "var",
    "__pycache__",
    "*.pyc",
    "screenshots",
    "staticfiles",
    ".pytest_cache",
    ".ruff_cache",
)


def runnable_blocks(readme: str) -> list[str]:
    return RUNNABLE.findall(readme)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _terminal_env(**extra: str) -> dict[str, str]:
    """A new terminal's environment: no DJANGO_*, DATABASE_URL, REDIS_URL, keys or test settings."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TERM") if name in os.environ}
    return {**keep, **extra}


def _wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    pytest.fail(f"nothing answered at {url} within {timeout:.0f}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    folder = tmp_path_factory.mktemp("clone") / "seedance"
    shutil.copytree(ROOT, folder, ignore=NOT_COPIED, copy_function=shutil.copy2)
    (folder / ".venv").symlink_to(ROOT / ".venv")
    ports = {"web": _free_port(), "simulator": _free_port(), "stripe": _free_port()}
    log = folder / "make-run.log"
    env = _terminal_env(
        WEB_ADDR=f"127.0.0.1:{ports['web']}",
        SHORTAPI_SIMULATOR_PORT=str(ports["simulator"]),
        STRIPE_STANDIN_PORT=str(ports["stripe"]),
        SHORTAPI_SIMULATOR_JOB_SECONDS="2",
    )
    with open(log, "wb") as out:
        # `-o`: the linked virtualenv is up to date; make must not reinstall it into the shared one.
        process = subprocess.Popen(
            ["make", "-o", ".venv/.requirements-installed", "run"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_http(f"http://127.0.0.1:{ports['web']}/healthz", process, log, timeout=300)
        yield {"folder": folder, "ports": ports, "log": log}
    finally:
        # A terminal's Ctrl-C goes to the whole group (make, the devstack: each stops). A script's
        # SIGINT goes to make alone, which then only waits: the devstack sees that and stops
        # everything it started, and make ends as interrupted. The harder of the two, tested here.
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"make run did not stop on SIGINT:\n{log.read_text()[-4000:]}")
        assert "[devstack] make was interrupted; stopping" in log.read_text()
        assert process.returncode == -signal.SIGINT
        with socket.socket() as sock:  # the web server is gone too
            assert sock.connect_ex(("127.0.0.1", ports["web"])) != 0


def _bash(folder: Path, script: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env=_terminal_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_readme_marks_its_runnable_commands():
    blocks = runnable_blocks((ROOT / "README.md").read_text())
    commands = "\n".join(blocks)
    assert len(blocks) >= 3
    for needed in (
        "create_api_token demo",
        "curl",
        "grant_credits",
        "reconcile_generations",
        "audit_credits",
        "createsuperuser --noinput",
    ):
        assert needed in commands


def test_every_runnable_readme_command_works_as_printed_beside_make_run(clone):
    folder: Path = clone["folder"]  # type: ignore[assignment]
    ports: dict[str, int] = clone["ports"]  # type: ignore[assignment]
    picture(folder / "photo.jpg")
    blocks = runnable_blocks((folder / "README.md").read_text())
    script = [
        "set -euo pipefail",
        "curl() { command curl --write-out '%{stderr}[curl %{http_code}] %{url_effective}\\n' \"$@\"; }",
    ]
    for number, block in enumerate(blocks, 1):
        script.append(f"echo '--- README block {number}' >&2")
        script.append(block.replace("127.0.0.1:8000", f"127.0.0.1:{ports['web']}"))
    result = _bash(folder, "\n".join(script))
    output = f"stdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-6000:]}"
    assert result.returncode == 0, output
    assert "Traceback" not in result.stderr, output
    assert f"--- README block {len(blocks)}" in result.stderr, output
    answers = CURL_STATUS.findall(result.stderr)
    assert len(answers) >= 8, output
    for status, url in answers:
        # A cancel that comes after the worker has handed the job upstream is the documented 409.
        allowed = {"200", "201", "204"} | ({"409"} if url.endswith("/cancel") else set())
        assert status in allowed, f"{url} answered {status}\n{output}"
    assert "Traceback" not in (folder / "make-run.log").read_text()


def test_production_still_refuses_to_start_without_its_secret_beside_make_run(clone):
    folder: Path = clone["folder"]  # type: ignore[assignment]
    assert (folder / "var" / "dev.env").exists()

    # A new terminal takes make run's development defaults...
    assert _bash(folder, ".venv/bin/python manage.py check").returncode == 0
    # ...which DJANGO_DEBUG set off ignores: production still needs its own secret.
    refused = _bash(folder, "DJANGO_DEBUG=0 .venv/bin/python manage.py check")
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off" in refused.stderr
    # With a secret, DEBUG off is production and reads no development default.
    production = _bash(
        folder,
        "DJANGO_DEBUG=0 DJANGO_SECRET_KEY=a-long-random-production-secret-key-0123456789abcdef "
        '.venv/bin/python -c \'import django, os; os.environ["DJANGO_SETTINGS_MODULE"] = '
        '"seedance_site.settings"; django.setup(); from django.conf import settings; '
        'print(settings.DEBUG, settings.STRIPE_SECRET_KEY == "", settings.SHORTAPI_KEY == "")\'',
    )
    assert production.stdout.split() == ["False", "True", "True"], production.stderr


def test_make_run_prints_the_demo_and_operator_logins(clone):
    log = Path(clone["log"]).read_text()  # type: ignore[arg-type]
    assert "log in as demo/demo" in log
    assert "log in as admin/admin" in log
    assert "Stripe stand-in" in log
