"""When pg_cron really runs a job: its own reading of the expression, on its clock.

pg_cron 1.4 evaluates its reading of a cron expression (``reading.pg_cron_reading``, a port of
its parser, Vixie cron's day rule included) against the server clock in GMT, minute by minute;
GMT has no clock changes, so its runs are that reading's minutes in UTC. (From pg_cron 1.5,
``cron.timezone`` may name another zone; the classifier sends such a pg_cron only schedules
it reads in that zone, and this module reads them in UTC, which is what 1.4 does.)
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from orchestrator.cron_readings import Reading
from orchestrator.engine_times import aware_utc
from orchestrator.engines.pg_cron.reading import pg_cron_reading
from orchestrator.schedules import EngineSchedule, every_as_cron
from orchestrator.specs import Cron, Every, Trigger

#: how far a reading is searched for a matching day (Feb 29 on a Monday takes 28 years)
SEARCH_YEARS = 30


def schedule_of(trigger: Trigger, timezone: str) -> EngineSchedule | None:
    """The ``cron.job`` schedule a job with this trigger was given."""
    if isinstance(trigger, Cron):
        return EngineSchedule(kind="cron", cron=trigger.expr, timezone="GMT")
    if isinstance(trigger, Every):
        expr = every_as_cron(trigger.seconds)
        cron = expr if expr is not None else f"{trigger.seconds} seconds"
        return EngineSchedule(kind="cron", cron=cron, timezone="UTC")
    return None


def runs(
    trigger: Trigger, timezone: str, after: datetime, last_run: datetime | None = None
) -> Iterator[datetime]:
    """pg_cron's runs of ``trigger`` after ``after``, in UTC, ascending."""
    schedule = schedule_of(trigger, timezone)
    if schedule is None or schedule.cron is None:
        return iter(())
    reading = pg_cron_reading(schedule.cron).reading if "seconds" not in schedule.cron else None
    if reading is None:
        return iter(())
    return pg_cron_instants(reading, after)


def pg_cron_instants(reading: Reading, after: datetime) -> Iterator[datetime]:
    """The minutes ``reading`` matches after ``after``, on the GMT clock."""
    after = aware_utc(after)
    day = after.date()
    hours, minutes = sorted(reading.hours), sorted(reading.minutes)
    last_day = day + timedelta(days=366 * SEARCH_YEARS)
    while day <= last_day:
        if _matches(reading, day):
            for hour in hours:
                for minute in minutes:
                    instant = datetime.combine(day, time(hour, minute), tzinfo=UTC)
                    if instant > after:
                        yield instant
        day += timedelta(days=1)


def _matches(reading: Reading, day: date) -> bool:
    return day.month in reading.months and (day.day, day.isoweekday() % 7) in reading.days
