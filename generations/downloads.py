"""Copy a result video from the provider into our storage, safely.

The URL comes from upstream, so it is treated like user input: http(s) only, no private,
loopback or link-local addresses (SSRF), the checked address pinned for the connection, no
proxies, redirects re-checked hop by hop (seedance_site.outbound), a size cap, and a check
that the bytes are an MP4. The host of SHORTAPI_BASE_URL is the one trusted exception
(CONTRACT §6): that is where the simulator serves its videos.
"""

import tempfile
import time
from collections.abc import Callable
from urllib.parse import urljoin

import requests
import urllib3
from django.conf import settings

from seedance_site import outbound

MAX_REDIRECTS = 3
CHUNK = 256 * 1024
ACCEPTED_TYPES = ("video/", "application/octet-stream", "binary/octet-stream")


class DownloadError(Exception):
    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


def download_to_tempfile(
    url: str,
    *,
    max_bytes: int,
    max_seconds: float | None = None,
    progress: Callable[[], None] | None = None,
) -> tuple[tempfile._TemporaryFileWrapper, int]:
    """Return an open temporary file holding the video, and its size in bytes.

    `max_seconds` bounds the whole download (a read timeout only bounds each read, and a host
    trickling bytes never trips it); `progress` is called after every chunk, so the caller can
    tell the world it is still alive.
    """
    give_up_at = time.monotonic() + max_seconds if max_seconds else None
    timeout = (settings.SHORTAPI_CONNECT_TIMEOUT, settings.SHORTAPI_READ_TIMEOUT)
    trusted = [outbound.netloc(settings.SHORTAPI_BASE_URL)]
    for _ in range(MAX_REDIRECTS + 1):
        try:
            # Each hop is looked up, checked and connected to by address (seedance_site.outbound).
            response = outbound.send("GET", url, timeout=timeout, trusted=trusted, stream=True)
        except outbound.OutboundRefused as exc:
            raise DownloadError(f"refused the video URL: {exc}", retryable=False) from None
        except outbound.OutboundUnresolvable as exc:
            raise DownloadError(f"{exc} (the video host)", retryable=True) from None
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
            # read1: whatever one read of the socket brings (at most CHUNK), so the time limit and
            # the progress calls keep their pace even when a host trickles its bytes.
            while chunk := response.raw.read1(CHUNK, decode_content=True):
                size += len(chunk)
                if size > max_bytes:
                    raise DownloadError(f"the video is over the {max_bytes} byte cap", retryable=False)
                target.write(chunk)
                if give_up_at is not None and time.monotonic() > give_up_at:
                    raise DownloadError(f"the download took over {max_seconds:.0f} s", retryable=True)
                if progress is not None:
                    progress()
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
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
