"""A run's database session, tagged so that a lost run's statement can be found and ended.

When a worker process dies mid-run, its PostgreSQL backend does not: a statement already sent
runs on to the end and commits, while the broker redelivers the message and a second run starts
(with ``overlap: skip`` the orphan even keeps holding the job's overlap lock, so the redelivery
is skipped and history shows only ``lost``). Two things stop that:

- every run's session carries ``application_name = orchestrator-run:<task id>:<attempt>`` and
  ``client_connection_check_interval``, so the server itself notices within a second that the
  worker's socket closed and aborts the statement (rolled back: it never commits);
- before a delivery runs, ``end_orphans`` terminates any other backend still carrying its tag
  (a previous delivery of the same attempt: the worker died, or its network did) and waits
  for it to go, so its transaction is rolled back and its overlap lock freed first.

What happened is written on the lost delivery's history row, and no more is claimed than is
known: a statement that had finished before the worker died stays committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

TAG_PREFIX = "orchestrator-run:"
#: how often the server checks that a run's client is still there while a statement runs
CLIENT_CHECK_INTERVAL = "1s"
#: milliseconds pg_terminate_backend waits for an orphan to be gone
TERMINATE_WAIT_MS = 10_000


def run_tag(task_id: str | None, attempt: int) -> str:
    """The ``application_name`` of a run's session (at most 63 bytes, PostgreSQL's limit)."""
    return f"{TAG_PREFIX}{task_id or 'local'}:{attempt}"[:63]


def tag_session(cursor: Any, tag: str) -> None:
    """Tag the session of ``cursor`` (Django's or psycopg's) as the run's and have the server
    watch its client."""
    cursor.execute(
        "SELECT set_config('application_name', %s, false), "
        "set_config('client_connection_check_interval', %s, false)",
        [tag, CLIENT_CHECK_INTERVAL],
    )


@contextmanager
def run_session(database: str, tag: str) -> Iterator[None]:
    """Tag the run's session of ``database`` for the run's length; untag it afterwards."""
    connection = connections[database]
    with connection.cursor() as cursor:
        tag_session(cursor, tag)
    try:
        yield
    finally:
        if connection.connection is not None and connection.is_usable():
            with connection.cursor() as cursor:
                cursor.execute("RESET application_name; RESET client_connection_check_interval")


def end_orphans(connection: BaseDatabaseWrapper, tag: str) -> list[int]:
    """Terminate every other backend of this connection's role carrying ``tag``, and wait
    until each is gone.

    Only a previous delivery of this very attempt can carry the tag (task ids are unique), so
    nothing else is ever ended; and a role may always end its own sessions, so this needs no
    privilege (a run's SQL session is the jobs role's, its lock session the worker's: each is
    asked on its own connection). Returns the pids that were running a statement when ended.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, state = 'active', pg_terminate_backend(pid, %s) "
            "FROM pg_stat_activity WHERE application_name = %s AND usename = session_user "
            "AND pid <> pg_backend_pid()",
            [TERMINATE_WAIT_MS, tag],
        )
        rows = cursor.fetchall()
    for pid, _active, ended in rows:
        logger.warning(
            "a lost delivery's backend was still there; terminated",
            extra={"tag": tag, "backend_pid": pid, "ended": ended},
        )
    return [pid for pid, active, _ended in rows if active]


def note_lost(task_id: str | None, attempt: int, text: str) -> None:
    """Add ``text`` to the history row of the lost delivery this redelivery replaces."""
    from orchestrator.models import JobRun, RunStatus

    if not task_id:
        return
    try:
        with transaction.atomic():
            row = (
                JobRun.objects.select_for_update()
                .filter(
                    engine="celery",
                    engine_run_id=task_id,
                    attempt=attempt,
                    status=RunStatus.LOST,
                )
                .order_by("-delivery")
                .first()
            )
            if row is not None and text not in row.message:
                row.message = f"{row.message}; {text}" if row.message else text
                row.save(update_fields=["message", "updated_at"])
    except DatabaseError:
        logger.warning("lost run note not recorded", extra={"task_id": task_id}, exc_info=True)


def settle_lost_delivery(
    sessions: Sequence[BaseDatabaseWrapper],
    tag: str,
    task_id: str | None,
    attempt: int,
    body_kind: str,
) -> None:
    """Before a delivery runs: end what a lost earlier delivery left running on any of the
    run's ``sessions``, and say so on the lost delivery's history row."""
    ended = [pid for connection in sessions for pid in end_orphans(connection, tag)]
    if ended:
        pids = ", ".join(str(pid) for pid in ended)
        note_lost(
            task_id,
            attempt,
            f"its statement was still running (backend {pids}) and was terminated before "
            "the redelivery ran: its open transaction was rolled back",
        )
    elif body_kind == "sql" and _was_lost(task_id, attempt):
        note_lost(
            task_id,
            attempt,
            "no statement of it was still running at redelivery (the server aborts a "
            "statement whose worker has gone; one that had finished before stays committed)",
        )


def _was_lost(task_id: str | None, attempt: int) -> bool:
    from orchestrator.models import JobRun, RunStatus

    if not task_id:
        return False
    return JobRun.objects.filter(
        engine="celery", engine_run_id=task_id, attempt=attempt, status=RunStatus.LOST
    ).exists()
