"""A user's webhook endpoint, on the loopback: it answers each POST with the next status of its
script (the last one repeats), optionally after a pause, and keeps every request it got."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    statuses: list[int] = field(default_factory=lambda: [204])
    delay: float = 0.0
    # Answer a byte every 0.2 s for `delay` seconds, so that no single read ever waits long.
    trickle: bool = False
    location: str = ""
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self
        self._lock = threading.Lock()
        self._stop = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), body))
                    status = receiver.statuses[min(len(receiver.requests), len(receiver.statuses)) - 1]
                if receiver.trickle:
                    self._trickle(receiver.delay)
                    return
                if receiver.delay:
                    receiver._stop.wait(receiver.delay)
                try:
                    self.send_response(status)
                    if receiver.location:
                        self.send_header("Location", receiver.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender hung up first: that is what a timeout looks like from here

            def _trickle(self, seconds: float) -> None:
                self.close_connection = True
                try:
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    for _ in range(int(seconds / 0.2)):
                        if receiver._stop.wait(0.2):
                            return
                        self.wfile.write(b"z")
                        self.wfile.flush()
                    self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

            def do_GET(self) -> None:
                with receiver._lock:
                    receiver.requests.append(Received(self.path, dict(self.headers.items()), b""))
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/seedance"

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
