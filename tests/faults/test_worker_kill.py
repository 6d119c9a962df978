"""SIGKILL a worker's pool child 10 times under 50 idempotent jobs: 50 of 50 effects, none twice;
and SIGKILL it mid-run of a command or SQL job: the run's program or statement ends with it.

With ``acks_late`` + ``task_reject_on_worker_lost`` (project settings) a job whose process dies is
put back on the queue and run again; with an idempotent effect, running again is harmless. Each
kill targets a child that is running a job right then, so redelivery really happens. Kept short:
50 jobs of 0.4 s on 2 processes take ~10 s plus the redeliveries.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.processes import Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

JOBS = 50
KILLS = 10


def test_fifty_idempotent_jobs_survive_ten_child_kills(ledger: Any, celery_app: Any) -> None:
    worker = Worker(queues="faults-kill", concurrency=2)
    try:
        worker.wait_ready(celery_app)
        for number in range(JOBS):
            celery_app.send_task(
                "tests.faults.jobs.effect",
                kwargs={"key": f"kill-{number:02d}", "work_seconds": 0.4},
                queue="faults-kill",
            )
        inspect = celery_app.control.inspect(destination=[worker.hostname], timeout=1, limit=1)
        killed: list[int] = []
        deadline = time.monotonic() + 60
        while len(killed) < KILLS and time.monotonic() < deadline:
            active = (inspect.active() or {}).get(worker.hostname, [])
            pids = [task["worker_pid"] for task in active if task.get("worker_pid")]
            pids = [pid for pid in pids if pid not in killed]
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                time.sleep(0.8)  # let the pool replace the child and pick work up again
            else:
                time.sleep(0.1)
        assert len(killed) == KILLS, f"only {len(killed)} kills landed on a running job"

        deadline = time.monotonic() + 90
        while len(ledger.effects("kill-")) < JOBS and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # any stray redelivery would show up as an extra attempt now
    finally:
        worker.stop()

    effects = ledger.effects("kill-")
    attempts = ledger.attempts("kill-")
    assert [key for key, _slot, _at in effects] == [f"kill-{n:02d}" for n in range(JOBS)]
    rerun = {key: count for key, count in attempts.items() if count > 1}
    # Every kill hit a running job, which ran again; no job that finished ran again.
    assert 1 <= len(rerun) <= KILLS, rerun
    assert sum(attempts.values()) <= JOBS + KILLS, attempts


# --------------------------------------------------------------------------- a run's own work
#
# A job's work outside the worker process (a command's program, a SQL job's backend) must end
# with the worker process: otherwise the redelivered run starts beside it, two copies despite
# ``overlap: skip``, and a SQL statement commits that history calls ``lost``.


def _apply(manifest: str) -> None:
    from orchestrator import reconcile
    from tests.integration.reconcile_helpers import clear_engines, placed_from

    clear_engines()
    reconcile.apply(placed_from(manifest))


@pytest.fixture
def managed_jobs(db_committed: None) -> Iterator[None]:
    from orchestrator.models import JobRun
    from tests.integration.reconcile_helpers import clear_engines

    yield
    clear_engines()
    JobRun.objects.filter(job__startswith="kill-").delete()


def _runs(task_id: str) -> list[tuple[int, str, str]]:
    from orchestrator.models import JobRun

    rows = JobRun.objects.filter(engine_run_id=task_id).order_by("delivery")
    return [(row.delivery, row.status, row.message) for row in rows]


def _wait(predicate: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a killed child its new parent has not reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


PROGRAM = """
import os, sys, time
log = sys.argv[1]
with open(log, "a") as f: f.write(f"start {os.getpid()}\\n")
time.sleep(float(sys.argv[2]))
with open(log, "a") as f: f.write(f"end {os.getpid()}\\n")
"""


def test_worker_kill__a_commands_program_dies_with_its_worker_child(
    managed_jobs: None, celery_app: Any, tmp_path: Path
) -> None:
    """SIGKILL of the pool child running a ``command:`` job with ``overlap: skip`` kills its
    program too (it never finishes, it is not left orphaned under PID 1), and the redelivered
    run is the only copy: never two programs at once, one ``end`` in the log; history holds
    the dead delivery as ``lost`` and the redelivery as ``succeeded``."""
    from orchestrator import operations

    log = tmp_path / "program.log"
    argv = json.dumps([sys.executable, "-c", PROGRAM, str(log), "6"])
    _apply(
        f"""
        version: 1
        jobs:
          kill-command:
            schedule: "@daily"
            queue: faults-kill-command
            overlap: skip
            command: {argv}
        """
    )
    worker = Worker(queues="faults-kill-command", concurrency=2)
    try:
        worker.wait_ready(celery_app)
        task_id = operations.run_now("kill-command")
        line = _wait(lambda: log.exists() and log.read_text().split("\n")[0], 30, "the program")
        first = int(line.split()[1])
        child = _parent(first)
        assert child in worker.children(), "the program's parent is not a pool child"
        os.kill(child, signal.SIGKILL)
        _wait(lambda: not _alive(first), 2, "the program to die with its worker child")

        most_at_once = 0
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and "end" not in log.read_text():
            starts = [int(row.split()[1]) for row in log.read_text().split("\n") if "start" in row]
            most_at_once = max(most_at_once, sum(_alive(pid) for pid in starts))
            time.sleep(0.1)
        _wait(lambda: _runs(task_id)[-1][1] == "succeeded", 20, "the redelivery to succeed")
    finally:
        worker.stop()

    rows = [row.split()[0] for row in log.read_text().split("\n") if row]
    assert rows == ["start", "start", "end"], log.read_text()
    assert most_at_once == 1
    assert [(delivery, status) for delivery, status, _message in _runs(task_id)] == [
        (1, "lost"),
        (2, "succeeded"),
    ]


def test_worker_kill__a_lost_sql_runs_statement_never_commits_beside_its_redelivery(
    managed_jobs: None, ledger: Any, celery_app: Any
) -> None:
    """SIGKILL of the pool child while its SQL job (``overlap: skip``) is mid-statement: the
    dead delivery's statement is aborted (never commits), its overlap lock is freed, and the
    redelivery runs the job once: one committed effect, history ``lost`` (saying what became
    of the statement) then ``succeeded``, never ``skipped`` behind its own orphan."""
    from django.conf import settings
    from django.db import connection

    from orchestrator.models import JobRun

    with connection.cursor() as cursor:  # SQL jobs run as the jobs role: only what it is granted
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE ON fault_attempts TO {settings.ORCHESTRATOR_JOBS_ROLE}"
        )
    _apply(
        """
        version: 1
        jobs:
          kill-sql:
            schedule: "@daily"
            target: celery
            queue: faults-kill-sql
            overlap: skip
            sql: >-
              SELECT pg_sleep(4);
              INSERT INTO fault_attempts (key) VALUES ('kill-sql')
              ON CONFLICT (key) DO UPDATE SET attempts = fault_attempts.attempts + 1
        """
    )
    from orchestrator import operations

    worker = Worker(queues="faults-kill-sql", concurrency=2)
    try:
        worker.wait_ready(celery_app)
        task_id = operations.run_now("kill-sql")
        run = _wait(
            lambda: JobRun.objects.filter(engine_run_id=task_id, status="running").first(),
            30,
            "the run to start",
        )
        _wait(lambda: _statement_running(task_id), 10, "the statement to start")
        os.kill(run.pid, signal.SIGKILL)
        _wait(
            lambda: _runs(task_id)[-1][1] in ("succeeded", "skipped", "failed_final"), 40, "the end"
        )
        time.sleep(6)  # an orphaned statement would have committed by now
    finally:
        worker.stop()

    runs = _runs(task_id)
    assert [(delivery, status) for delivery, status, _message in runs] == [
        (1, "lost"),
        (2, "succeeded"),
    ], runs
    assert "statement" in runs[0][2], runs[0][2]
    assert ledger.attempts("kill-sql") == {"kill-sql": 1}


def _statement_running(task_id: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE %s "
            "AND state = 'active' AND query LIKE '%%pg_sleep%%'",
            [f"orchestrator-run:{task_id}:%"],
        )
        return bool(cursor.fetchone()[0])
