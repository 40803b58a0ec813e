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
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.hits: list[str] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host.hits.append(self.path)
                status, headers, body = host.routes.get(self.path, (404, {}, b"no such path"))
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
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
    with pytest.raises(DownloadError, match="not an MP4") as caught:
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
    assert caught.value.retryable is False


def test_a_file_too_short_to_be_an_mp4_is_refused(provider):
    provider.routes["/v.mp4"] = (200, {"Content-Type": "video/mp4"}, MP4[:11])
    with pytest.raises(DownloadError, match="not an MP4"):
        download_to_tempfile(f"{provider.url}/v.mp4", max_bytes=10_000)
