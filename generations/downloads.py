"""Copy a result video from the provider into our storage, safely.

The URL comes from upstream, so it is treated like user input: http(s) only, no private,
loopback or link-local addresses (SSRF), redirects re-checked hop by hop, a size cap, and
a check that the bytes are an MP4. The host of SHORTAPI_BASE_URL is the one trusted
exception (CONTRACT §6): that is where the simulator serves its videos.
"""

import ipaddress
import socket
import tempfile
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings

MAX_REDIRECTS = 3
CHUNK = 256 * 1024
ACCEPTED_TYPES = ("video/", "application/octet-stream", "binary/octet-stream")


class DownloadError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def _netloc(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    default_port = 443 if parts.scheme == "https" else 80
    return (parts.hostname or "").lower(), parts.port or default_port


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadError(f"refused a video URL that is not http(s): {url[:200]}", retryable=False)
    host, port = _netloc(url)
    if (host, port) == _netloc(settings.SHORTAPI_BASE_URL):
        return
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise DownloadError(f"could not resolve the video host {host}", retryable=True) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise DownloadError(
                f"refused the video host {host}: {address} is not a public address", retryable=False
            )


def download_to_tempfile(url: str, *, max_bytes: int) -> tuple[tempfile._TemporaryFileWrapper, int]:
    """Return an open temporary file holding the video, and its size in bytes."""
    session = requests.Session()
    timeout = (settings.SHORTAPI_CONNECT_TIMEOUT, settings.SHORTAPI_READ_TIMEOUT)
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url)
        try:
            response = session.get(url, stream=True, timeout=timeout, allow_redirects=False)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise DownloadError(
                f"could not fetch the video: {exc.__class__.__name__}", retryable=True
            ) from None
        if response.is_redirect:
            url = urljoin(url, response.headers.get("Location", ""))
            response.close()
            continue
        break
    else:
        raise DownloadError("too many redirects for the video URL", retryable=False)

    with response:
        status = response.status_code
        if status == 429 or status >= 500:
            raise DownloadError(f"the video host answered HTTP {status}", retryable=True)
        if status != 200:
            raise DownloadError(f"the video host answered HTTP {status}", retryable=False)
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type and not content_type.startswith(ACCEPTED_TYPES):
            raise DownloadError(f"the video URL served {content_type}, not a video", retryable=False)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise DownloadError(
                f"the video is {int(declared)} bytes, over the {max_bytes} byte cap", retryable=False
            )

        target = tempfile.NamedTemporaryFile(suffix=".mp4")
        size = 0
        try:
            for chunk in response.iter_content(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"the video is over the {max_bytes} byte cap", retryable=False)
                target.write(chunk)
        except requests.RequestException as exc:
            target.close()
            raise DownloadError(
                f"the video download broke off: {exc.__class__.__name__}", retryable=True
            ) from None
        except DownloadError:
            target.close()
            raise
    target.flush()
    target.seek(0)
    head = target.read(12)
    target.seek(0)
    if len(head) < 12 or head[4:8] != b"ftyp":
        target.close()
        raise DownloadError("the downloaded file is not an MP4 video", retryable=False)
    return target, size
