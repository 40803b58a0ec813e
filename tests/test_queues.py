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


@pytest.mark.django_db(transaction=True)  # jobs are queued when the transaction commits
def test_every_enqueue_in_a_process_shares_one_redis_connection_pool(settings, monkeypatch):
    # django_rq.get_queue makes a new client and pool each call, so each enqueue connected anew.
    from seedance_site import queues
    from seedance_site.queues import get_queue

    # This process's clients start afresh here (earlier tests' threads may have used the shared
    # pool at once, and left it more than one connection); the test's own end puts them back.
    monkeypatch.setattr(queues, "_clients", {})
    first, again = get_queue("default"), get_queue("default")
    assert first.connection is again.connection
    enqueue("generations.jobs.poll", "00000000-0000-0000-0000-000000000001", 0)
    enqueue("generations.jobs.poll", "00000000-0000-0000-0000-000000000002", 0)
    # Both enqueues went through this pool (nothing else has used it yet), on one connection.
    assert first.connection.connection_pool._created_connections == 1
    assert first.count == 2
    # Settings that name another Redis get a client of their own (tests point RQ_QUEUES elsewhere);
    # it is only made here, never sent a command.
    url = settings.RQ_QUEUES["default"]["URL"]
    settings.RQ_QUEUES = {**settings.RQ_QUEUES, "default": {"URL": url, "DB": 0, "DEFAULT_TIMEOUT": 300}}
    assert get_queue("default").connection is not first.connection
