"""Overlap modes, stale slots and manual runs with keyword arguments on a real worker and a
real beat (one of each for the module).

The worker consumes a queue of its own (``overlap-modes``) with four processes, so a long run, a
waiting run and a cancelling run fit at once; beat sends the jobs' slots every second or two.
History (``JobRun``) is what every assertion reads: it is what operators see.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import close_old_connections, connection

from orchestrator import reconcile
from orchestrator.engines.celery.fleet import Fleet
from orchestrator.engines.celery.runner import RUNNER_TASK
from orchestrator.models import JobRun
from tests.faults.processes import Beat, Worker
from tests.integration.cli_helpers import jobs
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

QUEUE = "overlap-modes"


@pytest.fixture(scope="module")
def services(django_db_blocker: Any, celery_app: Any) -> Iterator[Worker]:
    """One worker (4 processes, its own queue) and one beat for the whole module."""
    with django_db_blocker.unblock():
        clear_engines()
    worker = Worker(QUEUE, concurrency=4)
    beat = Beat("overlap")
    try:
        worker.wait_ready(celery_app)
        yield worker
    finally:
        beat.stop()
        worker.stop()
        with django_db_blocker.unblock():
            clear_engines()


def apply(text: str) -> None:
    reconcile.apply(placed_from(text))


def runs(job: str) -> list[JobRun]:
    close_old_connections()
    return list(JobRun.objects.filter(job=job).order_by("scheduled_for", "id"))


def watch(job: str, done: Callable[[list[JobRun]], bool], timeout: float) -> list[JobRun]:
    """Poll the job's history until ``done``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        found = runs(job)
        if done(found):
            return found
        if time.monotonic() > deadline:
            summary = [(run.status, run.message[:80]) for run in found]
            raise AssertionError(f"{job}: not done within {timeout}s: {summary}")
        time.sleep(0.2)


def most_at_once(found: list[JobRun], statuses: tuple[str, ...]) -> int:
    """The most runs of these statuses that were going at one instant (from start to end;
    a waiting run counts from when its worker took it)."""
    edges = sorted(
        edge
        for run in found
        if run.status in statuses and run.started and run.finished
        for edge in ((run.started, 1), (run.finished, -1))
    )
    most = going = 0
    for _, step in edges:
        going += step
        most = max(most, going)
    return most


def stop_running(celery_app: Any, job: str) -> None:
    """Take the job off the schedule and end its runs still going (they hold processes)."""
    clear_engines()
    for run in JobRun.objects.filter(job=job, status="running"):
        celery_app.control.revoke(run.engine_run_id, terminate=True, signal="SIGKILL")


def test_overlap__buffer_one_keeps_one_waiting_run_under_a_long_job(
    services: Worker, celery_app: Any
) -> None:
    """Every second, a 3-second job with ``buffer_one``: the second slot waits and runs as soon
    as the first ends; the slots after it while both are taken are skipped with the reason;
    never more than one run going plus one waiting."""
    apply(
        f"""
        version: 1
        jobs:
          buffered:
            schedule: every 1s
            target: celery
            queue: {QUEUE}
            overlap: buffer_one
            sql: SELECT pg_sleep(3)
        """
    )

    def done(found: list[JobRun]) -> bool:
        succeeded = [run for run in found if run.status == "succeeded"]
        dropped = [run for run in found if run.status == "skipped" and "buffer_one" in run.message]
        return len(succeeded) >= 2 and len(dropped) >= 2

    try:
        found = watch("buffered", done, 40)
    finally:
        stop_running(celery_app, "buffered")
    assert most_at_once(found, ("succeeded",)) <= 2
    first, second = [run for run in found if run.status == "succeeded"][:2]
    # the waiting run started the moment the first one let go, not at a later slot
    assert second.finished - first.finished < timedelta(seconds=3 + 1.5)
    dropped = next(run for run in found if "buffer_one" in run.message)
    assert "another is already waiting" in dropped.message


def test_overlap__cancel_other_cancels_the_running_sql_and_program(
    services: Worker, celery_app: Any
) -> None:
    """Every 2 seconds, 30-second jobs with ``cancel_other``: each new slot cancels the
    running run (a SQL statement through pg_cancel_backend on its tagged session, a program by
    terminating its task), which is recorded ``cancelled`` by the newer run, not failed, and
    is not retried; the newer run then runs."""
    apply(
        f"""
        version: 1
        defaults:
          target: celery
          queue: {QUEUE}
          overlap: cancel_other
          retries: {{max: 2, backoff: 0}}
        jobs:
          cancel-sql:
            schedule: every 2s
            sql: SELECT pg_sleep(30)
          cancel-program:
            schedule: every 2s
            command: sleep 30
        """
    )

    def done(found: list[JobRun]) -> bool:
        return sum(run.status == "cancelled" for run in found) >= 2

    try:
        for job in ("cancel-sql", "cancel-program"):
            found = watch(job, done, 40)
            cancelled = [run for run in found if run.status == "cancelled"]
            assert all("cancelled by a newer run" in run.message for run in cancelled), job
            assert all(run.duration < timedelta(seconds=10) for run in cancelled), job
            assert not [run for run in found if run.status in ("failed_final", "retried")], job
            assert all(run.attempt == 1 for run in found), job
            assert most_at_once(found, ("succeeded", "cancelled")) <= 2, job
    finally:
        stop_running(celery_app, "cancel-sql")
        stop_running(celery_app, "cancel-program")


def test_stale_slots__dropped_on_delivery_after_a_drain(services: Worker, celery_app: Any) -> None:
    """A worker drained while an every-second job's slots pile up in the queue runs at most
    one of them when resumed (the newest, while it is still current); the older messages
    expired at their next slot and are recorded skipped, "expired before it ran"."""
    apply(
        f"""
        version: 1
        jobs:
          stale:
            schedule: every 1s
            target: celery
            queue: {QUEUE}
            sql: SELECT 1
        """
    )
    fleet = Fleet(celery_app)
    try:
        watch("stale", lambda found: any(run.status == "succeeded" for run in found), 30)
        fleet.drain(services.hostname, timeout=30, poll=0.2)
        drained = time.monotonic()
        backlog_from = max(run.scheduled_for for run in runs("stale"))
        time.sleep(5)
        fleet.resume(services.hostname)
        window_end = backlog_from + timedelta(seconds=time.monotonic() - drained)

        def backlog_of(found: list[JobRun]) -> list[JobRun]:
            """The slots sent while the worker was drained."""
            return [run for run in found if backlog_from < run.scheduled_for < window_end]

        def settled(found: list[JobRun]) -> bool:
            return all(run.status not in ("queued", "running") for run in backlog_of(found))

        backlog = backlog_of(watch("stale", settled, 20))
    finally:
        stop_running(celery_app, "stale")
    assert len(backlog) >= 4
    outcomes = [(run.status, run.message) for run in backlog]
    ran = [run for run in backlog if run.status == "succeeded"]
    assert len(ran) <= 1, outcomes
    assert all(
        run.status == "skipped" and "expired before it ran" in run.message
        for run in backlog
        if run not in ran
    ), outcomes


def effect_exists(key: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM fault_effects WHERE key = %s", [key])
        return bool(cursor.fetchone()[0])


def test_run_kwargs__a_manual_run_takes_checked_keyword_arguments(
    services: Worker, celery_app: Any
) -> None:
    """``jobs run NAME --kwargs JSON`` runs a task job with those arguments over its own and
    records them on the manual run; names the task does not take, a SQL job and a forged
    message asking for them are refused, and nothing of theirs runs."""
    from tests.faults.jobs import LEDGER_SQL  # registers the task here too, for the check

    with connection.cursor() as cursor:
        cursor.execute(LEDGER_SQL)
    key = f"kw-{uuid.uuid4().hex[:8]}"
    apply(
        f"""
        version: 1
        defaults:
          target: celery
          queue: {QUEUE}
        jobs:
          kw-task:
            schedule: "@daily"
            task: tests.faults.jobs.effect
            kwargs: {{key: kw-default}}
          kw-sql:
            schedule: "@daily"
            sql: SELECT 1
        """
    )
    try:
        status, out, err = jobs(
            "run", "kw-task", "--kwargs", json.dumps({"key": key}), "--wait", "--timeout", "30",
            "--format", "json",
        )  # fmt: skip
        assert status == 0, err
        result = json.loads(out)
        assert result["status"] == "succeeded"
        assert result["kwargs"] == {"key": key}
        assert effect_exists(key)
        assert not effect_exists("kw-default")
        run = JobRun.objects.get(engine_run_id=result["run_id"])
        assert run.manual
        assert run.kwargs == {"key": key}

        before = JobRun.objects.count()
        status, _, err = jobs("run", "kw-task", "--kwargs", '{"nope": 1}')
        assert status == 1
        assert "task tests.faults.jobs.effect takes no argument 'nope'" in err
        assert "(it takes: key, work_seconds)" in err
        status, _, err = jobs("run", "kw-task", "--kwargs", "[1]")
        assert status == 1
        assert "must be a JSON object" in err
        status, _, err = jobs("run", "kw-sql", "--kwargs", "{}")
        assert status == 1
        assert "task jobs only" in err
        assert JobRun.objects.count() == before  # nothing was sent

        forged = celery_app.send_task(
            RUNNER_TASK,
            kwargs={"name": "kw-task", "run_kwargs": {"nope": 1}},
            queue=QUEUE,
        )
        with pytest.raises(Exception, match="takes no argument 'nope'"):
            forged.get(timeout=30)
        refused = watch_run(forged.id)
        assert refused.status == "failed_final"
    finally:
        clear_engines()


def watch_run(task_id: str) -> JobRun:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        close_old_connections()
        run = JobRun.objects.filter(engine_run_id=task_id, finished__isnull=False).first()
        if run is not None:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {task_id} not recorded")
