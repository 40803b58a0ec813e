"""The result video's download (generations.downloads) treats the provider's URL as user input: every
hop of a redirect is checked like the first (no SSRF through a redirect), and only an MP4 is kept.
Real HTTP on loopback: the provider's host (trusted, as SHORTAPI_BASE_URL is) and an internal host
on another port (not trusted, so its loopback address is refused). See tests/MUTATION.md."""

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generations.downloads import DownloadError, download_to_tempfile

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 1000


class Host:
    """A tiny HTTP server: `routes` maps a path to (status, headers, body); it counts its hits."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str | None], bytes]] = {}
        self.hits: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.hits.append(self.path)
                status, headers, body = host.routes.get(self.path, (404, {}, b"no such path"))
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    if value is not None:  # None: leave the header out (the body ends at the close)
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def provider(settings) -> Iterator[Host]:
    host = Host()
    settings.SHORTAPI_BASE_URL = host.url  # the one trusted host (CONTRACT §6)
    settings.SHORTAPI_READ_TIMEOUT = 5.0
    yield host
    host.stop()


@pytest.fixture
def internal() -> Iterator[Host]:
    """Something on our own network that a redirect must never reach."""
    host = Host()
    host.routes["/secret.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    yield host
    host.stop()


def test_a_video_from_the_providers_host_is_downloaded(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    tmp, size = download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    with tmp:
        assert tmp.read() == MP4 and size == len(MP4)


def test_a_redirect_from_the_providers_host_to_a_private_address_is_refused(provider, internal):
    provider.routes["/v.mp4"] = (302, {"Location": f"{internal.url}/secret.mp4"}, b"")
    with pytest.raises(DownloadError, match="refused the video URL") as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert caught.value.retryable is False
    assert provider.hits == ["/v.mp4"]
    assert internal.hits == []  # checked before connecting: not one byte went there


def test_a_second_redirect_to_a_private_address_is_refused_too(provider, internal):
    provider.routes["/v.mp4"] = (302, {"Location": "/hop.mp4"}, b"")
    provider.routes["/hop.mp4"] = (307, {"Location": f"{internal.url}/secret.mp4"}, b"")
    with pytest.raises(DownloadError, match="refused the video URL"):
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert provider.hits == ["/v.mp4", "/hop.mp4"]
    assert internal.hits == []


def test_a_redirect_within_the_providers_host_is_followed(provider):
    provider.routes["/v.mp4"] = (302, {"Location": "/cdn/v.mp4"}, b"")
    provider.routes["/cdn/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    tmp, size = download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    tmp.close()
    assert size == len(MP4)


def test_a_file_that_is_not_an_mp4_is_refused_however_it_is_labelled(provider):
    page = b"<html><body>Your video is ready! Click here.</body></html>" * 4
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, page)
    with pytest.raises(DownloadError) as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert str(caught.value) == "the downloaded file is not an MP4 video"
    assert caught.value.retryable is False


def test_a_file_too_short_to_be_an_mp4_is_refused(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4[:11])
    with pytest.raises(DownloadError, match="not an MP4"):
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)


# --- what the host answers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"), [(503, True), (500, True), (429, True), (404, False), (403, False)]
)
def test_an_error_answer_is_retried_only_when_it_may_pass(provider, status, retryable):
    provider.routes["/v.mp4"] = (status, {"Content-Type": "text/plain"}, b"no")
    with pytest.raises(DownloadError, match=f"answered HTTP {status}") as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert caught.value.retryable is retryable


def test_a_page_instead_of_a_video_is_refused_by_its_content_type(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "Text/HTML; charset=utf-8"}, MP4)
    with pytest.raises(DownloadError, match="served text/html, not a video") as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert caught.value.retryable is False


@pytest.mark.parametrize(
    "content_type", ["video/mp4; codecs=avc1", "application/octet-stream", "binary/octet-stream"]
)
def test_a_video_served_as_bytes_or_with_parameters_is_accepted(provider, content_type):
    provider.routes["/v.mp4"] = (200, {"Content-Type": content_type}, MP4)
    tmp, size = download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    tmp.close()
    assert size == len(MP4)


def test_a_video_declared_over_the_cap_is_refused_before_reading_it(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    with pytest.raises(
        DownloadError, match=f"is {len(MP4)} bytes, over the {len(MP4) - 1} byte cap"
    ) as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=len(MP4) - 1)
    assert caught.value.retryable is False


def test_a_video_of_exactly_the_cap_is_accepted(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4", "Content-Length": None}, MP4)
    tmp, size = download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=len(MP4))
    with tmp:
        assert size == len(MP4) and tmp.read(12) == MP4[:12]


def test_a_video_growing_past_the_cap_without_saying_its_size_is_cut_off(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4", "Content-Length": None}, MP4)
    with pytest.raises(DownloadError, match=f"over the {len(MP4) - 1} byte cap") as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=len(MP4) - 1)
    assert caught.value.retryable is False


def test_a_download_over_its_time_limit_is_given_up_and_retried_later(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    with pytest.raises(DownloadError, match="the download took over") as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000, max_seconds=1e-9)
    assert caught.value.retryable is True


def test_the_download_reports_progress_after_each_chunk(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)
    calls: list[None] = []
    tmp, _ = download_to_tempfile(
        f"{provider.url}/v.mp4", max_bytes=10_000, progress=lambda: calls.append(None)
    )
    tmp.close()
    assert len(calls) >= 1


def test_a_redirect_loop_is_given_up_after_three_redirects(provider):
    provider.routes["/v.mp4"] = (302, {"Location": "/v.mp4"}, b"")
    with pytest.raises(DownloadError) as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert str(caught.value) == "too many redirects for the video URL"
    assert caught.value.retryable is False
    assert provider.hits == ["/v.mp4"] * 4  # the first request and three redirects


def test_a_host_that_refuses_the_connection_is_retried_later(settings):
    host = Host()
    url = host.url
    host.stop()  # nothing listens there any more
    settings.SHORTAPI_BASE_URL = url
    with pytest.raises(DownloadError, match="could not fetch the video: ConnectionError") as caught:
        download_to_tempfile(f"{url}/v.mp4", max_bytes=10_000)
    assert caught.value.retryable is True


def test_a_url_that_is_not_http_is_refused_for_good():
    with pytest.raises(DownloadError, match="refused the video URL") as caught:
        download_to_tempfile("file:///etc/passwd", max_bytes=10_000)
    assert caught.value.retryable is False


def test_a_host_that_never_answers_is_given_up_after_the_read_timeout(settings):
    """The connection is accepted but no answer comes: the read timeout (SHORTAPI_READ_TIMEOUT) ends
    the wait, and the download is tried again later. The host holds its answer for 20 s at most, so
    that code without a timeout finishes (and fails this test) instead of hanging."""
    release = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(20)
            self.send_response(200)
            self.send_header("Content-Length", str(len(MP4)))
            self.end_headers()
            self.wfile.write(MP4)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    settings.SHORTAPI_BASE_URL = url
    settings.SHORTAPI_READ_TIMEOUT = 0.5
    try:
        with pytest.raises(DownloadError, match="could not fetch the video: ReadTimeout") as caught:
            download_to_tempfile(f"{url}/v.mp4", max_bytes=10_000)
        assert caught.value.retryable is True
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_video_host_that_does_not_resolve_is_retried_later(monkeypatch):
    """DNS is down or the name not there yet: say which host, and try again later. (The resolver is
    the system's, stood in for: no name lookup leaves this machine.)"""
    import socket

    def no_such_name(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(DownloadError) as caught:
        download_to_tempfile("https://videos.example.com/v.mp4", max_bytes=10_000)
    assert str(caught.value) == "could not resolve videos.example.com (the video host)"
    assert caught.value.retryable is True


def test_a_video_served_without_a_content_type_is_judged_by_its_bytes(provider):
    provider.routes["/v.mp4"] = (200, {}, MP4)  # no Content-Type at all: the ftyp check decides
    tmp, size = download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    tmp.close()
    assert size == len(MP4)


def test_a_video_declaring_exactly_the_cap_is_accepted(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4)  # Content-Length: len(MP4)
    tmp, size = download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=len(MP4))
    tmp.close()
    assert size == len(MP4)


def test_a_video_sent_gzip_encoded_is_stored_decoded(provider):
    import gzip

    packed = gzip.compress(MP4)
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4", "Content-Encoding": "gzip"}, packed)
    tmp, size = download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    with tmp:
        assert (tmp.read(), size) == (MP4, len(MP4))


def test_a_download_that_breaks_off_midway_is_retried_later(provider):
    """The host promises more bytes than it sends, then closes: a broken transfer, tried again."""
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4", "Content-Length": "5000"}, MP4)
    with pytest.raises(DownloadError) as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert str(caught.value).startswith("the video download broke off: ")
    assert caught.value.retryable is True
