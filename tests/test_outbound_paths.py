"""seedance_site.outbound's edges: a URL whose port is not a port, a deadline on an https exchange
(the watchdog must see the TLS connection's socket too), and a watchdog that finds a socket closed
already. Nothing here leaves the loopback."""

import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from generations.downloads import DownloadError, download_to_tempfile
from seedance_site import outbound


@pytest.mark.parametrize("url", ["http://videos.example:99999/v.mp4", "https://videos.example:port/v.mp4"])
def test_a_url_whose_port_is_not_a_port_is_refused_before_any_lookup(url, monkeypatch):
    looked_up: list[str] = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *args, **kwargs: looked_up.append(host))

    with pytest.raises(outbound.OutboundRefused, match=r"^not a valid URL: "):
        outbound.resolve(url)
    with pytest.raises(DownloadError, match=r"^refused the video URL: not a valid URL") as refused:
        download_to_tempfile(url, max_bytes=1024)

    assert refused.value.retryable is False
    assert looked_up == []


@pytest.fixture
def tls_context(tmp_path) -> tuple[ssl.SSLContext, str]:
    """A server context for the name videos.test, and the certificate to trust for it."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=videos.test"]
        + ["-addext", "subjectAltName=DNS:videos.test"],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, str(cert)


class Trickle(BaseHTTPRequestHandler):
    """A byte of an endless header every 0.1 s: well within any read timeout, so only a deadline on
    the whole exchange ends it."""

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.parse_request():
            return
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while True:
                self.wfile.write(b"X")
                self.wfile.flush()
                threading.Event().wait(0.1)
        except OSError:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_a_deadline_cuts_off_an_https_answer_that_trickles_in(tls_context, monkeypatch):
    context, cert = tls_context
    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    port = server.server_address[1]
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *args, **kwargs: real("127.0.0.1" if host == "videos.test" else host, *args, **kwargs),
    )
    errors: list[BaseException] = []

    def send() -> None:
        try:
            outbound.send(
                "GET",
                f"https://videos.test:{port}/v.mp4",
                allow_private=True,
                verify=cert,
                timeout=(2, 2),
                deadline=1.0,
            )
        except BaseException as exc:  # noqa: BLE001 - judged by the test below
            errors.append(exc)

    # A daemon thread: without its deadline the exchange never ends, and the test must fail, not hang.
    sender = threading.Thread(target=send, daemon=True)
    try:
        sender.start()
        sender.join(timeout=30)
        assert not sender.is_alive(), "the deadline did not cut the https exchange off"
        # Only the watchdog says "no complete answer within"; a read timeout never fires here.
        [error] = errors
        assert isinstance(error, requests.Timeout), error
        assert str(error) == "no complete answer within 1 s"
    finally:
        server.shutdown()
        server.server_close()


def test_the_watchdog_cuts_every_socket_even_when_one_has_closed_already():
    closed = socket.socket()
    closed.close()  # its request failed and urllib3 closed it just as the deadline came
    live, peer = socket.socketpair()
    peer.settimeout(5)
    fired = threading.Event()

    outbound._cut([closed, live], fired)

    assert fired.is_set()
    assert peer.recv(1) == b""  # the live one was shut down: its peer sees the end of the stream
    live.close()
    peer.close()
