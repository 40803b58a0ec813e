"""The result video's download refuses what is not a whole, small enough MP4 from an allowed host,
and sorts each refusal into "try again later" or "give up" (a real HTTP server on loopback)."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generations.downloads import MAX_REDIRECTS, DownloadError, download_to_tempfile

MP4 = b"\0\0\0\x18ftypmp42" + b"\0" * 500


class Host:
    """Answers each path as `routes` says: (status, headers, body), or a callable for odd answers."""

    def __init__(self) -> None:
        self.routes: dict[str, object] = {}
        self.hits: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.hits.append(self.path)
                route = host.routes.get(self.path, (404, {}, b""))
                if callable(route):
                    route(self)
                    return
                status, headers, body = route
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    if value is not None:
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def host(settings) -> Iterator[Host]:
    served = Host()
    settings.SHORTAPI_BASE_URL = served.url  # the one host on loopback that downloads may use
    yield served
    served.close()


def refusal(url: str, **kwargs) -> DownloadError:
    with pytest.raises(DownloadError) as caught:
        download_to_tempfile(url, max_bytes=kwargs.pop("max_bytes", 10_000), **kwargs)
    return caught.value


def test_a_video_is_downloaded_whole(host):
    host.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    calls = []
    target, size = download_to_tempfile(
        f"{host.url}/v.mp4", max_bytes=10_000, progress=lambda: calls.append(1)
    )
    with target:
        assert (size, target.read()) == (len(MP4), MP4)
    assert calls


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (503, True), (403, False), (404, False)]
)
def test_an_error_answer_is_retried_only_when_it_may_pass(host, status, retryable):
    host.routes["/v.mp4"] = (status, {}, b"no")
    error = refusal(f"{host.url}/v.mp4")
    assert str(error) == f"the video host answered HTTP {status}"
    assert error.retryable is retryable


def test_a_page_that_is_not_a_video_is_refused(host):
    host.routes["/v.mp4"] = (200, {"Content-Type": "text/html; charset=utf-8"}, b"<html>nope</html>")
    error = refusal(f"{host.url}/v.mp4")
    assert (str(error), error.retryable) == ("the video URL served text/html, not a video", False)


def test_a_video_declared_over_the_cap_is_refused_before_it_is_read(host):
    host.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    error = refusal(f"{host.url}/v.mp4", max_bytes=100)
    assert (str(error), error.retryable) == (f"the video is {len(MP4)} bytes, over the 100 byte cap", False)


def test_a_video_that_grows_over_the_cap_without_saying_so_is_cut_off(host):
    def undeclared(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(MP4 * 10)

    host.routes["/v.mp4"] = undeclared
    error = refusal(f"{host.url}/v.mp4", max_bytes=1000)
    assert (str(error), error.retryable) == ("the video is over the 1000 byte cap", False)


def test_a_download_that_breaks_off_is_retried(host):
    def broken(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "video/mp4")
        handler.send_header("Content-Length", str(len(MP4) * 4))
        handler.end_headers()
        handler.wfile.write(MP4)  # then the connection ends, a quarter in

    host.routes["/v.mp4"] = broken
    error = refusal(f"{host.url}/v.mp4")
    assert str(error).startswith("the video download broke off") and error.retryable


def test_bytes_that_are_not_an_mp4_are_refused(host):
    host.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, b"GIF89a" + b"\0" * 100)
    host.routes["/short.mp4"] = (200, {"Content-Type": "video/mp4"}, b"\0\0\0\x18ftyp")
    for path in ("/v.mp4", "/short.mp4"):
        error = refusal(f"{host.url}{path}")
        assert (str(error), error.retryable) == ("the downloaded file is not an MP4 video", False)


def test_a_download_that_takes_too_long_is_given_up_for_a_retry(host):
    host.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    # A deadline already past by the first chunk: the check runs after every chunk, whatever the clock.
    error = refusal(f"{host.url}/v.mp4", max_seconds=1e-9)
    assert str(error).startswith("the download took over") and error.retryable


def test_redirects_are_followed_a_few_hops_and_no_further(host):
    host.routes["/v.mp4"] = (302, {"Location": "/hop1"}, b"")
    host.routes["/hop1"] = (302, {"Location": f"{host.url}/final.mp4"}, b"")
    host.routes["/final.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    target, size = download_to_tempfile(f"{host.url}/v.mp4", max_bytes=10_000)
    target.close()
    assert size == len(MP4)

    for hop in range(MAX_REDIRECTS + 1):
        host.routes[f"/loop{hop}"] = (302, {"Location": f"/loop{hop + 1}"}, b"")
    error = refusal(f"{host.url}/loop0")
    assert (str(error), error.retryable) == ("too many redirects for the video URL", False)


def test_a_redirect_to_a_private_address_is_refused_at_that_hop(host):
    """SSRF through a redirect: the first hop is the allowed host, the next points inside."""
    other = Host()  # loopback too, on another port: not the allowed host
    try:
        other.routes["/secret"] = (200, {"Content-Type": "video/mp4"}, MP4)
        host.routes["/v.mp4"] = (302, {"Location": f"{other.url}/secret"}, b"")
        error = refusal(f"{host.url}/v.mp4")
        assert str(error).startswith("refused the video URL") and not error.retryable
        assert other.hits == []
    finally:
        other.close()


def test_an_unresolvable_video_host_is_retried(host):
    error = refusal("http://no-such-host.invalid/v.mp4")
    assert error.retryable and "the video host" in str(error)
