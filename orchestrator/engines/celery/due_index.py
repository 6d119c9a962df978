"""The due index on the leader's lock connection: the SQL that reads and writes it, in one place.

Our beat (``due_scheduler``) keeps each periodic task's next due instant in
``celery_engine_beatdue`` (triggers in sql/0002_beat_due.sql mark a changed task dirty and
NOTIFY). Every statement on that table, and the fenced claim, runs on the leader's lock
connection, so any failure of it is loss of leadership: ``DueLock`` is that connection, with
one method per statement. ``due_scheduler`` decides what to compute and send; this module says
how each step reads or writes the database, and turns a selected record into a ``TaskRow``
(``due_times``) in the ``_SELECT``'s column order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from orchestrator.engines.celery.beat import LeaderLock, LeadershipLost
from orchestrator.engines.celery.due_times import EXPIRED, ONE_OFF_DONE, TaskRow

#: one computed due time to store: (task id, change_seq read, due_at or None, error or "")
Write = tuple[int, int, datetime | None, str]
#: one selected row: (task id, change_seq, the task, or None when it no longer exists)
Record = tuple[int, int, TaskRow | None]

#: The channel the triggers notify on a change (see sql/0002_beat_due.sql).
CHANNEL = "orchestrator_beat_due"

_SELECT = """
SELECT d.task_id, d.change_seq, t.id, t.name, t.task, t.args, t.kwargs, t.queue, t.exchange,
       t.routing_key, t.priority, t.headers, t.expires, t.expire_seconds, t.one_off, t.start_time,
       t.enabled, t.last_run_at, t.total_run_count, t.date_changed,
       i.id, i.every, i.period,
       c.id, c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year, c.timezone,
       s.id, s.event, s.latitude, s.longitude,
       k.id, k.clocked_time
FROM celery_engine_beatdue AS d
LEFT JOIN django_celery_beat_periodictask AS t ON t.id = d.task_id
LEFT JOIN django_celery_beat_intervalschedule AS i ON i.id = t.interval_id
LEFT JOIN django_celery_beat_crontabschedule AS c ON c.id = t.crontab_id
LEFT JOIN django_celery_beat_solarschedule AS s ON s.id = t.solar_id
LEFT JOIN django_celery_beat_clockedschedule AS k ON k.id = t.clocked_id
"""
_DIRTY = _SELECT + "WHERE d.dirty ORDER BY d.change_seq LIMIT %(limit)s"
_DUE = _SELECT + "WHERE d.due_at <= %(until)s ORDER BY d.due_at LIMIT %(limit)s"
_HEAD = "SELECT min(due_at) FROM celery_engine_beatdue WHERE due_at IS NOT NULL"

# Write computed due times back, only where nobody changed the row since it was read; rows that a
# writer holds locked right now are skipped (that writer's commit marks them dirty anyway), so a
# long admin transaction never blocks beat.
_STORE = """
UPDATE celery_engine_beatdue AS d
SET due_at = v.due_at, dirty = false, error = v.error, computed_at = now()
FROM unnest(%(ids)s::integer[], %(seqs)s::bigint[], %(dues)s::timestamptz[], %(errors)s::text[])
     AS v(task_id, seq, due_at, error)
WHERE d.task_id = v.task_id AND d.change_seq = v.seq
  AND d.task_id IN (SELECT task_id FROM celery_engine_beatdue WHERE task_id = ANY(%(ids)s)
                    FOR UPDATE SKIP LOCKED)
"""
_FORGET = """
DELETE FROM celery_engine_beatdue AS d WHERE d.task_id = ANY(%(ids)s)
  AND NOT EXISTS (SELECT 1 FROM django_celery_beat_periodictask AS t WHERE t.id = d.task_id)
"""
# What ModelEntry.is_due does to an expired task and to a one-off task that has run (its save()
# also clears last_run_at of a disabled task), guarded so a concurrent edit is not overwritten.
_DISABLE = {
    EXPIRED: """
        UPDATE django_celery_beat_periodictask
        SET enabled = false, last_run_at = NULL, date_changed = now()
        WHERE id = ANY(%(ids)s) AND enabled AND expires <= %(now)s
    """,
    ONE_OFF_DONE: """
        UPDATE django_celery_beat_periodictask
        SET enabled = false, last_run_at = NULL, total_run_count = 0, date_changed = now()
        WHERE id = ANY(%(ids)s) AND enabled AND one_off AND total_run_count > 0
    """,
}
# beat.py's fenced claim, plus: the task is still enabled and unchanged since it was read.
_CLAIM = """
WITH held AS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
      AND classid::bigint = (%(key)s >> 32) & 4294967295 AND objid::bigint = %(key)s & 4294967295
), claim AS (
    UPDATE django_celery_beat_periodictask AS t
    SET last_run_at = %(slot)s, total_run_count = total_run_count + 1
    WHERE t.id = %(id)s AND t.enabled AND (t.last_run_at IS NULL OR t.last_run_at < %(slot)s)
      AND EXISTS (SELECT 1 FROM held)
      AND EXISTS (SELECT 1 FROM celery_engine_beatdue AS d
                  WHERE d.task_id = t.id AND d.change_seq = %(seq)s)
    RETURNING t.id
)
SELECT (SELECT count(*) FROM claim), EXISTS (SELECT 1 FROM held)
"""


def _task_row(record: tuple[Any, ...]) -> TaskRow | None:
    """A ``_SELECT`` record as a ``TaskRow`` (None when the task no longer exists)."""
    if record[2] is None:
        return None
    interval, crontab, solar, clocked = record[20:23], record[23:30], record[30:34], record[34:36]
    # PeriodicTask.scheduler's order: interval, crontab, solar, clocked.
    kind: str | None
    if interval[0] is not None:
        kind, definition = "interval", tuple(interval[1:])
    elif crontab[0] is not None:
        kind, definition = "crontab", tuple(crontab[1:])
    elif solar[0] is not None:
        kind, definition = "solar", tuple(solar[1:])
    elif clocked[0] is not None:
        kind, definition = "clocked", tuple(clocked[1:])
    else:
        kind, definition = None, ()
    fields = dict(zip(TASK_ROW_FIELDS, record[2:20], strict=True))
    return TaskRow(**fields, kind=kind, definition=definition)


#: The ``TaskRow`` fields the scheduler's SQL selects, in its column order (then kind, definition).
TASK_ROW_FIELDS = tuple(field.name for field in dataclasses.fields(TaskRow))[:18]


class DueLock(LeaderLock):
    """The leader's lock connection, also used to LISTEN and to read and write the due index.

    Every use goes through ``execute``: any failure of this connection is loss of leadership.
    """

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> psycopg.Cursor[Any]:
        if self.connection is None:
            raise LeadershipLost("no lock connection")
        try:
            return self.connection.execute(sql, params)
        except psycopg.Error as error:
            self.release()
            raise LeadershipLost(f"lock connection failed: {error}") from error

    def listen(self) -> None:
        """Read times in UTC, plan each query for its arrays, subscribe to the notifications.

        psycopg prepares a statement run five times, and PostgreSQL then may switch to a generic
        plan that does not know how many ids an array holds: a 1,000-row write went from 20 ms to
        800 ms that way. These queries are cheap to plan, so they are always planned afresh.
        """
        self.execute("SET TIME ZONE 'UTC'")
        self.execute("SET plan_cache_mode = force_custom_plan")
        self.execute(f"LISTEN {CHANNEL}")

    def notified(self) -> bool:
        """Whether any notification arrived since the last call (never blocks)."""
        if self.connection is None:
            raise LeadershipLost("no lock connection")
        try:
            return bool(list(self.connection.notifies(timeout=0)))
        except psycopg.Error as error:
            self.release()
            raise LeadershipLost(f"lock connection failed: {error}") from error

    def claim_due(self, task_id: int, seq: int, slot: datetime) -> bool:
        """The fenced claim (see ``_CLAIM``); raises ``LeadershipLost`` without the lock."""
        row = self.execute(
            _CLAIM, {"key": self.key, "slot": slot, "id": task_id, "seq": seq}
        ).fetchone()
        assert row is not None
        claimed, held = row
        if not held:
            self.release()
            raise LeadershipLost("the advisory lock is no longer held")
        return bool(claimed)

    # ------------------------------------------------------------------ the due index

    def dirty(self, limit: int) -> list[Record]:
        """Up to ``limit`` rows whose due time must be computed, oldest change first."""
        return [_record(row) for row in self.execute(_DIRTY, {"limit": limit}).fetchall()]

    def due(self, until: datetime, limit: int) -> list[Record]:
        """Up to ``limit`` rows due at ``until``, earliest first (an index range scan)."""
        found = self.execute(_DUE, {"until": until, "limit": limit}).fetchall()
        return [_record(row) for row in found]

    def head(self) -> datetime | None:
        """The earliest due instant in the index (``None`` when no row has one)."""
        row = self.execute(_HEAD).fetchone()
        return row[0] if row else None

    def store(self, writes: Sequence[Write]) -> None:
        """Write computed due times back where the row is unchanged since it was read."""
        ids, seqs, dues, errors = (list(column) for column in zip(*writes, strict=True))
        self.execute(_STORE, {"ids": ids, "seqs": seqs, "dues": dues, "errors": errors})

    def disable(self, reason: str, ids: list[int], now: datetime) -> None:
        """Disable tasks as ``ModelEntry.is_due`` would for ``reason`` (see ``_DISABLE``)."""
        self.execute(_DISABLE[reason], {"ids": ids, "now": now})

    def forget(self, ids: list[int]) -> None:
        """Drop index rows whose task no longer exists."""
        self.execute(_FORGET, {"ids": ids})


def _record(record: tuple[Any, ...]) -> Record:
    return record[0], record[1], _task_row(record)


__all__ = ("CHANNEL", "DueLock", "Record", "Write")
