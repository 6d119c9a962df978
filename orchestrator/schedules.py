"""Schedules: parsing the manifest's triggers, next run times, and what an engine is given.

Next runs come from croniter, in the job's IANA time zone, as aware datetimes. Each engine
answers "can I run this trigger at exactly these instants?" in its own ``fit`` module
(``orchestrator/engines/<engine>/fit.py``) with a ``Fit``: the ``EngineSchedule`` to hand the
engine when it can and a sentence saying why when it cannot.

``every N`` has one meaning on every engine: **aligned to the clock**, the instants that are whole
multiples of N seconds since 1970-01-01T00:00:00Z (UTC, so independent of time zones and daylight
saving), whenever the job was applied or last ran. When N divides an hour into minutes
(``every 5m``) or a day into hours (``every 2h``), those instants are a cron expression evaluated
in UTC (``*/5 * * * *``), which both engines honour; any other N (``every 10s``, ``every 7m``)
is kept aligned by our beat (``engines/celery/due_scheduler``) and has no pg_cron form.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from orchestrator.cron_readings import (
    CronSyntaxError,
    check_syntax,
    croniter_reading,
    has_extension,
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
        if has_extension(expr):  # croniter found its next run (check_syntax): it fires
            return Cron(expr=expr, source=stripped)
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

    An interval that no cron expression matches runs at the multiples of its length since the
    Unix epoch (``every`` is aligned to the clock); a start-up trigger has no clock time.
    """
    tz = zone(timezone)
    after = after if after.tzinfo else after.replace(tzinfo=UTC)
    if isinstance(trigger, Cron):
        return _cron_runs(trigger.expr, after.astimezone(tz), n)
    if isinstance(trigger, Every):
        expr = every_as_cron(trigger.seconds)
        if expr is not None:
            return [run.astimezone(tz) for run in _cron_runs(expr, after.astimezone(UTC), n)]
        return [run.astimezone(tz) for run in aligned_runs(trigger.seconds, after, n)]
    if isinstance(trigger, At):
        return [trigger.when.astimezone(tz)] if trigger.when > after and n > 0 else []
    return []


#: Runs sampled to find a cron expression's shortest gap: more than a year of a daily job, and
#: every day-of-month/day-of-week combination of a minutely one within a day.
_GAP_SAMPLE = 400
_GAP_START = datetime(2001, 1, 1, tzinfo=UTC)


def shortest_gap(trigger: Trigger) -> int | None:
    """The fewest seconds between two runs of a recurring trigger (``None`` for one-time and
    start-up triggers): what a ``jitter`` must stay below, so a jittered run never starts
    after the next slot."""
    if isinstance(trigger, Every):
        return trigger.seconds
    if isinstance(trigger, Cron):
        return _cron_gap(trigger.expr)
    return None


@lru_cache(maxsize=1024)
def _cron_gap(expr: str) -> int:
    runs = _cron_runs(expr, _GAP_START, _GAP_SAMPLE)
    return int(min((b - a).total_seconds() for a, b in pairwise(runs)))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def aligned_after(seconds: int, after: datetime) -> datetime:
    """The first multiple of ``seconds`` since the Unix epoch strictly after ``after`` (UTC)."""
    elapsed = after - _EPOCH
    whole = int(elapsed.total_seconds() // seconds)
    return _EPOCH + timedelta(seconds=(whole + 1) * seconds)


def aligned_runs(seconds: int, after: datetime, n: int) -> list[datetime]:
    """``n`` clock-aligned instants of ``every seconds`` after ``after`` (UTC)."""
    first = aligned_after(seconds, after)
    return [first + timedelta(seconds=seconds * k) for k in range(n)]


def jitter_offset(name: str, jitter: int) -> int:
    """The seconds a job's runs start after their slots: 0 to ``jitter``, fixed by the job's
    name (BLAKE2b, stable across processes and releases, unlike ``hash``), so jobs that share
    a schedule spread out and each keeps its own rhythm."""
    if jitter <= 0:
        return 0
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % (jitter + 1)


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
            return f"every {self.seconds} s, aligned to the clock (multiples since 00:00 UTC)"
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
