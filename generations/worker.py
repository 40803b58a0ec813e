"""The RQ worker classes. They add to RQ's: the sweeper runs every minute; the time each job
takes can be counted per job type (WORKER_JOB_TIMINGS, read by bench/pipeline.py); and
`ThreadedWorker` runs several job loops in one process.

The sweeper books its own next run at the next whole minute under a job id named for that
minute, so any number of workers booking it at once still make one run per minute.
Maintenance (at start and every 10 minutes) books it again in case Redis lost it.
"""

import logging
import threading
import time
from datetime import UTC, datetime

from django.conf import settings
from django.db import close_old_connections, connections
from rq import Queue
from rq import SimpleWorker as RQSimpleWorker
from rq import Worker as RQWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.scheduler import RQScheduler
from rq.scheduler import run as run_scheduler
from rq.timeouts import TimerDeathPenalty

from seedance_site.queues import get_queue

logger = logging.getLogger(__name__)

SWEEP_EVERY = 60
STOP_CHECK_SECONDS = 3
# How long a stopping worker waits for its scheduler thread (one pass of its loop, normally).
SCHEDULER_STOP_SECONDS = 30
# A Redis hash: "<function>:count", ":seconds" and ":cpu_seconds" for every job a worker ran.
JOB_TIMINGS_KEY = "seedance:job-timings"


def schedule_sweeper() -> None:
    next_minute = (int(time.time()) // SWEEP_EVERY + 1) * SWEEP_EVERY
    get_queue("default").enqueue_at(
        datetime.fromtimestamp(next_minute, tz=UTC),
        "generations.jobs.sweep",
        job_id=f"sweeper-{next_minute}",
        result_ttl=300,
        failure_ttl=86400,
    )


def job_timings(connection) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    """{function: {"count": n, "seconds": wall total, "cpu_seconds": CPU total}}, as counted."""
    timings: dict[str, dict[str, float]] = {}
    for field, value in connection.hgetall(JOB_TIMINGS_KEY).items():
        name, _, kind = field.decode().rpartition(":")
        timings.setdefault(name, {"count": 0, "seconds": 0.0, "cpu_seconds": 0.0})[kind] = float(value)
    return timings


LOW_QUEUE = "low"


class _SweeperMixin:
    def __init__(self, queues, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        # Every worker also takes the "low" queue, after the ones it was named (RQ empties the
        # queues in order), so `rqworker default` carries posters without a second command.
        queues = [queues] if isinstance(queues, str | Queue) else list(queues)
        names = [q if isinstance(q, str) else q.name for q in queues]
        if LOW_QUEUE not in names:
            queues.append(LOW_QUEUE)  # RQ makes it a queue of its queue_class, on its connection
        super().__init__(queues, *args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        super().run_maintenance_tasks()  # type: ignore[misc]
        schedule_sweeper()


class Worker(_SweeperMixin, RQWorker):
    pass


class _ThreadScheduler(RQScheduler):
    """RQ's scheduler (it moves due scheduled jobs, every poll among them, onto their queues) in a
    thread of the worker rather than in a process forked from it. A fork copies only the thread
    that calls it: a lock another thread held at that instant (stderr's buffer while a job loop
    logs, a Redis pool's) stays held in the child for ever, the child hangs on it, and no poll is
    ever due again. ThreadedWorker's loops run while RQ would fork; SimpleWorker has RQ's command
    listener thread. Neither forks for a job, so nothing is forked beside this thread either.
    (`Worker`, which forks a process for every job, keeps RQ's scheduler process.) The worker's
    main thread takes the signals and stops this thread, which gives its locks back."""

    def start(self):  # type: ignore[no-untyped-def]
        self._status = self.Status.STARTED
        self._process = threading.Thread(target=run_scheduler, args=(self,), name="rq-scheduler", daemon=True)
        self._process.start()
        return self._process

    def _install_signal_handlers(self) -> None:
        pass  # only the main thread may set them


class SimpleWorker(_SweeperMixin, RQSimpleWorker):
    """Runs jobs in the worker process itself: no fork per job, so no fresh database connection
    per job. A long-lived process must drop connections that the database has closed (and, with
    the PostgreSQL pool, gives its connection back between jobs). Its scheduler is a thread
    (_ThreadScheduler)."""

    def execute_job(self, job, queue) -> None:  # type: ignore[no-untyped-def]
        started, cpu_started = time.perf_counter(), time.thread_time()
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()
            if settings.WORKER_JOB_TIMINGS:
                self._count(job.func_name, time.perf_counter() - started, time.thread_time() - cpu_started)

    def _count(self, func_name: str, seconds: float, cpu_seconds: float) -> None:
        """Wall time, and this thread's CPU time (which a busy machine does not inflate)."""
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hincrby(JOB_TIMINGS_KEY, f"{func_name}:count", 1)
                pipe.hincrbyfloat(JOB_TIMINGS_KEY, f"{func_name}:seconds", seconds)
                pipe.hincrbyfloat(JOB_TIMINGS_KEY, f"{func_name}:cpu_seconds", cpu_seconds)
                pipe.execute()
        except Exception:  # a statistic must never fail a job
            logger.warning("could not count the time of a %s job", func_name, exc_info=True)

    def _start_scheduler(  # type: ignore[no-untyped-def]
        self,
        burst=False,
        logging_level="INFO",
        date_format=DEFAULT_LOGGING_DATE_FORMAT,
        log_format=DEFAULT_LOGGING_FORMAT,
    ):
        if burst:  # RQ's own runs what is due once, in this thread, and forks nothing
            return super()._start_scheduler(burst, logging_level, date_format, log_format)
        # RQ's own, with the scheduler in a thread (above). RQ restarts it the same way, through
        # acquire_locks(auto_start=True), when it has died or another worker's held the locks.
        self.scheduler = _ThreadScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks(auto_start=True)

    def stop_scheduler(self) -> None:
        """Ask the scheduler thread to stop; teardown() waits for it.

        RQ calls this from its signal handler, in the main thread, wherever the signal found it.
        Waiting there for the scheduler thread deadlocks when that thread needs a lock the main
        thread held at that instant (a log handler's, the Redis pool's): the thread stops by
        logging and releasing its Redis locks. A warm stop hung that way in CI. (RQ's own sends
        SIGTERM to its scheduler process and waits; a process shares no locks.)"""
        if self.scheduler is not None:
            self.scheduler.request_stop()

    def teardown(self) -> None:
        super().teardown()  # stop_scheduler() among the rest, outside any signal handler
        thread = self.scheduler._process if self.scheduler is not None else None
        if isinstance(thread, threading.Thread):
            thread.join(timeout=SCHEDULER_STOP_SECONDS)
            if thread.is_alive():  # a daemon thread: it ends with the process; its locks expire
                logger.warning("the scheduler thread did not stop within %s s", SCHEDULER_STOP_SECONDS)


class _JobLoop(SimpleWorker):
    """One of ThreadedWorker's extra job loops, in a thread: no signal handlers (only the main
    thread may set them; the main loop stops the others), job time limits by timer rather than
    SIGALRM, and a short blocking wait for jobs so that a stop is noticed within seconds."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        pass

    @property
    def dequeue_timeout(self) -> int:
        return STOP_CHECK_SECONDS

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):  # type: ignore[no-untyped-def]
        # RQ's own loop waits for a job for ever; this one looks up every few seconds to see
        # whether the main loop asked it to stop.
        while True:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=STOP_CHECK_SECONDS)
            if result is not None or timeout is None or self._stop_requested:
                return result

    def subscribe(self) -> None:
        pass  # commands (stop, kill-horse) go to the main loop's channel


class ThreadedWorker(SimpleWorker):
    """WORKER_THREADS job loops in one process, so that a job waiting on the network (a create,
    a query, a download: hundreds of milliseconds each against the real upstream) does not hold
    up the jobs behind it. Each loop is a whole RQ worker (its own name, registration, heartbeat
    and database connection); this one, in the main thread, runs the scheduler and takes the
    signals. A warm stop (SIGTERM, Ctrl-C) lets every loop finish the job in hand; a cold one
    (a second Ctrl-C) leaves unfinished jobs to RQ's abandoned-job handling and the sweeper, as
    a killed worker does."""

    def work(self, burst: bool = False, **kwargs) -> bool:  # type: ignore[no-untyped-def, override]
        loops = [
            _JobLoop(
                self.queues,
                connection=self.connection,
                exception_handlers=self._exc_handlers or None,
                job_class=self.job_class,
                queue_class=self.queue_class,
                serializer=self.serializer,
            )
            for _ in range(max(settings.WORKER_THREADS, 1) - 1)
        ]
        loop_kwargs = {k: v for k, v in kwargs.items() if k in ("logging_level", "max_idle_time")}

        def run(loop: _JobLoop) -> None:
            try:
                loop.work(burst=burst, with_scheduler=False, **loop_kwargs)
            finally:
                connections.close_all()

        threads = [
            threading.Thread(target=run, args=(loop,), name=f"rq-loop-{i}", daemon=True)
            for i, loop in enumerate(loops, start=1)
        ]
        for thread in threads:
            thread.start()
        try:
            worked = super().work(burst=burst, **kwargs)
        except BaseException:
            for loop in loops:  # a cold stop: the daemon threads end with the process
                loop._stop_requested = True
            raise
        for loop in loops:
            loop._stop_requested = True
        for thread in threads:
            thread.join()
        return worked
