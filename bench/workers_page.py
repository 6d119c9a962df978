"""Benchmark the admin's Workers page against live workers: how long until it is served.

Each round renders the page in-process (``WorkerAdmin.changelist_view`` through a logged-in
test client: the broadcasts to the workers, the Redis queue depths, run history's failure
counts, the template). The stock way is the same page with the broadcast told nothing about
how many workers to expect (``limit=None``), which is how ``inspect().stats()`` is normally
called: it then always waits its whole timeout for replies that might still come. The page
asks Redis which workers are bound to the control exchange and returns as soon as they have
all answered.

Starts ``--workers`` workers of its own (on a throw-away queue) and stops them afterwards. Run
it on a service profile of its own:

    ORCHESTRATOR_PROFILE=adm .venv/bin/python bench/workers_page.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ORCHESTRATOR_PROFILE", "bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from orchestrator.engines.celery.fleet import Fleet  # noqa: E402
from project.celery import app  # noqa: E402
from tests.faults.processes import Worker  # noqa: E402


def _time_page(client: Client, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get("/admin/celery_engine/worker/")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.status_code
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    setup_test_environment()
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    workers = [Worker(queues=queue, concurrency=1) for _ in range(options.workers)]
    user = User.objects.create_superuser(f"bench-{uuid.uuid4().hex[:6]}", password=None)
    try:
        for worker in workers:
            worker.wait_ready(app)
        client = Client()
        client.force_login(user)
        _time_page(client, 1)  # warm: templates, connections
        page = _time_page(client, options.rounds)
        with mock.patch.object(Fleet, "bound_workers", return_value=[]):
            stock = _time_page(client, options.rounds)
    finally:
        for worker in workers:
            worker.stop()
        user.delete()
    ours, theirs = statistics.median(page), statistics.median(stock)
    print(f"workers answering: {options.workers}; rounds: {options.rounds}")
    print(f"Workers page, median: {ours * 1000:.0f} ms (min {min(page) * 1000:.0f} ms)")
    print(f"stock broadcast (limit=None), median: {theirs * 1000:.0f} ms")
    print(f"ratio: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
