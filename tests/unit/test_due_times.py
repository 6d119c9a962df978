"""The due-time scheduler's computation against django-celery-beat's own ``ModelEntry.is_due``.

``due_times.decide`` computes once, per change, what stock django-celery-beat decides on
every tick. For random crontabs (in several time zones), intervals, clocked instants, start times
and last runs, the two must agree: due now exactly when stock says due, and otherwise due when
stock would next look. No database: the models are unsaved instances, as ``decide`` builds them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)
from django_celery_beat.schedulers import ModelEntry
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engines.celery.due_times import (
    EXPIRED,
    ONE_OFF_DONE,
    DueEntry,
    ScheduleCache,
    TaskRow,
    UnschedulableError,
    decide,
)
from project.celery import app

ZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


def row_for(task: PeriodicTask) -> TaskRow:
    """The row the scheduler's SQL would read for ``task``."""
    if task.interval is not None:
        kind, definition = "interval", (task.interval.every, task.interval.period)
    elif task.crontab is not None:
        c = task.crontab
        definition = (c.minute, c.hour, c.day_of_week, c.day_of_month, c.month_of_year)
        kind, definition = "crontab", (*definition, str(c.timezone))
    elif task.clocked is not None:
        kind, definition = "clocked", (task.clocked.clocked_time,)
    else:
        kind, definition = None, ()
    return TaskRow(
        id=1,
        name=task.name,
        task=task.task,
        args=task.args,
        kwargs=task.kwargs,
        queue=task.queue,
        exchange=task.exchange,
        routing_key=task.routing_key,
        priority=task.priority,
        headers=task.headers,
        expires=task.expires,
        expire_seconds=task.expire_seconds,
        one_off=task.one_off,
        start_time=task.start_time,
        enabled=task.enabled,
        last_run_at=task.last_run_at,
        total_run_count=task.total_run_count,
        date_changed=task.date_changed,
        kind=kind,
        definition=definition,
    )


def periodic(**fields: Any) -> PeriodicTask:
    fields.setdefault("date_changed", datetime.now(UTC) - timedelta(days=3))
    return PeriodicTask(name="t", task="orchestrator.ping", **fields)


def assert_agrees(task: PeriodicTask) -> None:
    """Stock's verdict now and ours now: same due, same next look (to the second)."""
    row = row_for(task)  # before ModelEntry, which fills in a missing last_run_at
    cache = ScheduleCache()
    cache.begin(datetime.now(UTC))
    ours = decide(row, cache, app.timezone)
    stock_due, stock_next = ModelEntry(task, app=app).is_due()
    assert ours.disable is None
    assert ours.due_at is not None
    assert (ours.due_at <= cache.now) == stock_due, (ours, stock_due, stock_next)
    if not stock_due:
        assert (ours.due_at - cache.now).total_seconds() == pytest.approx(stock_next, abs=1.0)


minutes = st.sampled_from(["*", "0", "5", "30", "*/15", "0,30", "59", "10-20"])
hours = st.sampled_from(["*", "0", "2", "3", "9", "*/6", "1-5", "23"])
days_of_week = st.sampled_from(["*", "1", "0,6", "1-5"])
days_of_month = st.sampled_from(["*", "1", "15", "1-7", "31"])
ago = st.integers(min_value=-30, max_value=400 * 24 * 3600).map(lambda s: timedelta(seconds=s))


@settings(max_examples=300, deadline=None)
@given(minutes, hours, days_of_week, days_of_month, st.sampled_from(ZONES), ago, st.booleans())
def test_decide__crontab_agrees_with_model_entry(
    minute: str, hour: str, dow: str, dom: str, zone: str, since: timedelta, never_ran: bool
) -> None:
    """Crontab in the task's time zone, run or never run: the same verdict as stock."""
    now = datetime.now(UTC)
    crontab = CrontabSchedule(
        minute=minute, hour=hour, day_of_week=dow, day_of_month=dom, timezone=zone
    )
    task = periodic(crontab=crontab, last_run_at=None if never_ran else now - since)
    assert_agrees(task)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=1, max_value=500),
    st.sampled_from(["seconds", "minutes", "hours", "days"]),
    ago,
    st.booleans(),
)
def test_decide__interval_agrees_with_model_entry(
    every: int, period: str, since: timedelta, never_ran: bool
) -> None:
    """Intervals, run or never run (counted from date_changed): the same verdict as stock."""
    now = datetime.now(UTC)
    interval = IntervalSchedule(every=every, period=period)
    task = periodic(interval=interval, last_run_at=None if never_ran else now - since)
    assert_agrees(task)


def test_decide__interval_due_exactly_one_period_after_the_last_run() -> None:
    """The fenced claim's slot is last_run_at + every: the computed instant must be exact."""
    last = datetime(2026, 1, 5, 10, 0, 3, 123456, tzinfo=UTC)
    row = row_for(periodic(interval=IntervalSchedule(every=10, period="seconds"), last_run_at=last))
    cache = ScheduleCache()
    cache.begin(datetime.now(UTC))
    assert decide(row, cache, app.timezone).due_at == last + timedelta(seconds=10)


def test_decide__crontab_follows_daylight_saving_in_the_task_zone() -> None:
    """09:00 New York is 14:00 UTC before the March change and 13:00 UTC after it."""
    crontab = CrontabSchedule(minute="0", hour="9", timezone="America/New_York")
    cache = ScheduleCache()
    cache.begin(datetime(2026, 3, 9, 0, 0, tzinfo=UTC))
    before = periodic(crontab=crontab, last_run_at=datetime(2026, 3, 6, 14, 0, tzinfo=UTC))
    after = periodic(crontab=crontab, last_run_at=datetime(2026, 3, 7, 14, 0, tzinfo=UTC))
    assert decide(row_for(before), cache, app.timezone).due_at == datetime(
        2026, 3, 7, 14, 0, tzinfo=UTC
    )
    assert decide(row_for(after), cache, app.timezone).due_at == datetime(
        2026, 3, 8, 13, 0, tzinfo=UTC
    )


def test_decide__crontab_start_time_waits_for_its_first_instant() -> None:
    """Ported from django-celery-beat's test_crontab_with_start_time_between_now_and_crontab
    and _after_crontab: not due before start_time; then at the crontab's first instant after it.
    """
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cache = ScheduleCache()
    cache.begin(now)
    for start_in, cron_in, expected in ((2, 4, 4), (4, 2, 62)):
        at = now + timedelta(minutes=cron_in)
        task = periodic(
            crontab=CrontabSchedule(minute=str(at.minute), timezone="Asia/Shanghai"),
            start_time=(now + timedelta(minutes=start_in)).astimezone(ZoneInfo("Asia/Shanghai")),
        )
        decision = decide(row_for(task), cache, app.timezone)
        assert decision.due_at == now + timedelta(minutes=expected)


def test_decide__interval_start_time() -> None:
    """Ported from test_task_with_start_time: due once start_time has come, else at start_time."""
    now = datetime.now(UTC)
    cache = ScheduleCache()
    cache.begin(now)
    every = IntervalSchedule(every=10, period="seconds")
    started = periodic(interval=every, start_time=now, last_run_at=now - timedelta(seconds=10))
    assert decide(row_for(started), cache, app.timezone).due_at <= now
    tomorrow = now + timedelta(days=1)
    later = periodic(interval=every, start_time=tomorrow, last_run_at=now - timedelta(seconds=10))
    assert decide(row_for(later), cache, app.timezone).due_at == tomorrow


def test_decide__expired_one_off_disabled_and_clocked() -> None:
    """Ported from test_task_with_expires and test_one_off_task: expired and spent one-off tasks
    are disabled, never due; a clocked task is due at its instant and once only."""
    now = datetime.now(UTC)
    cache = ScheduleCache()
    cache.begin(now)
    every = IntervalSchedule(every=10, period="seconds")
    last = now - timedelta(seconds=10)

    def verdict(**fields: Any) -> Any:
        return decide(row_for(periodic(**fields)), cache, app.timezone)

    assert verdict(interval=every, last_run_at=last, expires=now + timedelta(seconds=1)).due_at
    assert verdict(interval=every, expires=now).disable == EXPIRED
    assert verdict(interval=every, expires=now - timedelta(seconds=1)).disable == EXPIRED
    fresh = verdict(interval=every, one_off=True, last_run_at=last, total_run_count=0)
    assert fresh.due_at is not None
    assert fresh.due_at <= now
    spent = verdict(interval=every, one_off=True, last_run_at=last, total_run_count=1)
    assert spent.disable == ONE_OFF_DONE
    assert verdict(interval=every, last_run_at=last, enabled=False).due_at is None
    soon = now + timedelta(minutes=5)
    clock = ClockedSchedule(clocked_time=soon)
    assert verdict(clocked=clock, one_off=True).due_at == soon
    assert verdict(clocked=clock, last_run_at=soon).due_at is None
    # A due date past expiry is looked at again at expiry (and then disabled).
    capped = verdict(interval=IntervalSchedule(every=1, period="hours"), last_run_at=now,
                     expires=now + timedelta(minutes=1))  # fmt: skip
    assert capped.due_at == now + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("kind", "definition"),
    [
        ("crontab", ("0", "4", "*", "*", "*", "Mars/Olympus_Mons")),
        ("crontab", ("99", "*", "*", "*", "*", "UTC")),
        ("crontab", ("*", "25", "*", "*", "*", "UTC")),
        ("interval", (0, "seconds")),
        (None, ()),
    ],
)
def test_decide__unschedulable_rows_raise_one_error(kind: str, definition: tuple[Any, ...]) -> None:
    """Bad time zones, impossible crontabs, no schedule: UnschedulableError, nothing else."""
    row = row_for(periodic(interval=IntervalSchedule(every=1, period="seconds")))
    bad = TaskRow(**{**{f: getattr(row, f) for f in row.__slots__}, "kind": kind,
                     "definition": definition})  # fmt: skip
    cache = ScheduleCache()
    with pytest.raises(UnschedulableError):
        decide(bad, cache, app.timezone)


def test_schedule_cache__parses_each_definition_once() -> None:
    """500 distinct crontabs over 5,000 tasks: 500 parses, not 5,000."""
    cache = ScheduleCache()
    cache.begin(datetime.now(UTC))
    for index in range(5000):
        k = index % 500
        definition = (str(k % 60), str(k // 60), "*", "*", "*", "UTC")
        cache.get("crontab", definition)
    assert cache.parsed == 500


def test_due_entry__carries_stock_message_options() -> None:
    """Queue, routing, priority, expiry and headers (with periodic_task_name), as ModelEntry."""
    task = periodic(
        interval=IntervalSchedule(every=1, period="hours"),
        args='[1, "a"]',
        kwargs='{"k": 2}',
        queue="q",
        priority=3,
        headers='{"h": "v"}',
        expire_seconds=30,
    )
    entry = DueEntry(row_for(task), task.interval.schedule, datetime.now(UTC), app)
    stock = ModelEntry(task, app=app)
    assert (entry.args, entry.kwargs, entry.options) == (stock.args, stock.kwargs, stock.options)
    bad = row_for(periodic(interval=IntervalSchedule(every=1, period="hours"), kwargs="{nope"))
    with pytest.raises(UnschedulableError):
        DueEntry(bad, task.interval.schedule, datetime.now(UTC), app)
