"""`POST /webhooks/shortapi/<token>/`: the callback_url we hand to ShortAPI (CONTRACT §5, §6).

A callback is a hint, never the truth: it makes us query the job now. Its body is read for
one thing only: the job id, when we have none yet because the worker died between the
create call and saving its answer. Even then the id is only a candidate: a worker asks
upstream about it and takes it only if that job is this generation's (jobs.adopt_job), since
anyone who has seen the callback URL can post any body to it.
"""

import json
import logging

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from generations.models import Generation
from generations.services import enqueue, generation_id_from_callback_token
from seedance_site.logs import log_context

logger = logging.getLogger(__name__)
MAX_BODY = 64 * 1024


def shortapi_callback(request: HttpRequest, token: str) -> JsonResponse:
    generation_id = generation_id_from_callback_token(token)
    if generation_id is None:
        return JsonResponse({"error": {"code": "not_found", "message": "Unknown callback."}}, status=404)
    with log_context(generation=generation_id):
        return _handle(request, generation_id)


# Decorators applied by assignment: mutmut skips decorated functions (tests/MUTATION.md).
shortapi_callback = csrf_exempt(require_POST(shortapi_callback))


def _handle(request: HttpRequest, generation_id: str) -> JsonResponse:
    generation = Generation.objects.filter(pk=generation_id).only("id", "status", "upstream_job_id").first()
    if generation is None:
        return JsonResponse({"error": {"code": "not_found", "message": "Unknown callback."}}, status=404)
    if (
        generation.status in (Generation.Status.QUEUED, Generation.Status.SUBMITTING)
        and not generation.upstream_job_id
    ):
        job_id = _job_id_from_body(request)
        if job_id:
            enqueue("generations.jobs.adopt_job", str(generation.pk), job_id)
    if generation.status == Generation.Status.RUNNING:
        enqueue("generations.jobs.poll", str(generation.pk))
    return JsonResponse({"ok": True})


def _job_id_from_body(request: HttpRequest) -> str | None:
    if len(request.body) > MAX_BODY:
        return None
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    job_id = data.get("job_id") or data.get("id")
    if isinstance(job_id, str | int) and not isinstance(job_id, bool) and 0 < len(str(job_id)) <= 128:
        return str(job_id)
    return None
