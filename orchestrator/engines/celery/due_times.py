"""When is a django-celery-beat periodic task next due? Stock semantics, computed once per change.

The due-time scheduler (``due_scheduler``) stores each task's next due instant in an indexed
column and recomputes it only when the task (or its schedule) changed. This module is that
computation, as pure functions over one row, so it can be read side by side with
``django_celery_beat.schedulers.ModelEntry`` (2.9), whose promises it keeps:

* the schedule object is the one django-celery-beat builds (``CrontabSchedule.schedule`` is a
  ``TzAwareCrontab`` in the task's time zone, daylight saving included; interval, clocked, solar);
  each distinct definition is parsed once and cached (stock re-parses every task on every reload);
* ``enabled``; ``start_time`` (not due before it: a crontab waits for its first instant at or after
  ``start_time``); ``expires`` (the task is disabled once it has passed); ``one_off`` (disabled
  after its first run, ``total_run_count`` reset); a never-run task counts from ``date_changed``;
* a row carrying the manifest's slot policy (``slot_policy``) is due at its aligned interval
  slot, plus its jitter offset; rows without one keep stock semantics exactly;
* the next instant is ``now + schedule.remaining_estimate(last_run_at)``, Celery's own arithmetic,
  with every cached schedule reading one frozen "now" so that the sum is exact (an interval task
  is due at exactly ``last_run_at + every``, which the fenced claim's slot relies on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import schedules
from celery.beat import ScheduleEntry
from celery.utils.time import maybe_make_aware
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    SolarSchedule,
)
from kombu.utils.json import loads

from orchestrator.engines.celery.slot_policy import (
    POLICY_HEADER,
    SlotPolicy,
    next_croniter_slot,
    next_interval_slot,
)

#: ModelEntry puts a never-run task with a ``start_time`` this far in the past, so it runs at once
#: when ``start_time`` comes.
START_TIME_LOOKBACK = timedelta(days=365 * 30)

# Disable reasons, as ModelEntry.is_due applies them.
EXPIRED = "expired"
ONE_OFF_DONE = "one_off"


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One periodic task with its schedule's definition, as read by the scheduler's SQL."""

    id: int
    name: str
    task: str
    args: str | None
    kwargs: str | None
    queue: str | None
    exchange: str | None
    routing_key: str | None
    priority: int | None
    headers: str | None
    expires: datetime | None
    expire_seconds: int | None
    one_off: bool
    start_time: datetime | None
    enabled: bool
    last_run_at: datetime | None
    total_run_count: int
    date_changed: datetime | None
    kind: str | None  # crontab | interval | clocked | solar | None (no schedule set)
    definition: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """``due_at`` (None: never, until the task changes) or a reason to disable the task."""

    due_at: datetime | None
    disable: str | None = None


class UnschedulableError(ValueError):
    """The task has no schedule, or its schedule cannot be built (bad time zone, bad crontab)."""


def _build(kind: str | None, definition: tuple[Any, ...]) -> schedules.BaseSchedule:
    """django-celery-beat's own schedule object for a definition (unsaved model instances)."""
    if kind == "crontab":
        minute, hour, day_of_week, day_of_month, month_of_year, tz = definition
        return CrontabSchedule(
            minute=minute,
            hour=hour,
            day_of_week=day_of_week,
            day_of_month=day_of_month,
            month_of_year=month_of_year,
            timezone=tz,
        ).schedule
    if kind == "interval":
        every, period = definition
        if every is None or every < 1:
            raise UnschedulableError(f"interval of {every} {period}")
        return IntervalSchedule(every=every, period=period).schedule
    if kind == "clocked":
        return ClockedSchedule(clocked_time=definition[0]).schedule
    if kind == "solar":
        event, latitude, longitude = definition
        return SolarSchedule(event=event, latitude=latitude, longitude=longitude).schedule
    raise UnschedulableError("no schedule set (crontab, interval, clocked or solar)")


class ScheduleCache:
    """Parsed schedules by definition, all reading the same frozen ``now``.

    Keyed by the definition, not the schedule row's id: an edited crontab row is a new key, so a
    stale parse is never used. Bounded: past ``max_size`` distinct definitions it starts over.
    """

    def __init__(self, max_size: int = 20_000) -> None:
        self.max_size = max_size
        self.now = datetime.now(UTC)
        self.parsed = 0
        self._schedules: dict[tuple[Any, ...], schedules.BaseSchedule] = {}
        self._memo: dict[tuple[Any, ...], timedelta] = {}

    def begin(self, now: datetime) -> None:
        """Freeze ``now`` for the next computations (and forget estimates made for another now)."""
        if now != self.now:
            self.now = now
            self._memo.clear()

    def get(self, kind: str | None, definition: tuple[Any, ...]) -> schedules.BaseSchedule:
        key = (kind, *definition)
        schedule = self._schedules.get(key)
        if schedule is None:
            try:
                schedule = _build(kind, definition)
            except UnschedulableError:
                raise
            # Reason: celery, zoneinfo, django-timezone-field and ephem raise many kinds of errors
            # for a bad definition; every one of them means "this row cannot be scheduled".
            except Exception as error:
                raise UnschedulableError(f"{kind} {definition!r}: {error}") from error
            tz = getattr(schedule, "tz", None) if kind == "crontab" else None
            schedule.nowfun = self._now_in(tz)
            if len(self._schedules) >= self.max_size:
                self._schedules.clear()
            self._schedules[key] = schedule
            self.parsed += 1
        return schedule

    def _now_in(self, tz: Any) -> Any:
        if tz is None:
            return lambda: self.now
        return lambda: self.now.astimezone(tz)

    def remaining(
        self, row: TaskRow, schedule: schedules.BaseSchedule, last: datetime
    ) -> timedelta:
        """``schedule.remaining_estimate(last)``, memoised per (definition, last) for this now."""
        key = (row.kind, *row.definition, last)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = schedule.remaining_estimate(last)
        return found


def decide(row: TaskRow, cache: ScheduleCache, app_tz: Any) -> Decision:
    """The task's next due instant at ``cache.now``, following ``ModelEntry.is_due`` step by step.

    Raises ``UnschedulableError`` for a row whose schedule cannot be computed.
    """
    now = cache.now
    if not row.enabled:
        return Decision(None)
    schedule = cache.get(row.kind, row.definition)
    if row.start_time is not None and now < row.start_time:
        return Decision(_start_gate(row, schedule, app_tz))
    if row.expires is not None and now >= row.expires:
        return Decision(None, EXPIRED)
    if row.one_off and row.total_run_count > 0:
        return Decision(None, ONE_OFF_DONE)
    ran = row.last_run_at
    if isinstance(schedule, clocked) and ran is not None and ran >= schedule.clocked_time:
        return Decision(None)  # a clocked instant runs once, even without one_off
    last = maybe_make_aware(effective_last_run(row, now)).astimezone(app_tz)
    tz = getattr(schedule, "tz", None) if row.kind == "crontab" else None
    if tz is not None:  # TzAwareCrontab.is_due reads last_run_at in the task's zone
        last = last.astimezone(tz)
    try:
        due = now + cache.remaining(row, schedule, last)
    # Reason: the schedule classes compute from user data (solar at the poles, odd crontabs); a
    # failure here must skip this row, not stop beat.
    except Exception as error:
        raise UnschedulableError(f"{row.kind} {row.definition!r}: {error}") from error
    policy = SlotPolicy.from_headers(row.headers)
    if policy is not None:  # the manifest's slot policy (slot_policy): aligned, jittered
        if row.kind == "interval" and policy.align:
            due = next_interval_slot(policy, row.definition, effective_last_run(row, now))
        elif row.kind == "crontab" and policy.cron:
            try:
                due = next_croniter_slot(policy, effective_last_run(row, now))
            # Reason: croniter and zoneinfo raise many kinds for a hand-edited header; the row
            # is skipped with its reason, never beat.
            except Exception as error:
                raise UnschedulableError(f"croniter {policy.cron!r}: {error}") from error
        due += timedelta(seconds=policy.offset)
    if row.expires is not None and due > row.expires:
        due = row.expires  # looked at again then, and disabled as expired
    return Decision(due.astimezone(UTC))


def effective_last_run(row: TaskRow, now: datetime) -> datetime:
    """``ModelEntry``'s ``last_run_at``: a never-run task counts from ``date_changed``."""
    if row.last_run_at is not None:
        return row.last_run_at
    last = row.date_changed or now
    if row.start_time is not None:
        last -= START_TIME_LOOKBACK
    return last


def _start_gate(row: TaskRow, schedule: schedules.BaseSchedule, app_tz: Any) -> datetime:
    """``PeriodicTask.due_start_time``: a crontab's first instant at or after ``start_time``."""
    assert row.start_time is not None
    if row.kind != "crontab":
        return row.start_time
    start, ends_in, _now = schedule.remaining_delta(row.start_time.astimezone(app_tz))
    return (start + ends_in).astimezone(UTC)


class DueEntry(ScheduleEntry):
    """What beat sends for one due row: ``ModelEntry``'s message options, built from the row."""

    def __init__(
        self, row: TaskRow, schedule: schedules.BaseSchedule, now: datetime, app: Any
    ) -> None:
        try:
            args = loads(row.args or "[]")
            kwargs = loads(row.kwargs or "{}")
            headers = loads(row.headers or "{}")
        except ValueError as error:
            raise UnschedulableError(f"arguments or headers are not JSON: {error}") from error
        options: dict[str, Any] = {}
        for option in ("queue", "exchange", "routing_key", "priority"):
            value = getattr(row, option)
            if value is not None:
                options[option] = value
        if row.expires or row.expire_seconds:
            options["expires"] = row.expires or row.expire_seconds
        headers.pop(POLICY_HEADER, None)  # for beat, not for the task
        headers["periodic_task_name"] = row.name
        options["headers"] = headers
        super().__init__(
            name=row.name,
            task=row.task,
            last_run_at=effective_last_run(row, now),
            total_run_count=row.total_run_count,
            schedule=schedule,
            args=args,
            kwargs=kwargs,
            options=options,
            app=app,
        )
        self.task_id = row.id


__all__ = (
    "EXPIRED",
    "ONE_OFF_DONE",
    "Decision",
    "DueEntry",
    "ScheduleCache",
    "TaskRow",
    "UnschedulableError",
    "decide",
    "effective_last_run",
)
