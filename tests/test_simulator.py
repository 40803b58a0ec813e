"""The ShortAPI simulator itself, over real HTTP on loopback. No database needed."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
import requests
import time_machine

from generations.simulator import MODEL, Simulator
from tests.factories import wait_for

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def video_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One cache for the session, so each (duration, aspect) MP4 is rendered once.
    return tmp_path_factory.mktemp("simulator-videos")


@pytest.fixture
def sim(video_cache: Path) -> Iterator[Simulator]:
    with Simulator(
        api_key=KEY,
        job_seconds=0.3,
        cache_dir=video_cache,
        create_delay=1.0,
        query_delay=1.0,
        big_bytes=1024 * 1024 + 7,
    ) as simulator:
        yield simulator


class CallbackSink:
    """A tiny HTTP server that records every POST it receives."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sink.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            # The simulator posts up to 16 callbacks at once: on a loaded machine a backlog of 5
            # drops connections, and a dropped callback is (by design) never sent again.
            request_queue_size = 256

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    receiver = CallbackSink()
    yield receiver
    receiver.close()


def body(prompt: str = "a cat on a skateboard", **args: Any) -> dict[str, Any]:
    return {"model": MODEL, "args": {"prompt": prompt, **args}}


def create(sim: Simulator, payload: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 5)
    return requests.post(f"{sim.url}/api/v1/job/create", json=payload or body(), headers=AUTH, **kwargs)


def create_job(sim: Simulator, prompt: str = "a cat", callback_url: str | None = None, **args: Any) -> str:
    payload = body(prompt, **args)
    if callback_url:
        payload["callback_url"] = callback_url
    answer = create(sim, payload).json()
    assert answer["code"] == 0, answer
    return answer["data"]["job_id"]


def query(sim: Simulator, job_id: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("timeout", 5)
    return requests.get(f"{sim.url}/api/v1/job/query", params={"id": job_id}, headers=AUTH, **kwargs)


def finished_data(sim: Simulator, job_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        data = query(sim, job_id).json()["data"]
        return data if data["status"] in (2, 3) else None

    return wait_for(done)


def probe(path: Path) -> tuple[float, int, int, str]:
    """(seconds, width, height, stream line) as ffmpeg itself reads the file."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    stderr = subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    hours, minutes, seconds = re.search(r"Duration: (\d+):(\d+):([\d.]+)", stderr).groups()
    video = next(line for line in stderr.splitlines() if "Video:" in line)
    width, height = re.search(r", (\d{2,5})x(\d{2,5})", video).groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds), int(width), int(height), video


# --- auth and validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}])
def test_it_refuses_missing_or_wrong_key(sim: Simulator, headers: dict[str, str]) -> None:
    created = requests.post(f"{sim.url}/api/v1/job/create", json=body(), headers=headers, timeout=5)
    queried = requests.get(f"{sim.url}/api/v1/job/query", params={"id": "x"}, headers=headers, timeout=5)

    for response in (created, queried):
        assert response.status_code == 401
        assert response.json() == {"code": 401, "message": "Invalid API key"}
    assert sim.stats()["jobs"] == 0


def test_it_answers_400_to_a_body_that_is_not_json(sim: Simulator) -> None:
    response = requests.post(f"{sim.url}/api/v1/job/create", data=b"{nope", headers=AUTH, timeout=5)

    assert response.status_code == 400
    assert response.json()["code"] == 400


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"model": "bytedance/seedance-1.0/text-to-video", "args": {"prompt": "x"}}, "model"),
        ({"args": {"prompt": "x"}}, "model"),
        ({"model": MODEL}, "args"),
        ({"model": MODEL, "args": ["x"]}, "args"),
        (body(prompt=None), "args.prompt"),
        (body(prompt="   "), "args.prompt"),
        (body(prompt=42), "args.prompt"),
        (body(mode="slow"), "args.mode"),
        (body(duration=3), "args.duration"),
        (body(duration=16), "args.duration"),
        (body(duration="5"), "args.duration"),
        (body(duration=5.0), "args.duration"),
        (body(duration=True), "args.duration"),
        (body(aspect_ratio="2:1"), "args.aspect_ratio"),
        ({**body(), "callback_url": "ftp://example.com/x"}, "callback_url"),
        ({**body(), "callback_url": 7}, "callback_url"),
    ],
)
def test_it_refuses_invalid_args_with_code_400_naming_the_field(
    sim: Simulator, payload: dict[str, Any], field: str
) -> None:
    response = create(sim, payload)

    assert response.status_code == 200
    answer = response.json()
    assert answer["code"] == 400
    assert answer["message"].startswith(field + " ")
    assert sim.stats()["jobs"] == 0


def test_it_applies_documented_defaults_and_price(sim: Simulator) -> None:
    answer = create(sim).json()

    assert answer["code"] == 0
    assert answer["data"]["amount"] == "1.20"
    assert re.fullmatch(r"sim_[0-9a-f]{24}", answer["data"]["job_id"])
    job = sim.jobs[answer["data"]["job_id"]]
    assert job.args == {
        "prompt": "a cat on a skateboard",
        "mode": "std",
        "duration": 5,
        "aspect_ratio": "16:9",
    }


@pytest.mark.parametrize(
    ("mode", "duration", "amount"), [("std", 15, "3.60"), ("fast", 10, "2.00"), ("fast", 4, "0.80")]
)
def test_it_charges_per_second_by_mode(sim: Simulator, mode: str, duration: int, amount: str) -> None:
    answer = create(sim, body(mode=mode, duration=duration, aspect_ratio="9:16")).json()

    assert answer["data"]["amount"] == amount


def test_query_of_unknown_job_is_code_404(sim: Simulator) -> None:
    response = query(sim, "sim_nope")

    assert response.status_code == 200
    assert response.json() == {"code": 404, "message": "job not found"}


# --- the happy path -----------------------------------------------------------------------------------


def test_job_moves_from_queued_through_running_to_succeeded(sim: Simulator) -> None:
    with time_machine.travel(time.time(), tick=False) as clock:
        job_id = create_job(sim, "a slow one [sim:seconds=1]")
        first = query(sim, job_id).json()["data"]
        clock.shift(0.25)
        middle = query(sim, job_id).json()["data"]
        clock.shift(1)
        last = finished_data(sim, job_id)

    assert first["status"] == 0
    assert first["job_id"] == job_id
    assert middle["status"] == 1
    assert "result" not in middle
    assert last["status"] == 2
    assert last["finished_at"]
    assert last["result"]["videos"][0]["url"] == f"{sim.url}/files/{job_id}.mp4"


@pytest.mark.parametrize(
    ("duration", "aspect_ratio", "size"),
    [(4, "16:9", (320, 180)), (7, "9:16", (180, 320)), (4, "21:9", (336, 144)), (4, "1:1", (240, 240))],
)
def test_it_serves_playable_mp4_of_requested_duration(
    sim: Simulator, tmp_path: Path, duration: int, aspect_ratio: str, size: tuple[int, int]
) -> None:
    job_id = create_job(sim, duration=duration, aspect_ratio=aspect_ratio)
    url = finished_data(sim, job_id)["result"]["videos"][0]["url"]

    response = requests.get(url, timeout=30)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == len(response.content)
    video = tmp_path / "video.mp4"
    video.write_bytes(response.content)
    seconds, width, height, stream = probe(video)
    assert abs(seconds - duration) <= 0.5
    assert (width, height) == size
    assert "h264" in stream
    assert "yuv420p" in stream
    assert sim.stats()["video_downloads"] == 1


def test_video_of_an_unfinished_or_unknown_job_is_404(sim: Simulator) -> None:
    job_id = create_job(sim, "[sim:never]")

    assert requests.get(f"{sim.url}/files/{job_id}.mp4", timeout=5).status_code == 404
    assert requests.get(f"{sim.url}/files/sim_nope.mp4", timeout=5).status_code == 404


def test_callback_is_delivered_once(sim: Simulator, sink: CallbackSink) -> None:
    job_id = create_job(sim, callback_url=sink.url)

    wait_for(lambda: sink.bodies)
    for _ in range(3):
        query(sim, job_id)
    # Once the simulator has recorded the callback as sent, no other can be on its way.
    wait_for(lambda: sim.jobs[job_id].callback == "sent")

    assert sink.bodies == [{"job_id": job_id, "status": 2, "code": 0}]
    assert sim.jobs[job_id].callback == "sent"
    assert sim.stats()["callbacks_sent"] == 1


def test_callback_goes_out_without_anybody_polling(sim: Simulator, sink: CallbackSink) -> None:
    job_id = create_job(sim, callback_url=sink.url)

    wait_for(lambda: sink.bodies, timeout=30)

    assert sim.jobs[job_id].query_calls == 0


def test_failed_callback_is_counted_not_retried(sim: Simulator) -> None:
    refusing = CallbackSink(status=500)
    try:
        create_job(sim, callback_url=refusing.url)
        wait_for(lambda: sim.stats()["callbacks_failed"] == 1)
    finally:
        refusing.close()

    assert len(refusing.bodies) == 1
    assert [job.callback for job in sim.jobs.values()] == ["failed"]  # final: nothing tries again
    assert sim.stats()["callbacks_sent"] == 0


# --- misbehaviour on demand ---------------------------------------------------------------------------


def test_fail_marker_ends_the_job_with_status_3_and_calls_back(sim: Simulator, sink: CallbackSink) -> None:
    job_id = create_job(sim, "[sim:fail] a cat", callback_url=sink.url)

    data = finished_data(sim, job_id)

    assert data["status"] == 3
    assert data["error"] == "Content moderation rejected the prompt"
    assert "result" not in data
    wait_for(lambda: sink.bodies)
    assert sink.bodies == [{"job_id": job_id, "status": 3, "code": 0}]


def test_create_error_marker_answers_code_1001_and_makes_no_job(sim: Simulator) -> None:
    response = create(sim, body("[sim:create-error] a cat"))

    assert response.status_code == 200
    assert response.json() == {"code": 1001, "message": "Insufficient balance in provider account"}
    assert sim.stats()["jobs"] == 0


def test_create_500_marker_fails_the_first_n_calls_of_that_prompt(sim: Simulator) -> None:
    payload = body("[sim:create-500x2] a boat")

    answers = [create(sim, payload) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [500, 500, 200]
    assert answers[0].headers["Content-Type"].startswith("text/plain")
    assert answers[2].json()["code"] == 0
    assert sim.stats()["jobs"] == 1
    assert create(sim, body("[sim:create-500x2] another boat")).status_code == 500


def test_create_429_marker_answers_too_many_requests(sim: Simulator) -> None:
    payload = body("[sim:create-429x1] a tree")

    first, second = create(sim, payload), create(sim, payload)

    assert first.status_code == 429
    assert first.json()["code"] == 429
    assert first.headers["Retry-After"] == "1"
    assert second.json()["code"] == 0


def test_create_malformed_marker_answers_non_json_but_registers_the_job(sim: Simulator) -> None:
    response = create(sim, body("[sim:create-malformed] a kite"))

    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert sim.stats()["jobs"] == 1


def test_create_timeout_marker_registers_the_job_but_answers_late(sim: Simulator, sink: CallbackSink) -> None:
    payload = {**body("[sim:create-timeout] a storm"), "callback_url": sink.url}

    with pytest.raises(requests.Timeout):
        create(sim, payload, timeout=0.3)

    (job_id,) = sim.jobs
    wait_for(lambda: sink.bodies)
    assert sink.bodies == [{"job_id": job_id, "status": 2, "code": 0}]


def test_create_502_and_503_markers_answer_gateway_errors_and_make_no_job(sim: Simulator) -> None:
    payload = body("[sim:create-502x1][sim:create-503x1] a pier")

    answers = [create(sim, payload) for _ in range(3)]

    assert [answer.status_code for answer in answers] == [502, 503, 200]
    assert answers[0].text == "Bad Gateway"
    assert sim.stats()["jobs"] == 1


def test_create_504_marker_registers_the_job_but_answers_gateway_timeout(sim: Simulator) -> None:
    response = create(sim, body("[sim:create-504] a pier"))

    assert response.status_code == 504
    assert sim.stats()["jobs"] == 1


def test_create_reset_marker_registers_the_job_and_resets_the_connection(sim: Simulator) -> None:
    with pytest.raises(requests.ConnectionError) as raised:
        create(sim, body("[sim:create-reset] a pier"))

    assert "reset" in str(raised.value).lower() or "aborted" in str(raised.value).lower()
    assert sim.stats()["jobs"] == 1
    assert create(sim, body("a pier after the reset")).status_code == 200  # the server lives on


def test_status_n_marker_reports_any_undocumented_status(sim: Simulator) -> None:
    job_id = create_job(sim, "[sim:status-70000] a comet")

    wait_for(lambda: query(sim, job_id).json()["data"]["status"] == 70000)


def test_long_url_marker_serves_the_video_behind_a_url_over_2000_characters(sim: Simulator) -> None:
    url = finished_data(sim, create_job(sim, "[sim:long-url] a comet"))["result"]["videos"][0]["url"]

    assert len(url) > 2000
    response = requests.get(url, timeout=30)
    assert response.status_code == 200 and response.content[4:8] == b"ftyp"


def test_query_fault_markers_misbehave_in_order_then_answer(sim: Simulator) -> None:
    job_id = create_job(sim, "[sim:query-429x2][sim:query-nonjson-x1][sim:query-500x1] rain")

    answers = [query(sim, job_id) for _ in range(5)]

    assert [answer.status_code for answer in answers] == [429, 429, 200, 500, 200]
    assert answers[0].json()["code"] == 429
    with pytest.raises(ValueError):
        answers[2].json()
    assert answers[4].json()["code"] == 0
    assert sim.jobs[job_id].query_calls == 5


def test_query_timeout_marker_delays_the_first_n_queries(sim: Simulator) -> None:
    sim.query_delay = 60.0  # far longer than the second query's timeout: a delayed one times out
    job_id = create_job(sim, "[sim:query-timeout-x1] fog")

    with pytest.raises(requests.Timeout):
        query(sim, job_id, timeout=0.3)
    answer = query(sim, job_id, timeout=10)

    assert answer.json()["code"] == 0


def test_no_callback_marker_never_calls_back(sim: Simulator, sink: CallbackSink) -> None:
    job_id = create_job(sim, "[sim:no-callback] a bridge", callback_url=sink.url)

    assert finished_data(sim, job_id)["status"] == 2
    # Finished for good: the simulator decided about its callback under the same lock.
    wait_for(lambda: sim.jobs[job_id].final_status == 2)

    assert sink.bodies == []
    assert sim.jobs[job_id].callback == "skipped"


def test_never_marker_keeps_the_job_running(sim: Simulator, sink: CallbackSink) -> None:
    with time_machine.travel(time.time(), tick=False) as clock:
        job_id = create_job(sim, "[sim:never] a wave", callback_url=sink.url)
        clock.shift(3600)
        status = query(sim, job_id).json()["data"]["status"]

    assert status == 1
    assert sim.jobs[job_id].final_status is None
    assert sink.bodies == []


def test_status_7_marker_reports_an_undocumented_status_forever(sim: Simulator, sink: CallbackSink) -> None:
    with time_machine.travel(time.time(), tick=False) as clock:
        job_id = create_job(sim, "[sim:status-7] a moon", callback_url=sink.url)
        clock.shift(3600)
        answers = [query(sim, job_id).json()["data"] for _ in range(2)]

    assert [data["status"] for data in answers] == [7, 7]
    assert "result" not in answers[0]
    assert sink.bodies == []


def test_video_404_marker(sim: Simulator) -> None:
    url = finished_data(sim, create_job(sim, "[sim:video-404] gone"))["result"]["videos"][0]["url"]

    assert requests.get(url, timeout=5).status_code == 404


def test_video_html_marker_serves_html(sim: Simulator) -> None:
    url = finished_data(sim, create_job(sim, "[sim:video-html] page"))["result"]["videos"][0]["url"]

    response = requests.get(url, timeout=5)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html>nope</html>"


def test_video_big_marker_streams_big_bytes_of_junk(sim: Simulator) -> None:
    url = finished_data(sim, create_job(sim, "[sim:video-big] huge"))["result"]["videos"][0]["url"]

    with requests.get(url, stream=True, timeout=5) as response:
        received = sum(len(chunk) for chunk in response.iter_content(65536))

    assert response.headers["Content-Type"] == "video/mp4"
    assert int(response.headers["Content-Length"]) == sim.big_bytes
    assert received == sim.big_bytes


def test_video_loopback_marker_points_at_another_loopback_host(sim: Simulator) -> None:
    job_id = create_job(sim, "[sim:video-loopback] sneaky")

    url = finished_data(sim, job_id)["result"]["videos"][0]["url"]

    assert url == f"http://127.0.0.2:{sim.port}/files/{job_id}.mp4"


def test_seconds_marker_sets_the_job_time(sim: Simulator) -> None:
    with time_machine.travel(time.time(), tick=False) as clock:
        slow = create_job(sim, "[sim:seconds=30] slow")  # 0 for its first 3 s
        quick = create_job(sim, "[sim:seconds=0.05] quick")
        clock.shift(1)
        answers = [query(sim, job).json()["data"]["status"] for job in (slow, quick)]

    assert answers == [0, 2]


@pytest.mark.parametrize("prompt", ["[sim:explode] x", "[sim:seconds=soon] x", "[sim:create-nonjson-x1] x"])
def test_unknown_marker_is_refused_so_typos_show(sim: Simulator, prompt: str) -> None:
    answer = create(sim, body(prompt)).json()

    assert answer["code"] == 400
    assert "marker" in answer["message"]


# --- control API and Python API -----------------------------------------------------------------------


def test_control_api_lists_jobs_and_stats(sim: Simulator) -> None:
    job_id = create_job(sim, "listed", callback_url="http://127.0.0.1:9/never")
    query(sim, job_id)

    jobs = requests.get(f"{sim.url}/_sim/jobs", timeout=5).json()["jobs"]
    stats = requests.get(f"{sim.url}/_sim/stats", timeout=5).json()

    (listed,) = jobs
    assert listed["job_id"] == job_id
    assert listed["args"]["prompt"] == "listed"
    assert listed["callback_url"] == "http://127.0.0.1:9/never"
    assert listed["create_calls"] == 1
    assert listed["query_calls"] == 1
    assert listed["status"] in (0, 1)
    assert stats == {
        "create_calls": 1,
        "query_calls": 1,
        "video_downloads": 0,
        "callbacks_sent": 0,
        "callbacks_failed": 0,
        "input_fetches": 0,
        "input_fetches_failed": 0,
        "jobs": 1,
        "peak_concurrent_calls": 1,
    }


def test_control_finish_ends_a_job_now_and_calls_back_once(sim: Simulator, sink: CallbackSink) -> None:
    job_id = create_job(sim, "[sim:never] stuck", callback_url=sink.url)

    first = requests.post(f"{sim.url}/_sim/jobs/{job_id}/finish", json={"status": 3}, timeout=5)
    again = requests.post(f"{sim.url}/_sim/jobs/{job_id}/finish", timeout=5)
    unknown = requests.post(f"{sim.url}/_sim/jobs/sim_nope/finish", timeout=5)

    assert first.json()["finished"] is True
    assert again.json()["finished"] is False
    assert unknown.status_code == 404
    assert query(sim, job_id).json()["data"]["status"] == 3
    wait_for(lambda: sim.jobs[job_id].callback == "sent")
    assert sink.bodies == [{"job_id": job_id, "status": 3, "code": 0}]


def test_python_finish_succeeds_a_status_7_job(sim: Simulator) -> None:
    job_id = create_job(sim, "[sim:status-7] x")

    assert sim.finish(job_id) is True

    assert query(sim, job_id).json()["data"]["status"] == 2


def test_control_reset_forgets_jobs_and_counters(sim: Simulator) -> None:
    job_id = create_job(sim)

    requests.post(f"{sim.url}/_sim/reset", timeout=5)

    counters = ["create_calls", "query_calls", "video_downloads", "callbacks_sent", "callbacks_failed"]
    counters += ["input_fetches", "input_fetches_failed", "jobs", "peak_concurrent_calls"]
    assert sim.stats() == dict.fromkeys(counters, 0)
    assert query(sim, job_id).json()["code"] == 404


def test_latency_holds_every_call_and_the_peak_counts_calls_at_once(tmp_path) -> None:
    """`latency`: a provider across the internet. Calls made at once are in progress at once,
    and the simulator says how many it had (what a worker's concurrency is measured by)."""
    import threading

    with Simulator(api_key=KEY, job_seconds=0, cache_dir=tmp_path, latency=0.5) as slow:
        job_id = create_job(slow)
        assert slow.stats()["peak_concurrent_calls"] == 1
        barrier = threading.Barrier(3)
        answers: list[int] = []

        def ask() -> None:
            barrier.wait(timeout=10)
            answers.append(query(slow, job_id).json()["code"])

        threads = [threading.Thread(target=ask) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert answers == [0, 0, 0]
        assert slow.stats()["peak_concurrent_calls"] >= 2


def test_it_refuses_to_serve_on_a_non_loopback_host(video_cache: Path) -> None:
    with pytest.raises(ValueError):
        Simulator(host="192.0.2.1", cache_dir=video_cache)


def test_stop_frees_the_port_and_is_idempotent(video_cache: Path) -> None:
    sim = Simulator(api_key=KEY, cache_dir=video_cache).start()
    url = sim.url
    session = requests.Session()
    session.get(f"{url}/_sim/stats", timeout=5)  # leaves a keep-alive connection open

    sim.stop()
    sim.stop()

    with pytest.raises(requests.ConnectionError):
        session.get(f"{url}/_sim/stats", timeout=2)


def test_it_carries_hundreds_of_jobs_in_flight(sim: Simulator, sink: CallbackSink) -> None:
    count = 300
    sim.job_seconds = 1.0

    def submit(index: int) -> str:
        return create_job(sim, f"crowd {index}", callback_url=sink.url)

    with ThreadPoolExecutor(16) as pool:
        job_ids = list(pool.map(submit, range(count)))

    wait_for(lambda: len(sink.bodies) == count, timeout=60)
    assert sorted(callback["job_id"] for callback in sink.bodies) == sorted(job_ids)
    # A callback is counted once its POST has returned, a moment after the sink has the body.
    wait_for(lambda: sim.stats()["callbacks_sent"] == count, timeout=10)


# --- the management command -------------------------------------------------------------------------


def test_command_serves_until_sigterm_and_exits_cleanly(tmp_path: Path) -> None:
    if not (ROOT / "manage.py").exists():
        pytest.skip("no manage.py yet")
    env = {
        **os.environ,
        "SHORTAPI_KEY": "cmd-key",
        "SHORTAPI_SIMULATOR_JOB_SECONDS": "2",
        "DJANGO_DEBUG": "1",
    }
    command = [sys.executable, "manage.py", "shortapi_simulator", "--port", "0", "--cache-dir", str(tmp_path)]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", line).group(0)
        answer = requests.post(
            f"{url}/api/v1/job/create", json=body(), headers={"Authorization": "Bearer cmd-key"}, timeout=5
        ).json()
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)

    assert line.startswith("ShortAPI simulator on http://127.0.0.1:")
    assert line.strip().endswith("(key: cmd-key, job time: 2s)")
    assert answer["code"] == 0
    assert process.returncode == 0
    assert "Traceback" not in stderr
