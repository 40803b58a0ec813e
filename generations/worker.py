"""The RQ worker classes. They add one thing to RQ's: the sweeper runs every minute.

The sweeper books its own next run at the next whole minute under a job id named for that
minute, so any number of workers booking it at once still make one run per minute.
Maintenance (at start and every 10 minutes) books it again in case Redis lost it.
"""

import time
from datetime import UTC, datetime

import django_rq
from django.db import close_old_connections
from rq import SimpleWorker as RQSimpleWorker
from rq import Worker as RQWorker

SWEEP_EVERY = 60


def schedule_sweeper() -> None:
    next_minute = (int(time.time()) // SWEEP_EVERY + 1) * SWEEP_EVERY
    django_rq.get_queue("default").enqueue_at(
        datetime.fromtimestamp(next_minute, tz=UTC),
        "generations.jobs.sweep",
        job_id=f"sweeper-{next_minute}",
        result_ttl=300,
        failure_ttl=86400,
    )


class _SweeperMixin:
    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[misc]
        schedule_sweeper()


class Worker(_SweeperMixin, RQWorker):
    pass


class SimpleWorker(_SweeperMixin, RQSimpleWorker):
    """Runs jobs in the worker process itself: no fork per job, so no fresh database connection
    per job. A long-lived process must drop connections that the database has closed."""

    def execute_job(self, job, queue) -> None:  # type: ignore[no-untyped-def]
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()
