"""The baseline the pipeline is measured against: the obvious worker that creates the job and
then sleeps between queries until it is done, holding the worker the whole time."""

import time

from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from generations import shortapi
from generations.downloads import download_to_tempfile
from generations.models import Generation

SLEEP = 5.0


def naive_generate(generation_id: str) -> None:
    generation = Generation.objects.get(pk=generation_id)
    job = shortapi.create_job(
        prompt=generation.prompt,
        mode=generation.mode,
        duration=generation.duration,
        aspect_ratio=generation.aspect_ratio,
        callback_url=None,
    )
    while True:
        time.sleep(SLEEP)
        state = shortapi.query_job(job.job_id)
        if state.succeeded or state.failed:
            break
    if state.succeeded:
        tmp, size = download_to_tempfile(state.video_url, max_bytes=200 * 1024 * 1024)
        with tmp:
            name = default_storage.save(f"videos/naive/{generation.pk}.mp4", File(tmp))
        Generation.objects.filter(pk=generation_id).update(
            status="succeeded",
            video=name,
            video_bytes=size,
            finished_at=timezone.now(),
            upstream_job_id=job.job_id,
        )
    else:
        Generation.objects.filter(pk=generation_id).update(status="failed", finished_at=timezone.now())
