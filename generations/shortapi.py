"""The one module that talks to ShortAPI (CONTRACT §6, shortapi-notes.md).

Every failure is sorted into one of three kinds, because each asks for different handling:
- `RetryLater`: nothing happened upstream that we know of; try the same call again later.
- `GiveUp`: upstream refused the request; trying again will not help.
- `UnknownOutcome`: a create call was sent but no answer we can trust came; the job may exist
  upstream, so creating it again could pay the provider twice. Wait for the callback instead
  (the sweeper fails and refunds the generation if none comes).

A create call is `RetryLater` only when the request provably never reached ShortAPI, or it said
it did nothing: connection refused or unresolvable (urllib3's NewConnectionError), a connect
timeout, a TLS handshake that failed, and HTTP 429, 502 and 503 (a busy service, or a gateway that
could not reach it). Everything else that is not an answer — a reset or a hang-up after sending,
a read timeout, HTTP 504 (a gateway that gave up waiting), 500 and any other 5xx (it may have failed
after creating the job), a 2xx body that is not JSON — is `UnknownOutcome`: the conservative side,
since a duplicate job costs real money and a lost one only a refunded wait. Queries change nothing
upstream, so every query failure is simply `RetryLater`.
"""

import logging
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from django.conf import settings
from urllib3.exceptions import NewConnectionError

logger = logging.getLogger(__name__)

MODEL = "bytedance/seedance-2.0/text-to-video"
# Our model names (CONTRACT §4b) -> the provider's model ids (§6).
MODEL_IDS = {
    "text-to-video": MODEL,
    "image-to-video": "bytedance/seedance-2.0/image-to-video",
    "omni-reference": "bytedance/seedance-2.0/omni-reference",
}
IN_PROGRESS = (0, 1)
SUCCEEDED = 2
FAILED = 3
# Statuses a create call may be retried on: the request did nothing upstream.
CREATE_RETRY_STATUSES = (429, 502, 503)


class ShortApiError(Exception):
    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class RetryLater(ShortApiError):
    pass


class GiveUp(ShortApiError):
    pass


class UnknownOutcome(ShortApiError):
    pass


class NotConfigured(Exception):
    pass


@dataclass(frozen=True)
class CreatedJob:
    job_id: str
    amount: Decimal | None


@dataclass(frozen=True)
class JobState:
    status: int | None
    video_url: str | None
    error: str | None
    raw: dict[str, Any]

    @property
    def in_progress(self) -> bool:
        return self.status in IN_PROGRESS

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCEEDED and bool(self.video_url)

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    @property
    def refunded(self) -> bool:
        """The provider says it refunded the job (seen on failed jobs): it cost us nothing."""
        return self.raw.get("refunded") is True

    def is_job_for(self, *, model: str, args: dict[str, Any]) -> bool:
        """Whether the query answer shows the very job we would have created with `args`.

        Undocumented: the provider's query answer may not echo the model and args. Then we
        cannot tell, and say no: a job id that we cannot tie to the request is never adopted."""
        echoed = self.raw.get("args")
        if self.raw.get("model") != model or not isinstance(echoed, dict):
            return False
        return all(echoed.get(name) == value for name, value in args.items())


_local = threading.local()


def _session() -> requests.Session:
    # One pooled session per thread: keeps connections alive across a worker's jobs.
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = requests.Session()
        session.headers["User-Agent"] = "SeedanceStudio/1.0"
    return session


def is_configured() -> bool:
    return bool(settings.SHORTAPI_KEY)


def _headers() -> dict[str, str]:
    if not settings.SHORTAPI_KEY:
        raise NotConfigured("SHORTAPI_KEY is not set.")
    return {"Authorization": f"Bearer {settings.SHORTAPI_KEY}"}


def _timeout() -> tuple[float, float]:
    return (settings.SHORTAPI_CONNECT_TIMEOUT, settings.SHORTAPI_READ_TIMEOUT)


def _message(body: dict[str, Any]) -> str:
    for key in ("message", "msg", "info"):
        if isinstance(body.get(key), str) and body[key]:
            return body[key]
    return f"code {body.get('code')!r}"


def _decode(response: requests.Response) -> dict[str, Any]:
    """Sort HTTP-level failures; return the JSON body of a 2xx answer."""
    status = response.status_code
    if status == 429 or status >= 500:
        raise RetryLater(f"HTTP {status} from ShortAPI", http_status=status)
    try:
        body = response.json()
    except ValueError:
        if status >= 400:
            raise GiveUp(f"HTTP {status} from ShortAPI", http_status=status) from None
        raise RetryLater(
            f"ShortAPI answered HTTP {status} with a body that is not JSON", http_status=status
        ) from None
    if not isinstance(body, dict):
        raise RetryLater("ShortAPI answered with JSON that is not an object", http_status=status)
    if status >= 400:
        raise GiveUp(f"HTTP {status} from ShortAPI: {_message(body)}", http_status=status)
    return body


def job_args(
    *,
    prompt: str,
    mode: str,
    duration: int,
    aspect_ratio: str,
    model: str = "text-to-video",
    image_urls: list[str] | None = None,
    video_url: str | None = None,
    audio_urls: list[str] | None = None,
    first_last_frame: bool = False,
) -> dict[str, Any]:
    """The create call's `args` for `model` (CONTRACT §6), built in one place so a job can be
    checked against them later. A first/last-frame video takes no aspect ratio (the frames set it)."""
    args: dict[str, Any] = {"prompt": prompt, "mode": mode, "duration": duration}
    if not first_last_frame:
        args["aspect_ratio"] = aspect_ratio
    if model == "image-to-video":
        args["image_urls"] = list(image_urls or [])
        if audio_urls:
            args["audio_urls"] = list(audio_urls)
        args["is_first_last_frame"] = first_last_frame
    elif model == "omni-reference":
        args["video_url"] = video_url
        if image_urls:
            args["image_urls"] = list(image_urls)
        if audio_urls:
            args["audio_urls"] = list(audio_urls)
    elif model != "text-to-video":
        raise ValueError(f"Unknown model {model!r}.")
    return args


def _never_sent(exc: BaseException) -> bool:
    """True when the error proves no connection was made, so the request never left."""
    stack: list[object] = [exc]
    seen: set[int] = set()
    while stack:
        error = stack.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if isinstance(error, NewConnectionError | requests.ConnectTimeout | requests.exceptions.SSLError):
            return True
        # requests wraps urllib3's errors (MaxRetryError.reason, args, causes): look inside.
        stack.extend([getattr(error, "reason", None), error.__cause__, error.__context__, *error.args])
    return False


def _decode_create(response: requests.Response) -> dict[str, Any]:
    status = response.status_code
    if status in CREATE_RETRY_STATUSES:
        raise RetryLater(f"HTTP {status} from ShortAPI", http_status=status)
    if status >= 500:
        raise UnknownOutcome(f"HTTP {status} from ShortAPI on create: the job may exist", http_status=status)
    try:
        return _decode(response)
    except RetryLater as exc:
        # A 2xx whose body we cannot read: the job was most likely made.
        raise UnknownOutcome(f"{exc} on create: the job may exist", http_status=status) from None


def create_job(
    *,
    prompt: str,
    mode: str,
    duration: int,
    aspect_ratio: str,
    callback_url: str | None,
    model: str = "text-to-video",
    image_urls: list[str] | None = None,
    video_url: str | None = None,
    audio_urls: list[str] | None = None,
    first_last_frame: bool = False,
) -> CreatedJob:
    args = job_args(
        prompt=prompt,
        mode=mode,
        duration=duration,
        aspect_ratio=aspect_ratio,
        model=model,
        image_urls=image_urls,
        video_url=video_url,
        audio_urls=audio_urls,
        first_last_frame=first_last_frame,
    )
    payload: dict[str, Any] = {"model": MODEL_IDS[model], "args": args}
    if callback_url:
        payload["callback_url"] = callback_url
    url = f"{settings.SHORTAPI_BASE_URL}/api/v1/job/create"
    try:
        response = _session().post(url, json=payload, headers=_headers(), timeout=_timeout())
    except (requests.Timeout, requests.ConnectionError) as exc:
        name = exc.__class__.__name__
        if _never_sent(exc):
            raise RetryLater(f"could not connect to ShortAPI: {name}") from None
        # The request went out (a read timeout, a reset or a hang-up after sending): the job
        # may exist upstream.
        raise UnknownOutcome(f"no answer from ShortAPI to the create call: {name}") from None
    body = _decode_create(response)
    if body.get("code") != 0:
        raise GiveUp(f"ShortAPI refused the job: {_message(body)}", http_status=response.status_code)
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    job_id = data.get("job_id")
    if not isinstance(job_id, str | int) or not str(job_id):
        raise UnknownOutcome("ShortAPI accepted the job but sent no job_id")
    try:
        amount = Decimal(str(data["amount"])) if data.get("amount") is not None else None
    except (InvalidOperation, ValueError):
        logger.warning("ShortAPI sent an amount that is not a decimal: %r", data.get("amount"))
        amount = None
    return CreatedJob(job_id=str(job_id), amount=amount)


def query_job(job_id: str) -> JobState:
    url = f"{settings.SHORTAPI_BASE_URL}/api/v1/job/query"
    try:
        response = _session().get(url, params={"id": job_id}, headers=_headers(), timeout=_timeout())
    except (requests.Timeout, requests.ConnectionError) as exc:
        # A query changes nothing upstream: always safe to ask again.
        raise RetryLater(f"could not query ShortAPI: {exc.__class__.__name__}") from None
    body = _decode(response)
    if body.get("code") != 0:
        raise GiveUp(f"ShortAPI query failed: {_message(body)}", http_status=response.status_code)
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    status = data.get("status")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    video_url = None
    result = data.get("result")
    if isinstance(result, dict):
        videos = result.get("videos")
        if isinstance(videos, list) and videos and isinstance(videos[0], dict):
            url_value = videos[0].get("url")
            video_url = url_value if isinstance(url_value, str) and url_value else None
    error = data.get("error") if isinstance(data.get("error"), str) and data.get("error") else None
    return JobState(status=status, video_url=video_url, error=error, raw=data)
