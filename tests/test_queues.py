"""Posters wait on the "low" queue, which a worker takes only when "default" is empty: a poster
never stands in front of a job that finishes a paid video."""

import django_rq
import pytest

from generations.services import enqueue
from generations.worker import SimpleWorker, ThreadedWorker

pytestmark = pytest.mark.django_db


class QuietWorker(SimpleWorker):
    def subscribe(self) -> None:
        pass  # no command channel (its teardown waits a second for nothing)


@pytest.mark.parametrize("worker_class", [SimpleWorker, ThreadedWorker])
def test_a_worker_named_for_default_takes_low_after_it(worker_class):
    redis = django_rq.get_connection("default")
    for named in ([django_rq.get_queue("default")], ["default"]):
        assert worker_class(named, connection=redis).queue_names() == ["default", "low"]


@pytest.mark.django_db(transaction=True)  # the worker gives its connection back after each job
def test_a_poster_queued_first_runs_after_the_work_queued_behind_it():
    enqueue("generations.jobs.make_poster", "00000000-0000-0000-0000-000000000000")
    enqueue("generations.jobs.poll", "00000000-0000-0000-0000-000000000001", 0)
    low, default = django_rq.get_queue("low"), django_rq.get_queue("default")
    assert len(low) == len(default) == 1
    poster, poll = low.jobs[0], default.jobs[0]
    QuietWorker([default], connection=default.connection).work(burst=True, with_scheduler=False)
    poster.refresh()
    poll.refresh()
    assert poster.is_finished and poll.is_finished
    assert poll.ended_at <= poster.started_at
