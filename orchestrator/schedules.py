"""Schedules: parsing the manifest's triggers, next run times, and what an engine is given.

Next runs come from croniter, in the job's IANA time zone, as aware datetimes. Each engine
answers "can I run this trigger at exactly these instants?" in its own ``fit`` module
(``orchestrator/engines/<engine>/fit.py``) with a ``Fit``: the ``EngineSchedule`` to hand the
engine when it can and a sentence saying why when it cannot.

``every N`` is a fixed interval, independent of time zones. When N divides a minute into an hour
(``every 5m``) or an hour into a day (``every 2h``), the same instants are a cron expression
evaluated in UTC (``*/5 * * * *``), which both engines honour exactly and aligned to the clock;
any other N is an interval counted from the previous run, which only Celery has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from orchestrator.cron_readings import (
    CronSyntaxError,
    check_syntax,
    croniter_reading,
    normalise,
)
from orchestrator.limits import LimitError, canonical_instant
from orchestrator.specs import At, Cron, Every, Trigger

#: Zone names that are UTC at every instant, which pg_cron 1.4's GMT honours.
UTC_ZONES = frozenset(
    {
        "UTC", "Etc/UTC", "GMT", "Etc/GMT", "Etc/GMT0", "Etc/GMT+0", "Etc/GMT-0", "GMT0",
        "GMT+0", "GMT-0", "Greenwich", "Etc/Greenwich", "UCT", "Etc/UCT", "Universal",
        "Etc/Universal", "Zulu", "Etc/Zulu",
    }
)  # fmt: skip
#: The longest interval ``every`` accepts: a year.
MAX_EVERY_SECONDS = 366 * 24 * 3600

_EVERY = re.compile(r"^every\s+([0-9]+)\s*([smh])$")
_DURATION = re.compile(r"^([0-9]+)\s*([smhd])$")
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScheduleError(ValueError):
    """A trigger, time zone or duration the manifest cannot use; the message says why."""


# --------------------------------------------------------------------------- parsing


def parse_schedule(text: str) -> Cron | Every:
    """``schedule:`` text: 5-field cron, an ``@`` macro, or ``every Ns|Nm|Nh``."""
    stripped = text.strip()
    lowered = " ".join(stripped.lower().split())
    if lowered.startswith("every"):
        match = _EVERY.match(lowered)
        if match is None:
            raise ScheduleError(
                f"cannot read {stripped!r}: write 'every 30s', 'every 5m' or 'every 2h'"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        if not 0 < seconds <= MAX_EVERY_SECONDS:
            raise ScheduleError(f"{stripped!r}: the interval must be between 1s and 366 days")
        return Every(seconds=seconds)
    if not lowered:
        raise ScheduleError("the schedule is empty")
    expr = normalise(stripped)
    try:
        check_syntax(expr)
        reading = croniter_reading(expr)
    except CronSyntaxError as error:
        raise ScheduleError(str(error)) from error
    if not reading.ever_fires():
        raise ScheduleError(f"{stripped!r} never fires: none of its months has such a day")
    return Cron(expr=expr, source=stripped)


def stored_instant(value: object) -> datetime | None:
    """An instant of a stored definition (ISO 8601; older ones kept their offset), or ``None``
    for anything that is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time *with* its UTC offset (a naive time would be ambiguous), as UTC.

    Canonical UTC, whatever offset it was written with: the engines give instants back in UTC,
    so an applied ``at`` compares equal to the manifest's and plans clean (see ``limits``).
    """
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError as error:
        raise ScheduleError(
            f"cannot read {text!r} as ISO 8601 (e.g. 2025-06-01T03:00:00+02:00)"
        ) from error
    if when.tzinfo is None or when.utcoffset() is None:
        raise ScheduleError(
            f"{text!r} has no UTC offset; write it with one, e.g. {when.isoformat()}+00:00"
        )
    try:
        return canonical_instant(when)
    except LimitError as error:
        raise ScheduleError(f"{text.strip()!r} {error}") from error


def parse_at(text: str) -> At:
    return At(when=parse_instant(text))


def parse_duration(value: int | str) -> int:
    """Seconds from an integer or ``30s``/``15m``/``2h``/``1d``; must be positive."""
    if isinstance(value, bool):
        raise ScheduleError("expected a duration such as 30s, 15m, 2h or a number of seconds")
    if isinstance(value, int):
        seconds = value
    else:
        match = _DURATION.match(value.strip().lower())
        if match is None:
            raise ScheduleError(
                f"cannot read {value!r} as a duration: write 30s, 15m, 2h, 1d or seconds"
            )
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ScheduleError("the duration must be positive")
    return seconds


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ``ScheduleError`` when there is no such zone."""
    if not _ZONE_NAME.match(name):  # also keeps odd names away from the file system
        raise ScheduleError(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ScheduleError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from error


def every_as_cron(seconds: int) -> str | None:
    """The cron expression (in UTC) that fires at exactly the instants of ``every seconds``.

    Exists when the interval is a whole number of minutes dividing an hour, or of hours
    dividing a day: only then are the gaps equal across hour and day boundaries.
    """
    if seconds % 60:
        return None
    minutes = seconds // 60
    if minutes == 1:
        return "* * * * *"
    if minutes < 60:
        return f"*/{minutes} * * * *" if 60 % minutes == 0 else None
    if minutes % 60:
        return None
    hours = minutes // 60
    if hours == 24:
        return "0 0 * * *"
    if hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    return None


def format_every(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"every {seconds // size}{unit}"
    return f"every {seconds}s"


# --------------------------------------------------------------------------- next runs


def next_runs(trigger: Trigger, timezone: str, n: int, after: datetime) -> list[datetime]:
    """The next ``n`` run times after ``after``, aware, in the job's zone ``timezone``.

    An interval that no cron expression matches is counted from ``after``, as Celery counts it
    from the previous run; a start-up trigger has no clock time.
    """
    tz = zone(timezone)
    after = after if after.tzinfo else after.replace(tzinfo=UTC)
    if isinstance(trigger, Cron):
        return _cron_runs(trigger.expr, after.astimezone(tz), n)
    if isinstance(trigger, Every):
        expr = every_as_cron(trigger.seconds)
        if expr is not None:
            return [run.astimezone(tz) for run in _cron_runs(expr, after.astimezone(UTC), n)]
        step = timedelta(seconds=trigger.seconds)
        return [(after + step * k).astimezone(tz) for k in range(1, n + 1)]
    if isinstance(trigger, At):
        return [trigger.when.astimezone(tz)] if trigger.when > after and n > 0 else []
    return []


def _cron_runs(expr: str, start: datetime, n: int) -> list[datetime]:
    iterator = croniter(expr, start)
    return [iterator.get_next(datetime) for _ in range(n)]


# --------------------------------------------------------------------------- engines


@dataclass(frozen=True, kw_only=True, slots=True)
class EngineSchedule:
    """What an engine is given: a cron expression (evaluated in ``timezone``), an interval,
    one instant, or "at start-up"."""

    kind: Literal["cron", "interval", "clocked", "startup"]
    cron: str | None = None
    timezone: str = "UTC"
    seconds: int | None = None
    when: datetime | None = None

    def describe(self) -> str:
        if self.kind == "cron":
            return f"cron '{self.cron}' in {self.timezone}"
        if self.kind == "interval":
            return f"every {self.seconds} s, counted from the previous run"
        if self.kind == "clocked" and self.when is not None:
            return f"once at {self.when.isoformat()}"
        return "once each time the workers start"


@dataclass(frozen=True, kw_only=True, slots=True)
class Fit:
    """An engine's answer for one trigger: the schedule it would get, or why it cannot."""

    schedule: EngineSchedule | None
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.schedule is not None


def is_utc(timezone: str) -> bool:
    return timezone in UTC_ZONES
