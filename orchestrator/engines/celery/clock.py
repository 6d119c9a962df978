"""When Celery beat really runs a job: Celery's own schedule classes, stepped like beat.

Cron schedules are django-celery-beat's ``TzAwareCrontab`` (the class beat builds from a
``CrontabSchedule`` row). From a last-run instant, the next run is ``now +
remaining_estimate(last_run_at)``, the very sum beat's ``is_due`` waits for; beat then records
that instant as the new ``last_run_at`` (``beat.slot_for``), and the next step starts from it.
On a day whose local 02:30 does not exist, Celery runs at 03:30 (late by the change); on a day
01:30 happens twice, it runs once. croniter differs on both, which is why ``explain`` and
missed-run counting ask this module and not croniter.

Expressions with croniter's L, W or # are croniter's instants (our beat computes them so).
Intervals are aligned to the clock (our beat keeps them so, ``due_scheduler``); a clocked
(one-time) task runs at its instant.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from celery import current_app
from croniter import croniter
from django_celery_beat.tzcrontab import TzAwareCrontab

from orchestrator.cron_readings import has_extension
from orchestrator.engine_times import aware_utc, interval_runs
from orchestrator.engines.celery.fit import celery_fit
from orchestrator.schedules import EngineSchedule
from orchestrator.specs import At, Cron, Trigger


def schedule_of(trigger: Trigger, timezone: str) -> EngineSchedule | None:
    """The django-celery-beat schedule a job with this trigger was given."""
    return celery_fit(trigger, timezone).schedule


def runs(
    trigger: Trigger, timezone: str, after: datetime, last_run: datetime | None = None
) -> Iterator[datetime]:
    """Beat's runs of ``trigger`` after ``after``, in UTC, ascending."""
    after = aware_utc(after)
    if isinstance(trigger, At):
        return iter([trigger.when.astimezone(UTC)] if trigger.when > after else [])
    if isinstance(trigger, Cron) and has_extension(trigger.expr):
        return croniter_instants(trigger.expr, timezone, after)  # our beat reads it so
    schedule = schedule_of(trigger, timezone)
    if schedule is None:
        return iter(())
    if schedule.kind == "interval" and schedule.seconds:
        return interval_runs(schedule.seconds, after, last_run)
    if schedule.kind == "cron" and schedule.cron:
        return celery_instants(celery_crontab(schedule.cron, schedule.timezone), after)
    return iter(())


def croniter_instants(expr: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """croniter's instants of ``expr`` in ``timezone`` after ``after``, in UTC: what our beat
    runs for an expression with L, W or # (``slot_policy``)."""
    walker = croniter(expr, aware_utc(after).astimezone(ZoneInfo(timezone)))
    while True:
        yield walker.get_next(datetime).astimezone(UTC)


def celery_crontab(expr: str, timezone: str) -> TzAwareCrontab:
    """The schedule object beat builds from a ``CrontabSchedule`` row with these fields."""
    minute, hour, day_of_month, month_of_year, day_of_week = expr.split(" ")
    return TzAwareCrontab(
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        tz=ZoneInfo(timezone),
        app=current_app,
    )


def celery_next(schedule: TzAwareCrontab, last_run_at: datetime) -> datetime:
    """The instant beat runs ``schedule`` next after ``last_run_at``: ``now + remaining``,
    with ``now`` pinned to ``last_run_at`` (the sum does not depend on ``now``)."""
    pinned = aware_utc(last_run_at)
    schedule.nowfun = lambda: pinned
    return (pinned + schedule.remaining_estimate(pinned)).astimezone(UTC)


def celery_instants(schedule: TzAwareCrontab, after: datetime) -> Iterator[datetime]:
    """Beat's runs after ``after``: each run becomes the next step's ``last_run_at``."""
    last = aware_utc(after)
    while True:
        following = celery_next(schedule, last)
        if following <= last:  # never loop on a schedule that does not advance
            following = celery_next(schedule, last + timedelta(minutes=1))
        last = following
        yield following
