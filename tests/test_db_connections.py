"""The number of PostgreSQL connections is bounded whatever the server (issue 16).

`runserver` (what `make run` uses) starts a thread per request; with a connection per thread kept
for DATABASE_CONN_MAX_AGE, a burst of requests used to open one connection each and run
PostgreSQL out of them ("too many clients already", HTTP 500). With Django 5.2's psycopg pool a
process holds at most DATABASE_POOL_MAX_SIZE connections and a request waits for a free one.

A real `manage.py runserver` on the test database, a real burst of concurrent API requests, and
PostgreSQL's own count of the connections to that database, sampled while the burst runs.
"""

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from accounts.services import api_token_create
from tests.factories import ROOT, make_user, test_database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's: SQLite has no server connections to run out of")


POOL_SIZE = 3
CLIENTS = 16
REQUESTS = 96
APP_NAME = "seedance-burst-test"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_runserver(tmp_path, **env: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(tmp_path / f"runserver-{port}.log", "wb")  # closed by the OS with the process
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={
            **os.environ,
            # The server's connections say who they are, so PostgreSQL can count them alone.
            "DATABASE_URL": f"{test_database_url()}?application_name={APP_NAME}",
            "LOG_LEVEL": "WARNING",
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(url + "/api/v1/pricing", timeout=2)
            return process, url
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / f"runserver-{port}.log").read_text()) from None
            time.sleep(0.1)


def server_connections() -> int:
    """The server's connections to the test database, as PostgreSQL counts them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            [APP_NAME],
        )
        return cursor.fetchone()[0]


def burst(url: str, token: str) -> tuple[list[int], int]:
    """REQUESTS authenticated API reads from CLIENTS threads at once (a fresh connection each, so
    runserver starts a thread for every request); return the status codes and the most
    connections PostgreSQL counted meanwhile."""
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server_connections())
            time.sleep(0.01)
        connection.close()

    def one(i: int) -> int:
        path = "/api/v1/generations" if i % 2 else "/api/v1/account"
        return requests.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with ThreadPoolExecutor(CLIENTS) as pool:
            codes = list(pool.map(one, range(REQUESTS)))
    finally:
        done.set()
        sampler.join()
    return codes, peak


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 9)
        process.wait()


@pytest.fixture
def token() -> str:
    _, token = api_token_create(user=make_user("alice", 1000), name="burst")
    return token


def test_it_holds_a_burst_behind_runserver_to_the_pool_size(tmp_path, token):
    process, url = start_runserver(tmp_path, DATABASE_POOL_MAX_SIZE=str(POOL_SIZE))
    try:
        codes, peak = burst(url, token)
    finally:
        stop(process)
    assert codes == [200] * REQUESTS
    assert 1 <= peak <= POOL_SIZE


def test_without_the_pool_the_same_burst_opens_a_connection_per_thread(tmp_path, token):
    """The control: the burst above really overlaps, so the bound comes from the pool."""
    process, url = start_runserver(tmp_path, DATABASE_POOL_MAX_SIZE="0", DATABASE_CONN_MAX_AGE="60")
    try:
        codes, peak = burst(url, token)
    finally:
        stop(process)
    assert codes == [200] * REQUESTS
    assert peak > POOL_SIZE
