"""Missed runs: the slots in which a job was meant to run, against the runs history recorded.

One function, ``missed_runs``, gives the number every view shows (the jobs list, the admin's
list and job page, ``/metrics``), so they can never disagree. Each job's slots are read the
way its own engine reads the schedule (``engine_times``: Celery's crontab for Celery jobs,
pg_cron's reading in GMT for pg_cron jobs), DST days included.

A slot counts only when the job was meant to run in it (``owed_span``, fed by the status
model): not while paused or disabled, not before its last apply or resume, not after it
expired or retired (``max_runs`` reached), never for a one-time job that fired (``done``),
nor for an ``on: startup`` job. A job paused *outside* the orchestrator is still meant to run
(the registry says active), so its silent slots are missed: that is the point of counting.

The window is ``WINDOW`` (24 hours; the views say so: "missed (24 h)", the metric's
``window="24h"`` label) and ends ``GRACE`` ago, so that pg_cron's importer and beat's tick
have had time to record a run. Only scheduled first attempts count: a run-now or a retry does
not stand in for a slot, and each recorded run covers one slot at most.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from orchestrator import engine_times
from orchestrator.engines import backends
from orchestrator.models import JobRun, RunStatus
from orchestrator.specs import Trigger
from orchestrator.stored import StoredJob

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
#: the window as views and the metric's label name it
WINDOW_LABEL = "24h"
#: how long after its instant a run may still be recorded (import lag, beat's tick)
GRACE = timedelta(seconds=90)
#: a run recorded this long before its instant still counts (clock skew between machines)
EARLY = timedelta(seconds=5)
#: at most this many instants per job are computed (every 30 s over 24 h is 2,880)
MAX_INSTANTS = 3000


@dataclass(frozen=True, kw_only=True, slots=True)
class Owed:
    """A job and the span ``(start, end]`` in which it was meant to run."""

    job: StoredJob
    start: datetime
    end: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Missed:
    job: str
    expected: int
    recorded: int
    #: the missed instants, newest first
    instants: tuple[datetime, ...] = ()

    @property
    def missed(self) -> int:
        return len(self.instants)

    @property
    def last(self) -> datetime | None:
        return self.instants[0] if self.instants else None


def owed_span(
    job: StoredJob,
    *,
    meant_to_run: bool,
    now: datetime,
    until: datetime | None = None,
    window: timedelta = WINDOW,
) -> Owed | None:
    """The span over which ``job`` owes runs, or ``None`` when it owes none.

    ``meant_to_run`` is the status model's verdict (enabled, not paused, not done, in the
    manifest); ``until`` is when the job stopped owing runs (it expired or retired).
    """
    if not meant_to_run or job.on_startup:
        return None
    start = max(now - window, job.applied_at, job.resumed_at or job.applied_at)
    end = now - GRACE
    if until is not None:
        end = min(end, until)
    return Owed(job=job, start=start, end=end) if start < end else None


def expected_instants(
    engine: str, trigger: Trigger, zone: str, start: datetime, end: datetime
) -> list[datetime]:
    """The instants in ``(start, end]`` at which ``engine`` runs ``trigger``, oldest first."""
    return list(_instants(engine, trigger, zone, _floor(start), _floor(end)))


def _floor(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


@lru_cache(maxsize=4096)
def _instants(
    engine: str, trigger: Trigger, zone: str, start: datetime, end: datetime
) -> tuple[datetime, ...]:
    """Cached on minute-rounded bounds: a page of jobs mostly shares a few schedules."""
    backend = backends().get(engine)
    if backend is None:
        return ()
    return tuple(engine_times.instants_between(backend, trigger, zone, start, end, MAX_INSTANTS))


def missed_runs(owed: Iterable[Owed]) -> dict[str, Missed]:
    """``{name: Missed}`` for each owed span; the recorded slots of all of them in one query."""
    spans = {item.job.name: item for item in owed}
    if not spans:
        return {}
    earliest = min(item.start for item in spans.values())
    slots: dict[str, list[datetime]] = defaultdict(list)
    rows = (
        JobRun.objects.filter(
            job__in=list(spans),
            attempt=1,
            delivery=1,
            manual=False,
            scheduled_for__gte=earliest - EARLY,
        )
        # A ``missed`` row (a slot beat claimed but could never send) says why; it is no run.
        .exclude(status=RunStatus.MISSED)
        .order_by("job", "scheduled_for")
        .values_list("job", "scheduled_for")
    )
    for name, slot in rows:
        slots[name].append(slot)
    result = {}
    for name, item in spans.items():
        job = item.job
        instants = expected_instants(job.engine, job.trigger, job.timezone, item.start, item.end)
        mine = [s for s in slots[name] if item.start - EARLY <= s <= item.end + GRACE]
        result[name] = _match(name, instants, mine, item.end)
    return result


def _match(name: str, instants: list[datetime], slots: list[datetime], end: datetime) -> Missed:
    """Each recorded run covers the first expected instant it is at or after (less ``EARLY``),
    up to the next instant: one slot at most."""
    missed = []
    used = 0
    for index, instant in enumerate(instants):
        following = instants[index + 1] if index + 1 < len(instants) else end + GRACE
        position = bisect_left(slots, instant - EARLY, lo=used)
        if position < len(slots) and slots[position] < following - EARLY:
            used = position + 1
        else:
            missed.append(instant)
    if missed:
        logger.info("missed runs", extra={"job": name, "count": len(missed)})
    return Missed(
        job=name,
        expected=len(instants),
        recorded=len(instants) - len(missed),
        instants=tuple(reversed(missed)),
    )
