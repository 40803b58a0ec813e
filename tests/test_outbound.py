"""Requests to addresses somebody else chose (seedance_site.outbound), and the video download
built on it: the address that was checked is the address connected to, proxies are ignored, TLS
is checked against the name, and any method works (for webhooks to users' servers next).

No test here sends a packet beyond the loopback: public addresses are only ever "resolved" by a
stand-in resolver, and a guard on socket.connect refuses (and records) any connect to them."""

import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generations.downloads import DownloadError, download_to_tempfile
from seedance_site import outbound

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2000
PUBLIC = "93.184.216.34"  # a public address; never connected to (see no_public_connects)


class Recorder(BaseHTTPRequestHandler):
    """Serves a tiny MP4 on GET, records POSTs, and notes every request with its Host header."""

    def do_GET(self) -> None:
        self.server.seen.append(("GET", self.path, self.headers.get("Host"), b""))
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(MP4)))
        self.end_headers()
        self.wfile.write(MP4)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(("POST", self.path, self.headers.get("Host"), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def serve(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer((host, 0), Recorder)
    server.seen = []
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    server = serve()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_public_connects(monkeypatch) -> list:
    """Record every connect; refuse, before any packet leaves, any that is not to the loopback."""
    attempts: list[tuple[str, int]] = []
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append((address[0], address[1]))
            if not ipaddress.ip_address(address[0]).is_loopback:
                raise ConnectionRefusedError(f"test guard: no connect to {address[0]}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Answer lookups of the named hosts from `answers`, one entry per lookup (the last one
    repeats), like a DNS server whose answer changes; every other name goes to the real resolver."""
    looked_up: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            looked_up.append(host)
            queue = answers[host]
            address = queue.pop(0) if len(queue) > 1 else queue[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def test_a_rebinding_dns_answer_cannot_reach_the_loopback(server, monkeypatch, no_public_connects, settings):
    """The review's rebinding window: the host is public when checked and 127.0.0.1 when connected."""
    settings.SHORTAPI_BASE_URL = "https://api.shortapi.ai"
    port = server.server_address[1]
    looked_up = fake_dns(monkeypatch, {"rebind.test": [PUBLIC, "127.0.0.1"]})
    with pytest.raises(DownloadError) as error:
        download_to_tempfile(f"http://rebind.test:{port}/v.mp4", max_bytes=10_000)
    assert error.value.retryable
    assert looked_up == ["rebind.test"]  # looked up once, for the check
    assert no_public_connects == [(PUBLIC, port)]  # and the checked address is the one dialled
    assert server.seen == []  # the loopback server never heard from us


def test_proxy_variables_are_ignored_for_downloads(server, monkeypatch, settings):
    proxy = serve()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.server_address[1]}")
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings.SHORTAPI_BASE_URL = url  # the trusted host, as the simulator is
        tmp, size = download_to_tempfile(f"{url}/v.mp4", max_bytes=10_000)
        with tmp:
            assert size == len(MP4) and tmp.read() == MP4
        assert proxy.seen == []
        assert [(m, p) for m, p, _, _ in server.seen] == [("GET", "/v.mp4")]
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://[::1]/x",
        "http://10.0.0.8/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http:///x",
    ],
)
def test_private_addresses_and_other_schemes_are_refused_before_any_connect(url, no_public_connects):
    with pytest.raises(outbound.OutboundRefused):
        outbound.send("GET", url, timeout=(1, 1))
    assert no_public_connects == []


def test_every_address_of_a_name_must_be_public(monkeypatch, no_public_connects):
    real = socket.getaddrinfo

    def two_answers(host, port, *args, **kwargs):
        if host == "mixed.test":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC, port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("192.168.1.1", port)),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", two_answers)
    with pytest.raises(outbound.OutboundRefused, match=r"192\.168\.1\.1"):
        outbound.send("GET", "http://mixed.test/x", timeout=(1, 1))
    assert no_public_connects == []


def test_a_post_goes_to_the_checked_address_with_the_host_name(server, monkeypatch, no_public_connects):
    """What a webhook delivery to a user's server will do (allowed onto the loopback here, as
    WEBHOOK_ALLOW_PRIVATE_ADDRESSES allows in tests)."""
    port = server.server_address[1]
    looked_up = fake_dns(monkeypatch, {"hooks.test": ["127.0.0.1", "127.0.0.2"]})
    response = outbound.send(
        "POST",
        f"http://hooks.test:{port}/receive?x=1",
        json={"id": "evt_1"},
        headers={"webhook-id": "evt_1"},
        allow_private=True,
        timeout=(2, 2),
    )
    assert response.status_code == 204
    assert server.seen == [
        ("POST", "/receive?x=1", f"hooks.test:{port}", json.dumps({"id": "evt_1"}).encode())
    ]
    assert looked_up == ["hooks.test"] and no_public_connects == [("127.0.0.1", port)]
    with pytest.raises(outbound.OutboundRefused):
        outbound.send("POST", f"http://hooks.test:{port}/receive", json={}, timeout=(2, 2))


def test_redirects_are_returned_not_followed(monkeypatch):
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        response = outbound.send(
            "GET", f"http://127.0.0.1:{server.server_address[1]}/", allow_private=True, timeout=(2, 2)
        )
        assert response.status_code == 302 and response.headers["Location"].endswith("/elsewhere")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def certificate(tmp_path) -> tuple[str, str]:
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=videos.test",
            "-addext",
            "subjectAltName=DNS:videos.test",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


def test_tls_is_checked_against_the_name_while_the_address_is_pinned(certificate, monkeypatch):
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = serve(tls=context)
    port = server.server_address[1]
    fake_dns(monkeypatch, {"videos.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    try:
        response = outbound.send(
            "GET", f"https://videos.test:{port}/v.mp4", allow_private=True, verify=cert, timeout=(2, 2)
        )
        assert response.status_code == 200 and response.content == MP4
        assert server.seen[-1][2] == f"videos.test:{port}"
        # The same address under a name the certificate does not carry: refused.
        with pytest.raises(outbound.requests.exceptions.SSLError):
            outbound.send(
                "GET", f"https://other.test:{port}/v.mp4", allow_private=True, verify=cert, timeout=(2, 2)
            )
    finally:
        server.shutdown()
        server.server_close()


class Trickle(BaseHTTPRequestHandler):
    """Answers one byte at a time, a byte every 0.1 s, for as long as anyone listens: each read
    gets a byte well within any per-read timeout, so only a deadline on the whole exchange ends it."""

    def handle_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.parse_request():
            return
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while True:
                self.wfile.write(b"X")  # an endless header name
                self.wfile.flush()
                threading.Event().wait(0.1)
        except OSError:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def test_a_deadline_cuts_off_an_answer_that_trickles_in_under_every_read_timeout():
    from concurrent.futures import ThreadPoolExecutor

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    def send_with_deadline(deadline: float) -> BaseException | None:
        # In a thread: without its deadline the exchange would go on for as long as the server
        # trickles, so the test waits for it with a deadline of its own rather than hang.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(
                outbound.send, "POST", url, data=b"{}", allow_private=True, timeout=(1, 1), deadline=deadline
            ).exception(timeout=60)

    try:
        # Only the deadline's watchdog says "no complete answer within": a read timeout (which never
        # fires here, a byte comes every 0.1 s) would raise another error.
        for deadline in (1.0, 3.0):
            error = send_with_deadline(deadline)
            assert isinstance(error, outbound.requests.Timeout), error
            assert str(error) == f"no complete answer within {deadline:g} s"
    finally:
        server.shutdown()
        server.server_close()
