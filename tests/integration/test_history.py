"""Run history on the real engines: Celery runs recorded from signals on a real worker, pg_cron
runs imported from ``cron.job_run_details``, missed runs and pg_cron's heartbeat. The real pg_cron
run of a failing job is checked in ``test_pg_cron_minute``, on the minute it shares."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

import orchestrator.engines.celery.history  # noqa: F401 - connects the publish signal in this (publishing) process
from orchestrator import missed
from orchestrator.engines.celery.history import on_prerun
from orchestrator.engines.pg_cron import heartbeat
from orchestrator.models import JobRun, ManagedJob, RunCounter
from orchestrator.stored import StoredJob
from tests.conftest import ROOT, WorkerProcess, service_env
from tests.integration.reconcile_helpers import apply_and_run, clear_engines


class HistoryWorker(WorkerProcess):
    """A real worker on a private queue that also loads ``orchestrator.engines.celery.history``
    (``--include``), so these tests do not depend on which worker of the session takes a message."""

    def __init__(self, queue: str) -> None:
        self.name = f"hist-{uuid.uuid4().hex[:8]}@%h"
        profile = os.environ.get("ORCHESTRATOR_PROFILE", "test")
        self.log = ROOT / ".data" / profile / f"worker-{self.name.split('@')[0]}.log"
        argv = [
            sys.executable, "-m", "celery", "-A", "project", "worker", "--loglevel=INFO",
            f"--hostname={self.name}", f"--queues={queue}", "--concurrency=1",
            "--without-gossip", "--without-mingle", "--include=orchestrator.engines.celery.history",
        ]  # fmt: skip
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=service_env(), stdout=self.handle, stderr=subprocess.STDOUT
        )


@pytest.fixture(scope="module")
def history_queue(celery_app) -> Iterator[str]:
    queue = f"history-{uuid.uuid4().hex[:8]}"
    worker = HistoryWorker(queue)
    try:
        worker.wait_ready(celery_app)
        yield queue
    finally:
        worker.stop()


def _counted(job: str, engine: str) -> Counter[str]:
    """The run counters of ``job`` by status (fed by triggers on every run write)."""
    rows = RunCounter.objects.filter(job=job, engine=engine).values_list("status", "runs")
    return Counter(dict(rows))


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.mark.django_db(transaction=True)
def test_history__celery_failing_twice_then_succeeding_shows_three_attempts(
    history_queue: str, celery_app
) -> None:
    """A Celery run with retries {max: 3, backoff: 0} whose body fails twice: history holds
    attempts 1 and 2 as ``retried`` with the database's error, and attempt 3 ``succeeded``,
    all under one task id, with worker, pid and durations."""
    sequence = f"hist_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE {sequence}")
        # SQL jobs run as the jobs role, which uses only what it is granted
        cursor.execute(f"GRANT USAGE ON SEQUENCE {sequence} TO {settings.ORCHESTRATOR_JOBS_ROLE}")
    try:
        task_id = apply_and_run(
            f"""
            version: 1
            jobs:
              flaky-history:
                schedule: "@daily"
                target: celery
                retries: {{max: 3, backoff: 0}}
                sql: SELECT 1 / (CASE WHEN nextval('{sequence}') < 3 THEN 0 ELSE 1 END)
            """,
            history_queue,
        )
        counted_before = _counted("flaky-history", "celery")
        assert celery_app.AsyncResult(task_id).get(timeout=60)["status"] == "succeeded"
        rows = wait_for(
            lambda: (
                list(JobRun.objects.filter(engine_run_id=task_id).order_by("attempt"))
                if JobRun.objects.filter(engine_run_id=task_id, status="succeeded").exists()
                else None
            ),
            20,
            "the third attempt to be recorded",
        )
        assert [(row.attempt, row.status) for row in rows] == [
            (1, "retried"),
            (2, "retried"),
            (3, "succeeded"),
        ]
        assert all("division by zero" in row.message for row in rows[:2])
        # each retried attempt keeps its whole traceback, the cause chained in
        assert all("Traceback (most recent call last)" in row.traceback for row in rows[:2])
        assert all("DivisionByZero" in row.traceback for row in rows[:2])
        assert rows[2].traceback == ""
        assert all(
            row.args == [f"SELECT 1 / (CASE WHEN nextval('{sequence}') < 3 THEN 0 ELSE 1 END)"]
            for row in rows
        )
        assert all(row.job == "flaky-history" and row.engine == "celery" for row in rows)
        assert all(row.manual and row.worker and row.pid for row in rows)
        assert all(row.duration is not None and row.started <= row.finished for row in rows)
        # the run counters (/metrics) were fed by the same signal writes, once per finish
        added = _counted("flaky-history", "celery") - counted_before
        assert added == Counter({"retried": 2, "succeeded": 1})
    finally:
        clear_engines()
        JobRun.objects.filter(job="flaky-history").delete()
        with connection.cursor() as cursor:
            cursor.execute(f"DROP SEQUENCE {sequence}")


@pytest.mark.django_db(transaction=True)
def test_history__failing_task_traceback_and_kwargs_reach_the_run_page(
    history_queue: str, celery_app, admin_client
) -> None:
    """A task body that raises on a real worker: its run is ``failed`` with the full
    traceback (the task's own frame included) and the kwargs it was called with, and the run's
    admin page shows both and links to the job."""
    schema = f"no_such_{uuid.uuid4().hex[:8]}"
    try:
        task_id = apply_and_run(
            f"""
            version: 1
            jobs:
              broken-reindex:
                schedule: "@daily"
                target: celery
                task: tasks.maintenance.reindex_schema
                kwargs: {{schema: {schema}}}
            """,
            history_queue,
        )
        with pytest.raises(Exception, match="does not exist"):
            celery_app.AsyncResult(task_id).get(timeout=60)
        run = wait_for(
            lambda: JobRun.objects.filter(engine_run_id=task_id, status="failed_final").first(),
            20,
            "the failure to be recorded",
        )
        assert run.kwargs == {"schema": schema}
        assert run.args == []
        assert run.traceback.startswith("Traceback (most recent call last)")
        assert 'tasks/maintenance.py", line' in run.traceback
        assert "in reindex_schema" in run.traceback
        assert f'schema "{schema}" does not exist' in run.traceback
        page = admin_client.get(f"/admin/orchestrator/jobrun/{run.pk}/change/").content.decode()
        assert "in reindex_schema" in page
        assert f"&quot;schema&quot;: &quot;{schema}&quot;" in page
        job = ManagedJob.objects.get(name="broken-reindex")
        assert f"/admin/orchestrator/managedjob/{job.pk}/change/" in page
    finally:
        clear_engines()
        JobRun.objects.filter(job="broken-reindex").delete()


@pytest.mark.django_db
def test_history__redelivered_attempt_marks_the_dead_delivery_lost() -> None:
    """When a worker dies mid-task the broker redelivers the same task id and attempt: the
    execution that was running becomes ``lost`` and the redelivery gets its own row."""
    task = SimpleNamespace(
        name="orchestrator.run_job",
        request=SimpleNamespace(retries=0, hostname="w1@host"),
    )
    task_id = str(uuid.uuid4())
    on_prerun(task_id=task_id, task=task, kwargs={"name": "lost-job"})
    task.request.hostname = "w2@host"
    on_prerun(task_id=task_id, task=task, kwargs={"name": "lost-job"})
    rows = list(JobRun.objects.filter(engine_run_id=task_id).order_by("delivery"))
    assert [(row.delivery, row.status, row.worker) for row in rows] == [
        (1, "lost", "w1@host"),
        (2, "running", "w2@host"),
    ]
    assert "died" in rows[0].message


def _managed(name: str, engine: str, expr: str, applied_ago: timedelta) -> ManagedJob:
    return ManagedJob.objects.create(
        name=name,
        engine=engine,
        engine_id=f"{engine}-{name}",
        spec_hash="x" * 64,
        definition={
            "name": name,
            "trigger": {"kind": "cron", "expr": expr},
            "body": {"kind": "sql", "sql": "SELECT 1"},
            "enabled": True,
            "timezone": "UTC",
        },
        applied_at=timezone.now() - applied_ago,
    )


@pytest.mark.django_db
def test_history__job_whose_runs_are_deleted_shows_missed_with_when() -> None:
    """Every-minute job applied 30 minutes ago with a run recorded at every expected instant
    has nothing missed; deleting three runs flags exactly those three instants. Run-nows do
    not fill a slot; a job not meant to run (paused) owes nothing."""
    job = StoredJob.of(_managed("missed-history", "celery", "* * * * *", timedelta(minutes=30)))
    now = timezone.now()
    owed = missed.owed_span(job, meant_to_run=True, now=now)
    assert owed is not None
    instants = missed.expected_instants("celery", job.trigger, "UTC", owed.start, owed.end)
    assert 25 <= len(instants) <= 30
    JobRun.objects.bulk_create(
        [
            JobRun(
                job=job.name,
                engine="celery",
                engine_run_id=f"r{index}",
                status="succeeded",
                scheduled_for=instant + timedelta(seconds=1),
                started=instant + timedelta(seconds=1),
            )
            for index, instant in enumerate(instants)
        ]
    )
    assert missed.missed_runs([owed])[job.name].missed == 0

    gone = [instants[3], instants[10], instants[-2]]
    JobRun.objects.filter(
        job=job.name, scheduled_for__in=[i + timedelta(seconds=1) for i in gone]
    ).delete()
    JobRun.objects.create(
        job=job.name, engine="celery", engine_run_id="manual", status="succeeded",
        manual=True, scheduled_for=gone[0] + timedelta(seconds=2),
    )  # fmt: skip
    found = missed.missed_runs([owed])[job.name]
    assert found.missed == 3
    assert list(found.instants) == sorted(gone, reverse=True)
    assert found.last == gone[-1]
    assert missed.owed_span(job, meant_to_run=False, now=now) is None  # paused: owes nothing


@pytest.mark.django_db
def test_history__pg_cron_heartbeat_stalled_when_a_due_job_never_started() -> None:
    """An active pg_cron job that was due minutes ago, with no start in pg_cron's run log
    since, shows the scheduler as ``stalled`` (what a terminated launcher looks like); with
    no managed pg_cron job it is ``idle``."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM cron.job_run_details")  # rolled back with the test
    ManagedJob.objects.filter(engine="pg_cron").delete()
    assert heartbeat.scheduler_state().state in ("idle", "stopped")
    _managed("heartbeat-history", "pg_cron", "* * * * *", timedelta(minutes=10))
    state = heartbeat.scheduler_state()
    assert state.state in ("stalled", "stopped")
    assert state.due_at is not None
    assert state.due_at <= timezone.now() - heartbeat.LATE
    assert not state.healthy
