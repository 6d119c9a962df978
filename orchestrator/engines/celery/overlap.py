"""What a Celery run does when the previous run of its job is still going (``overlap``).

The four modes are Temporal's (``ScheduleOverlapPolicy``), held by PostgreSQL session advisory
locks on the job's database, which the server drops by itself when a worker dies, so a lock can
never outlive its run:

- ``allow`` (and unset): no lock; runs may overlap (Celery's own behaviour).
- ``skip``: the run takes the job's *run lock* or is skipped.
- ``buffer_one``: the run takes the run lock; failing that, it takes the job's *wait lock* and
  waits (blocking, on its own session) for the run lock; failing that too, a run is already
  waiting and this one is skipped, saying so. So at most one run ever waits, however many slots
  come due during a long run. The waiting run holds a worker process while it waits (bounded by
  its time limit): the price of starting the moment the running one ends.
- ``cancel_other``: the run takes the run lock; failing that, it cancels the runs of the job
  that history shows running (``cancel_running``) and waits for the lock, at most
  ``CANCEL_WAIT``. A cancelled run is recorded ``cancelled`` *before* it is signalled, so its
  own ending (a cancelled statement, a terminated task) never overwrites that record, and its
  retries do not start.

Cancelling reaches a run by its session tag (``run_session``: every run's sessions carry
``orchestrator-run:<task id>:<attempt>``): ``pg_cancel_backend`` ends a statement or a lock wait
of that run on each of its connections (a role may signal its own sessions), and a task or
program body, which may be outside the database, is terminated through Celery's control API
(``revoke(terminate=True)``: the worker acknowledges the message, so it is not redelivered).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from orchestrator.engines.celery.run_session import run_tag

logger = logging.getLogger(__name__)

#: namespace of the per-job run locks (pg_try_advisory_lock's first int4 key)
OVERLAP_LOCK_SPACE = 0x6F726368  # "orch"
#: namespace of buffer_one's per-job wait locks
WAIT_LOCK_SPACE = 0x6F727771  # "orwq"
#: how long a cancel_other run waits for the cancelled run to let go of the job
CANCEL_WAIT = "60s"


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether the run may go on; when not, why (the history row's message)."""

    run: bool
    reason: str = ""


def _try_lock(connection: BaseDatabaseWrapper, space: int, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [space, name])
        return bool(cursor.fetchone()[0])


def _lock(connection: BaseDatabaseWrapper, space: int, name: str, timeout: str = "0") -> None:
    """Wait for the lock (``timeout`` '0' waits as long as it takes; else lock_timeout)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, false)", [timeout])
        try:
            cursor.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", [space, name])
        finally:
            cursor.execute("RESET lock_timeout")


def _unlock(connection: BaseDatabaseWrapper, space: int, name: str) -> None:
    if connection.connection is None or not connection.is_usable():
        return  # the session is gone, and its locks with it
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [space, name])


@contextmanager
def overlap_guard(
    name: str,
    mode: str | None,
    database: str,
    *,
    task_id: str | None = None,
    cancel: Any = None,
) -> Iterator[Admission]:
    """Admit the run of job ``name`` under overlap ``mode``; hold its locks while it runs.

    ``cancel(task_id, attempt, sessions)`` is how ``cancel_other`` stops a running run
    (the runner passes ``cancel_running``'s signalling); ``task_id`` is this run's own.
    """
    if mode not in ("skip", "buffer_one", "cancel_other"):
        yield Admission(run=True)
        return
    connection = connections[database]
    held = _try_lock(connection, OVERLAP_LOCK_SPACE, name)
    if not held and mode == "buffer_one":
        if not _try_lock(connection, WAIT_LOCK_SPACE, name):
            yield Admission(
                run=False,
                reason="overlap buffer_one: a run is going and another is already waiting; "
                "this slot is dropped",
            )
            return
        try:
            logger.info("run waits for the running one (buffer_one)", extra={"job": name})
            _lock(connection, OVERLAP_LOCK_SPACE, name)
            held = True
        finally:
            _unlock(connection, WAIT_LOCK_SPACE, name)
    elif not held and mode == "cancel_other":
        cancelled = cancel_running(name, task_id, cancel)
        logger.info(
            "run cancels the running one (cancel_other)",
            extra={"job": name, "cancelled": cancelled},
        )
        _lock(connection, OVERLAP_LOCK_SPACE, name, CANCEL_WAIT)
        held = True
    if not held:
        yield Admission(run=False, reason="overlap skip: the previous run is still going")
        return
    try:
        yield Admission(run=True)
    finally:
        _unlock(connection, OVERLAP_LOCK_SPACE, name)


def cancel_running(name: str, own_task_id: str | None, signal: Any) -> list[str]:
    """Record every run of job ``name`` that history shows running (but this one) as
    ``cancelled``, then signal each (``signal(task_id, attempt)``). Returns their task ids."""
    from orchestrator.models import JobRun, RunStatus

    now = timezone.now()
    with transaction.atomic():
        rows = list(
            JobRun.objects.select_for_update()
            .filter(job=name, engine="celery", status=RunStatus.RUNNING)
            .exclude(engine_run_id=own_task_id or "")
        )
        for row in rows:
            row.status, row.finished = RunStatus.CANCELLED, now
            row.duration = now - row.started if row.started else None
            row.message = f"cancelled by a newer run ({own_task_id or '?'}): overlap cancel_other"
            row.save(update_fields=["status", "finished", "duration", "message", "updated_at"])
    for row in rows:
        if signal is not None:
            signal(row.engine_run_id, row.attempt)
    return [row.engine_run_id for row in rows]


def cancel_sessions(sessions: Sequence[BaseDatabaseWrapper], task_id: str, attempt: int) -> int:
    """``pg_cancel_backend`` on every session of the run ``task_id``/``attempt`` (its tag),
    each asked on the connection of the same role. Returns how many were signalled."""
    tag = run_tag(task_id, attempt)
    signalled = 0
    for connection in sessions:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FILTER (WHERE pg_cancel_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND usename = session_user "
                "AND pid <> pg_backend_pid()",
                [tag],
            )
            signalled += int(cursor.fetchone()[0])
    return signalled


def was_cancelled(task_id: str | None, attempt: int) -> bool:
    """Whether a newer run recorded this run as cancelled (cancel_other)."""
    from orchestrator.models import JobRun, RunStatus

    if not task_id:
        return False
    return JobRun.objects.filter(
        engine="celery", engine_run_id=task_id, attempt=attempt, status=RunStatus.CANCELLED
    ).exists()
