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

This module decides what to compute and what to send; the statements on the due index and the
fenced claim are ``due_index``'s (``DueLock``), the due-time arithmetic is ``due_times``'.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from orchestrator.engines.celery.beat import LeaderDatabaseScheduler, LeadershipLost, slot_for
from orchestrator.engines.celery.due_index import DueLock, Write
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
            self._head = self.lock.head()
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
            records = self.lock.dirty(self.batch)
            writes: list[Write] = []
            disables: dict[str, list[int]] = {EXPIRED: [], ONE_OFF_DONE: []}
            orphans: list[int] = []
            for task_id, seq, row in records:
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
        records = self.lock.due(now, self.batch)
        self.cache.begin(now)
        writes: list[Write] = []
        disables: dict[str, list[int]] = {EXPIRED: [], ONE_OFF_DONE: []}
        orphans: list[int] = []
        sent = 0
        for task_id, seq, row in records:
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
        writes: list[Write],
        disables: dict[str, list[int]],
        orphans: list[int],
        now: datetime,
    ) -> None:
        if writes:
            self.lock.store(writes)
        for reason, ids in disables.items():
            if ids:
                logger.info("beat: disabling %s tasks", reason, extra={"task_ids": ids})
                self.lock.disable(reason, ids, now)
        if orphans:
            self.lock.forget(orphans)

    def _bad_row(self, row: TaskRow, error: UnschedulableError) -> str:
        message = str(error)[:500]
        logger.error(
            "beat: cannot schedule periodic task %r, skipping it: %s",
            row.name,
            message,
            extra={"task": row.name, "task_id": row.id},
        )
        return message


__all__ = ("DueScheduler",)
