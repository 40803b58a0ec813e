"""Gunicorn settings for bench/submit_cpu.py's profiled batch: the tree's own gunicorn.conf.py, plus
cProfile around each request. Run with ONE worker and ONE thread: cProfile sees only the thread
that enables it, and the hooks run in the thread that handles the request.

A POST to /healthz (which answers 405) throws away what was profiled so far (the warm-up).
"""

import cProfile
import os
import time

exec(open(os.path.join(os.getcwd(), "gunicorn.conf.py")).read())  # noqa: S102 (the tree's own settings)

_profile = cProfile.Profile(time.thread_time)  # CPU, not waits on PostgreSQL or Redis


def pre_request(worker, req) -> None:
    global _profile
    if req.method == "POST" and req.path == "/healthz":
        _profile = cProfile.Profile(time.thread_time)
        return
    _profile.enable()


def post_request(worker, req, environ, resp) -> None:
    _profile.disable()


def worker_exit(server, worker) -> None:
    _profile.dump_stats(os.environ["SUBMIT_PROFILE_OUT"])
