"""HTTP requests to an address somebody else chose: a provider's result link today, users' own
webhook endpoints next. What such a URL may not do is point us at our own network (SSRF).

- http and https only;
- the host is looked up once; every address it has must be public (unless the caller allows
  private ones, or names the host as trusted); and the connection goes to the address that was
  checked. There is no second lookup between the check and the connect for a rebinding DNS
  server to answer differently;
- TLS is still checked against the host name (SNI and the certificate), not the address;
- proxy variables (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY) and .netrc are ignored: a proxy would make
  its own lookup and could reach exactly what was refused here;
- redirects are never followed: a caller that follows one calls again with the new URL, so each
  hop is checked like the first.

Any method works (`send("POST", url, json=...)`), so webhooks can use the same rules as downloads.
A `deadline` bounds the whole exchange, however slowly the other side trickles its bytes: requests'
own timeouts count per read, so a server sending one byte every few seconds would never trip them.
"""

import ipaddress
import socket
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class OutboundRefused(Exception):
    """The URL may not be fetched: not http(s), no host, or an address that is not public."""


class OutboundUnresolvable(Exception):
    """The host has no address right now; trying again later may work."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as in the URL, lower-cased, without brackets
    port: int
    address: str  # the checked address the connection goes to
    host_header: str  # what the Host header says: the URL's own host[:port]


def netloc(url: str) -> tuple[str, int]:
    """(host, port) of a URL, the port filled in from the scheme: how trusted hosts are named."""
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    return (parts.hostname or "").lower(), parts.port or default_port


def resolve(url: str, *, allow_private: bool = False, trusted: Iterable[tuple[str, int]] = ()) -> Target:
    """Look the URL's host up once and check every address; raise OutboundRefused or
    OutboundUnresolvable. A (host, port) in `trusted` skips the address check, never the pinning."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutboundRefused(f"not a valid URL: {url[:200]}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused(f"only http(s) URLs may be fetched, not {url[:200]}")
    host, port = netloc(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise OutboundUnresolvable(f"could not resolve {host}") from None
    # getaddrinfo answers at least one address or raises: never an empty list.
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not allow_private and (host, port) not in set(trusted):
        for address in addresses:
            if not address.is_global:
                raise OutboundRefused(f"{host} resolves to {address}, which is not a public address")
    return Target(
        scheme=parts.scheme,
        host=host,
        port=port,
        address=str(addresses[0]),
        host_header=parts.netloc.rpartition("@")[2],
    )


def _watched_pools(sockets: list[socket.socket]) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections hand every socket they open to `sockets`, so that
    a watchdog can cut them off (urllib3 offers no hook for the socket itself).

    What is handed over is a duplicate of the socket: TLS wraps the socket urllib3 opened into a new
    object and detaches the old one, which is then left without a descriptor (shutting it down would
    fail, "closed already", and the TLS exchange would go on past the deadline). A duplicate names
    the same connection, so shutting it down cuts that one off too; `send` closes the duplicates."""

    class Watched(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            sockets.append(sock.dup())
            return sock

    class WatchedTLS(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            sock = super()._new_conn()
            sockets.append(sock.dup())
            return sock

    class Pool(HTTPConnectionPool):
        ConnectionCls = Watched

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = WatchedTLS

    return {"http": Pool, "https": TLSPool}


class _PinnedAdapter(HTTPAdapter):
    """Connects to the address in the URL while TLS speaks to, and checks the certificate of,
    the host name the address was looked up for."""

    def __init__(self, server_hostname: str, sockets: list[socket.socket] | None = None) -> None:
        self._server_hostname = server_hostname
        self._sockets = sockets
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        # urllib3 uses these for https only (they are dropped for plain http pools).
        kwargs["server_hostname"] = self._server_hostname
        kwargs["assert_hostname"] = self._server_hostname
        super().init_poolmanager(*args, **kwargs)
        if self._sockets is not None:
            self.poolmanager.pool_classes_by_scheme = _watched_pools(self._sockets)


def _cut(sockets: list[socket.socket], fired: threading.Event) -> None:
    """The watchdog: shut every socket down, which wakes a blocked read at once (it sees the
    end of the stream) in whichever thread is waiting on it."""
    fired.set()
    for sock in list(sockets):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already


def send(
    method: str,
    url: str,
    *,
    timeout: tuple[float, float],
    allow_private: bool = False,
    trusted: Iterable[tuple[str, int]] = (),
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
    verify: bool | str = True,
    deadline: float | None = None,
    **body: Any,
) -> requests.Response:
    """One request, no redirects followed, to the address `resolve` checked. `body` is passed to
    requests as is (`data=` or `json=`). Network failures raise requests' own exceptions.

    With a `deadline` (seconds), an exchange still going on by then is cut off and raises
    requests.Timeout: the connection, the TLS handshake, sending, the answer's headers, and its body
    too unless `stream` (then the caller reads the body on its own terms).

    A redirect comes back as the response: its Location is relative to `url`, not to the address."""
    target = resolve(url, allow_private=allow_private, trusted=trusted)
    parts = urlsplit(url)
    literal = f"[{target.address}]" if ":" in target.address else target.address
    pinned = urlunsplit((parts.scheme, f"{literal}:{target.port}", parts.path or "/", parts.query, ""))
    sockets: list[socket.socket] | None = [] if deadline is not None else None
    session = requests.Session()
    session.trust_env = False  # no proxies, no .netrc, no REQUESTS_CA_BUNDLE from the environment
    session.mount(f"{target.scheme}://", _PinnedAdapter(server_hostname=target.host, sockets=sockets))
    fired = threading.Event()
    watchdog = None
    if sockets is not None and deadline is not None:
        watchdog = threading.Timer(deadline, _cut, args=(sockets, fired))
        watchdog.daemon = True
        watchdog.start()
    try:
        response = session.request(
            method,
            pinned,
            headers={"Host": target.host_header, **(headers or {})},
            timeout=timeout,
            allow_redirects=False,
            stream=stream,
            verify=verify,
            **body,
        )
    except requests.RequestException as exc:
        if fired.is_set():
            raise requests.Timeout(f"no complete answer within {deadline:g} s") from exc
        raise
    finally:
        if watchdog is not None:
            watchdog.cancel()
            for sock in sockets or ():
                sock.close()  # the duplicates only: the connection itself stays with the response
    if fired.is_set():
        # Cut off mid-answer: http.client takes the end of the stream as the end of the headers
        # (or the body), so what came back is a fragment, not the answer.
        response.close()
        raise requests.Timeout(f"no complete answer within {deadline:g} s")
    return response
