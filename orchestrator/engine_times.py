"""When each engine will really run a job: next run times and the slots of a window.

``schedules.next_runs`` is croniter's reading in the job's zone: the manifest's *meaning*. The
engines do not always agree with it on the days a zone changes its clocks, and an operator asking
"when does this run?" or "which runs were missed?" wants the engine's answer. So each engine
says it, through ``Backend.runs`` (``engines/celery/clock.py`` steps Celery's own crontab class;
``engines/pg_cron/clock.py`` reads the expression as pg_cron does, on the GMT clock), and this
module only slices those instants and shows them in the job's zone.

Every instant is aware; arithmetic is done in UTC, because arithmetic on an aware datetime in
another zone is wall-clock arithmetic and is wrong across a clock change.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from orchestrator.engines.base import Backend
from orchestrator.schedules import aligned_after, zone
from orchestrator.specs import Trigger


def aware_utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is taken as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC)


def interval_runs(seconds: int, after: datetime, last_run: datetime | None) -> Iterator[datetime]:
    """An ``every`` interval's runs after ``after``: aligned to the clock (the multiples of
    ``seconds`` since the Unix epoch), whatever the last run was (``schedules``)."""
    step = timedelta(seconds=seconds)
    cursor = aligned_after(seconds, aware_utc(after))
    while True:
        yield cursor
        cursor += step


def next_runs(
    backend: Backend,
    trigger: Trigger,
    timezone: str,
    n: int,
    after: datetime,
    *,
    last_run: datetime | None = None,
) -> list[datetime]:
    """The next ``n`` instants after ``after`` at which ``backend``'s engine runs ``trigger``,
    in the job's zone. ``last_run`` is the engine's own last run, where known."""
    tz = zone(timezone)
    found = islice(backend.runs(trigger, timezone, aware_utc(after), last_run), max(n, 0))
    return [instant.astimezone(tz) for instant in found]


def instants_between(
    backend: Backend, trigger: Trigger, timezone: str, start: datetime, end: datetime, limit: int
) -> list[datetime]:
    """The engine's instants in ``(start, end]``, in UTC, oldest first, at most the last
    ``limit`` (an interval is counted back from ``end``: it has no clock instants)."""
    start, end = aware_utc(start), aware_utc(end)
    if end <= start:
        return []
    found: list[datetime] = []
    for instant in backend.runs(trigger, timezone, start, None):
        if instant > end:
            break
        found.append(instant)
        if len(found) > limit:
            found.pop(0)
    return found
