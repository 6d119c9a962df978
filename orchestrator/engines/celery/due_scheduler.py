"""A beat scheduler that reads only what is due: django-celery-beat's models, an indexed due time.

Run ``celery beat --scheduler orchestrator.engines.celery.due_scheduler:DueScheduler`` (the
project's default). It is ``LeaderDatabaseScheduler`` (beat.py: the advisory-lock leader, the
fenced claim, the slot header, the one send path) with a different way of knowing what is due.
Stock django-celery-beat reads and parses every enabled task at start, compares all of them on
every tick and reloads them all after any save: at 100,000 tasks, 15 s to start, 0.5 s per idle
tick, 19 s to see a change.

Here each task's next due instant lives in ``celery_engine_beatdue.due_at`` (indexed), and:

* **Changes are recorded by the database**, in the transaction that makes them, whoever makes
  them: triggers (sql/0002_beat_due.sql) mark the task's row dirty with a new
  ``change_seq`` and ``NOTIFY orchestrator_beat_due``. The leader LISTENs on its lock connection,
  so a saved change is seen at the next look (at most ``wake_every``, 0.25 s, later); it computes
  ``due_at`` for dirty rows only, with Celery's own schedule classes (due_times.py), and
  clears ``dirty`` only where ``change_seq`` is still what it read. A sequence, not a timestamp:
  two saves in one second are two changes.
* **A tick reads what is due**: ``due_at <= now ORDER BY due_at LIMIT batch`` (an index range
  scan), then ``min(due_at)`` to know how long to sleep. An idle tick runs no query at all beyond
  the leader's liveness check; start-up computes only the rows that are dirty.
* **Nothing stale is sent**: a dirty row has no ``due_at``; each due row is decided again at send
  time; and the claim (one statement on the lock connection, as in beat.py) also requires
  the task to be enabled and its ``change_seq`` unchanged since it was read. A deleted task's row
  is deleted with it; a disabled one is never claimed.
* **The manifest's slot policy** (``catch_up``, ``jitter``, clock-aligned ``every``) rides in the
  task's headers and is applied here (``slot_policy``); a task without one keeps stock behaviour.
* **Bad rows are skipped, not fatal**: a schedule that cannot be computed (unknown time zone,
  invalid crontab, arguments that are not JSON) is logged with the task's name, its ``error``
  column says why, and it is looked at again when it changes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime
from typing import Any

import psycopg

from orchestrator.engines.celery.beat import (
    LeaderDatabaseScheduler,
    LeaderLock,
    LeadershipLost,
    slot_for,
)
from orchestrator.engines.celery.due_times import (
    EXPIRED,
    ONE_OFF_DONE,
    DueEntry,
    ScheduleCache,
    TaskRow,
    UnschedulableError,
    decide,
    effective_last_run,
)
from orchestrator.engines.celery.slot_policy import SlotPolicy, slots_to_send

logger = logging.getLogger(__name__)

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


class DueScheduler(LeaderDatabaseScheduler):
    """``LeaderDatabaseScheduler`` that keeps due times in an index instead of reloading."""

    #: Most seconds between looks for notifications: the bound on seeing a saved change.
    wake_every = 0.25
    #: Rows read per query, computed or dispatched.
    batch = 1000
    #: Most seconds of due-time computation per tick before due tasks are dispatched.
    refresh_budget = 0.5

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.cache = ScheduleCache()
        #: Rows whose due time this process computed (start-up computes only the dirty ones).
        self.computed = 0
        self._stale = True
        self._head: datetime | None = None
        self._head_known = False
        super().__init__(*args, **kwargs)
        self.lock: DueLock = DueLock(key=self.lock.key)

    # ------------------------------------------------------------------ stock hooks, unused

    @property
    def schedule(self) -> dict[str, Any]:
        """Only the entries ``setup_schedule`` installed: the due index is the schedule."""
        if self._schedule is None:
            self._schedule = {}
        return self._schedule

    def schedule_changed(self) -> bool:
        return False

    # ------------------------------------------------------------------ leadership

    def _take_over(self) -> None:
        super()._take_over()
        self._stale, self._head_known = True, False
        try:
            self.lock.listen()
        except LeadershipLost as error:
            self._step_down(str(error))

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.ensure_leadership():
            self.slots.abandon("this beat lost the leadership before the broker took it")
            return self.standby_poll
        self.slots.retry_due()  # claimed slots the broker refused (beat_send)
        try:
            return self.slots.next_retry_in(self._lead())
        except LeadershipLost as error:
            self._step_down(str(error))
            return self.standby_poll

    def _lead(self) -> float:
        """One look: take in changes, dispatch what is due, say how long to sleep."""
        if self.lock.notified():
            self._stale = True
        if self._stale:
            self._stale = not self._refresh(time.monotonic() + self.refresh_budget)
            self._head_known = False
        now = datetime.now(UTC)
        more = False
        if not self._head_known or (self._head is not None and self._head <= now):
            more, sent = self._dispatch(now)
            if sent:  # each claim dirtied its row: compute the next due instants now
                self._stale = not self._refresh(time.monotonic() + self.refresh_budget)
            head = self.lock.execute(_HEAD).fetchone()
            self._head = head[0] if head else None
            self._head_known = True
        if more or self._stale:
            return 0.0
        if self._head is None:
            return self.wake_every
        wait = (self._head - datetime.now(UTC)).total_seconds()
        return min(max(wait, 0.01), self.wake_every)

    # ------------------------------------------------------------------ due index

    def _refresh(self, deadline: float) -> bool:
        """Compute ``due_at`` for dirty rows, a batch at a time; True once none are left."""
        now = datetime.now(UTC)
        self.cache.begin(now)  # one "now" per call: its memo of estimates serves every batch
        while True:
            records = self.lock.execute(_DIRTY, {"limit": self.batch}).fetchall()
            writes: list[tuple[int, int, datetime | None, str]] = []
            disables: dict[str, list[int]] = {EXPIRED: [], ONE_OFF_DONE: []}
            orphans: list[int] = []
            for record in records:
                task_id, seq, row = record[0], record[1], _task_row(record)
                if row is None:
                    orphans.append(task_id)
                    continue
                try:
                    decision = decide(row, self.cache, self.app.timezone)
                except UnschedulableError as error:
                    writes.append((task_id, seq, None, self._bad_row(row, error)))
                    continue
                writes.append((task_id, seq, decision.due_at, ""))
                if decision.disable:
                    disables[decision.disable].append(task_id)
            self.computed += len(records)
            self._write(writes, disables, orphans, now)
            if len(records) < self.batch:
                return True
            if time.monotonic() >= deadline:
                return False

    def _dispatch(self, now: datetime) -> tuple[bool, int]:
        """Send every row due at ``now`` (one batch); returns (maybe more due, sent count)."""
        records = self.lock.execute(_DUE, {"until": now, "limit": self.batch}).fetchall()
        self.cache.begin(now)
        writes: list[tuple[int, int, datetime | None, str]] = []
        disables: dict[str, list[int]] = {EXPIRED: [], ONE_OFF_DONE: []}
        orphans: list[int] = []
        sent = 0
        for record in records:
            task_id, seq, row = record[0], record[1], _task_row(record)
            if row is None:
                orphans.append(task_id)
                continue
            try:
                decision = decide(row, self.cache, self.app.timezone)
                due = decision.due_at is not None and decision.due_at <= now
                if due and not decision.disable:
                    entry = DueEntry(row, self.cache.get(row.kind, row.definition), now, self.app)
            except UnschedulableError as error:
                writes.append((task_id, seq, None, self._bad_row(row, error)))
                continue
            if decision.disable:
                writes.append((task_id, seq, None, ""))
                disables[decision.disable].append(task_id)
            elif not due:  # e.g. start_time not reached yet: keep the new instant
                writes.append((task_id, seq, decision.due_at, ""))
            elif self._send(entry, row, seq, now):
                sent += 1
            if not self.leading:
                break
        self._write(writes, disables, orphans, now)
        return len(records) == self.batch, sent

    def _send(self, entry: DueEntry, row: TaskRow, seq: int, now: datetime) -> bool:
        """Claim the slot (the fence), then send through beat.py's one send path.

        A row with the manifest's slot policy (``slot_policy``) claims the latest slot due and
        sends the slots its ``catch_up`` asks for (none, one, or each missed one), each message
        carrying its own slot."""
        slot, sends = slot_for(entry, now), None
        policy = SlotPolicy.from_headers(row.headers)
        if policy is not None:
            last = effective_last_run(row, now)
            chosen, latest = slots_to_send(policy, row.kind, row.definition, last, now)
            if latest is not None:
                slot, sends = latest, chosen
        try:
            claimed = self.lock.claim_due(entry.task_id, seq, slot)
        except LeadershipLost as error:
            self._step_down(str(error))
            return False
        if not claimed:
            logger.warning(
                "beat: task changed, disabled or its slot already claimed; not sending",
                extra={"task": entry.name, "slot": slot.isoformat()},
            )
            return False
        if sends is None:
            sends = [slot]
        elif len(sends) != 1 or sends[0] != slot:
            logger.info(
                "beat: catch-up sends %d of the slots due",
                len(sends),
                extra={
                    "task": entry.name,
                    "slot": slot.isoformat(),
                    "catch_up": policy and policy.catch_up,
                },
            )
        for each in sends:
            self._claims[id(entry)] = each
            self.apply_entry(entry, producer=self.producer)
        return True

    def _write(
        self,
        writes: list[tuple[int, int, datetime | None, str]],
        disables: dict[str, list[int]],
        orphans: list[int],
        now: datetime,
    ) -> None:
        if writes:
            ids, seqs, dues, errors = (list(column) for column in zip(*writes, strict=True))
            self.lock.execute(_STORE, {"ids": ids, "seqs": seqs, "dues": dues, "errors": errors})
        for reason, ids in disables.items():
            if ids:
                logger.info("beat: disabling %s tasks", reason, extra={"task_ids": ids})
                self.lock.execute(_DISABLE[reason], {"ids": ids, "now": now})
        if orphans:
            self.lock.execute(_FORGET, {"ids": orphans})

    def _bad_row(self, row: TaskRow, error: UnschedulableError) -> str:
        message = str(error)[:500]
        logger.error(
            "beat: cannot schedule periodic task %r, skipping it: %s",
            row.name,
            message,
            extra={"task": row.name, "task_id": row.id},
        )
        return message


__all__ = ("CHANNEL", "DueLock", "DueScheduler")
