"""The tests that need a real pg_cron run, on one shared minute.

pg_cron 1.4 has minute granularity, so each of these used to wait for a minute boundary of its
own (30-60 s apiece). Their jobs are scheduled together here, by one module fixture, and one
boundary serves all of them; each test then checks exactly what it checked alone:

- the embedded pg_cron runs a job scheduled through ``cron.schedule`` (``test_services``);
- a managed pg_cron job that raises is imported as failed with its error (``test_history``);
- pg_cron jobs run as the jobs role and the database refuses each forbidden statement
  (``test_jobs_role``).

The runs commit for real (pg_cron's own processes write them), so the module uses the database
outside pytest-django's rolled-back transactions. At the end it flushes the Django tables, as
the transactional tests these were did after each of them: ``jobs history`` imports every run
in pg_cron's log, and rows left committed would collide with later tests' (and sessions') own.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from orchestrator import reconcile
from orchestrator.models import JobRun, ManagedJob
from tests.integration.cli_helpers import jobs
from tests.integration.reconcile_helpers import clear_engines, placed_from
from tests.integration.test_history import _counted
from tests.integration.test_jobs_role import state, statements, wait_for_cron_runs

pytestmark = pytest.mark.slow

RAISES = """
version: 1
jobs:
  raises-history:
    schedule: "* * * * *"
    target: pg_cron
    sql: SELECT 1 / (extract(epoch FROM now()) * 0)::int
"""


@dataclass(frozen=True, kw_only=True)
class Minute:
    """What the shared fixture scheduled, and the jobs role's state before any of it ran."""

    plain_jobid: int
    forbidden: dict[str, str]  # pg_cron job name -> FORBIDDEN key
    history_mark: int
    before: dict[str, object]
    counted_before: Counter[str]  # raises-history's run counters before its runs


@pytest.fixture(scope="module")
def minute(django_db_setup: None, django_db_blocker: Any) -> Iterator[Minute]:
    """Schedule every job of the module, wait until each has finished one run (one minute
    boundary, plus pg_cron's latency), then hand the tests what they need."""
    with django_db_blocker.unblock():
        clear_engines()
        # The jobs role's before-state: a run history row and the newest pg_cron runid so far
        # (what an eraser would take).
        JobRun.objects.create(
            job="sentinel", engine="celery", engine_run_id="sentinel", status="succeeded"
        )
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(runid), 0) FROM cron.job_run_details")
            mark = int(cursor.fetchone()[0])
        before = state(mark)
        reconcile.apply(placed_from(RAISES))
        counted_before = _counted("raises-history", "pg_cron")
        forbidden = statements()
        names = {f"forbidden-{name}-{uuid.uuid4().hex[:6]}": name for name in forbidden}
        plain = f"test-run-{uuid.uuid4().hex[:8]}"
        with connection.cursor() as cursor:
            cursor.execute("SELECT cron.schedule(%s, %s, %s)", [plain, "* * * * *", "SELECT 42"])
            (plain_jobid,) = cursor.fetchone()
            for job, name in names.items():
                cursor.execute(
                    "SELECT orchestrator_cron.schedule(%s, '* * * * *', %s, current_database(), "
                    "true)",
                    [job, forbidden[name][0]],
                )
            cursor.execute(
                "SELECT DISTINCT username FROM cron.job WHERE jobname = ANY(%s)", [list(names)]
            )
            assert cursor.fetchall() == [(settings.ORCHESTRATOR_JOBS_ROLE,)]
        try:
            wait_for_cron_runs([plain, "raises-history", *names], timeout=150)
            yield Minute(
                plain_jobid=plain_jobid,
                forbidden=names,
                history_mark=mark,
                before=before,
                counted_before=counted_before,
            )
        finally:
            with connection.cursor() as cursor:
                cursor.execute("SELECT cron.unschedule(%s)", [plain_jobid])
                cursor.execute("DELETE FROM cron.job_run_details WHERE jobid = %s", [plain_jobid])
            clear_engines()
            call_command("flush", verbosity=0, interactive=False)


@pytest.fixture
def committed(minute: Minute, django_db_blocker: Any) -> Iterator[Minute]:
    """Database access in autocommit for one test, after the shared minute."""
    with django_db_blocker.unblock():
        yield minute


def test_pg_cron__runs_a_scheduled_job_and_records_it(committed: Minute) -> None:
    """A job scheduled through cron.schedule runs within its minute and lands in
    cron.job_run_details as succeeded."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, return_message FROM cron.job_run_details "
            "WHERE jobid = %s AND status IN ('succeeded', 'failed')",
            [committed.plain_jobid],
        )
        row = cursor.fetchone()
    assert row == ("succeeded", "SELECT 1")


def test_history__pg_cron_job_that_raises_is_imported_as_failed_with_its_error(
    committed: Minute,
) -> None:
    """A real pg_cron run of a job whose SQL raises is imported as ``failed`` with
    PostgreSQL's error, under the job's manifest name: ``jobs history`` imports it on the spot
    and lists it as a pg_cron run; a second import by ``orchestrator_import_cron_runs()``
    writes nothing (idempotent)."""
    assert ManagedJob.objects.filter(name="raises-history", engine="pg_cron").exists()
    status, out, err = jobs("history", "raises-history", "--format", "json")
    assert status == 0, err
    failed = [row for row in json.loads(out) if row["status"] == "failed_final"]
    assert failed, out
    assert failed[0]["engine"] == "pg_cron"
    assert "division by zero" in failed[0]["error"]
    assert failed[0]["finished"] is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT orchestrator_import_cron_runs()")
        assert cursor.fetchone()[0] == 0
    # the importer's upserts fed the run counters (/metrics) once per finished run,
    # the idempotent second import nothing
    finished_runs = Counter(
        JobRun.objects.filter(job="raises-history", engine="pg_cron")
        .exclude(status__in=["queued", "running"])
        .values_list("status", flat=True)
    )
    assert _counted("raises-history", "pg_cron") - committed.counted_before == finished_runs
    run = JobRun.objects.filter(job="raises-history", engine="pg_cron").latest("started")
    assert run.status == "failed_final"  # pg_cron never retries: failed for good
    assert "division by zero" in run.message
    assert "division by zero" in run.traceback  # pg_cron's return message
    assert run.pid
    assert run.finished
    assert run.duration is not None
    assert run.scheduled_for == run.started.replace(second=0, microsecond=0)


def test_jobs_role__pg_cron_jobs_run_as_it_and_the_database_refuses_each_forbidden_statement(
    committed: Minute,
) -> None:
    """Seven pg_cron jobs scheduled the way the reconciler schedules them, each holding a
    statement the validator refuses: the launcher runs them as the jobs role, every run
    fails with the database's refusal (in cron.job_run_details and, once imported, in the
    run history), and auth_user's grants, the database's settings and the pg_cron jobs are
    as they were."""
    forbidden = statements()
    names = committed.forbidden
    finished = wait_for_cron_runs(list(names), timeout=150)
    for job, (status, message, username) in finished.items():
        refusal = forbidden[names[job]][1]
        assert status == "failed", (job, message)
        assert username == settings.ORCHESTRATOR_JOBS_ROLE
        assert any(part in message for part in refusal.split("|")), (job, message)
    with connection.cursor() as cursor:
        cursor.execute("SELECT orchestrator_import_cron_runs()")
    recorded = {run.job: run for run in JobRun.objects.filter(job__in=list(names))}
    # pg_cron never retries: each failure is imported as failed for good
    assert {job: run.status for job, run in recorded.items()} == dict.fromkeys(
        names, "failed_final"
    )
    assert state(committed.history_mark) == committed.before
