"""``on: startup`` jobs run once per release, however many workers start together."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connections

from orchestrator import reconcile
from orchestrator.engines.celery.startup_hook import run_startup_jobs
from orchestrator.models import ManagedJob, StartupRun
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = pytest.mark.django_db(transaction=True)

#: No worker consumes this queue: these tests pin who claims a startup run, and a worker
#: running it meanwhile would race the transactional tests' TRUNCATE (a deadlock seen in CI).
QUEUE = "startup-claims-unconsumed"
MANIFEST = f"""
version: 1
jobs:
  seed-once:
    on: startup
    task: orchestrator.ping
    kwargs: {{token: seeded}}
    queue: {QUEUE}
"""


@pytest.fixture(autouse=True)
def empty_engines(celery_app) -> Iterator[None]:
    clear_engines()
    StartupRun.objects.all().delete()
    yield
    clear_engines()
    with celery_app.connection_for_write() as connection:
        connection.default_channel.queue_purge(QUEUE)


def test_startup__eight_workers_starting_together_run_it_once() -> None:
    """Eight claimants racing for the same release: exactly one starts the job."""
    reconcile.apply(placed_from(MANIFEST))
    assert ManagedJob.objects.get(name="seed-once").engine_id == "startup:seed-once"

    def start(index: int) -> list[str]:
        try:
            return run_startup_jobs(f"worker-{index}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        started = [name for names in pool.map(start, range(8)) for name in names]
    assert started == ["seed-once"]
    assert StartupRun.objects.filter(job="seed-once").count() == 1
    assert run_startup_jobs("late-worker") == []  # same release: never again


def test_startup__a_new_release_runs_it_again(settings: Any) -> None:
    """A new ORCHESTRATOR_RELEASE is a new claim, so the job runs once more."""
    reconcile.apply(placed_from(MANIFEST))
    settings.ORCHESTRATOR_RELEASE = "r1"
    assert run_startup_jobs("w") == ["seed-once"]
    settings.ORCHESTRATOR_RELEASE = "r2"
    assert run_startup_jobs("w") == ["seed-once"]
    assert run_startup_jobs("w") == []


def test_startup__paused_startup_job_does_not_run() -> None:
    """A paused startup job is skipped (pausing is the operator's call)."""
    reconcile.apply(placed_from(MANIFEST))
    ManagedJob.objects.filter(name="seed-once").update(paused=True)
    assert run_startup_jobs("w") == []
