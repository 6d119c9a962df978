"""Missed runs: the instants a job's schedule expected, against the runs its history recorded.

Both engines' schedules are computed with croniter (``orchestrator.schedules``), so "expected"
means the same for pg_cron and Celery jobs. Only scheduled runs count (``manual`` run-nows and
retries do not stand in for a slot). The window starts no earlier than the job's last apply
(a job applied an hour ago missed nothing yesterday) and ends ``GRACE`` ago: a slot is missed
only once pg_cron's importer and beat's tick have had time to record it.

Two precisions, for two places:

- ``missed_counts`` (the jobs list, metrics): one grouped query for a page of jobs, and
  ``expected - recorded`` per job. Cheap and bounded; a doubled run can hide a missed one.
- ``missed_instants`` (a job's page): the exact instants, matching each expected instant to at
  most one recorded run within its slot.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.db.models import Count, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from orchestrator.models import JobRun, ManagedJob
from orchestrator.operations import trigger_of
from orchestrator.schedules import every_as_cron, next_runs
from orchestrator.specs import At, Cron, Every, Trigger

logger = logging.getLogger(__name__)

WINDOW = timedelta(hours=24)
#: how long after its instant a run may still be recorded (import lag, beat's tick)
GRACE = timedelta(seconds=90)
#: a run recorded this long before its instant still counts (clock skew between machines)
EARLY = timedelta(seconds=5)
#: at most this many instants per job are computed (every 30 s over 24 h is 2,880)
MAX_INSTANTS = 3000


@dataclass(frozen=True, kw_only=True, slots=True)
class Missed:
    job: str
    expected: int
    recorded: int
    #: the missed instants, newest first (``missed_instants`` only; empty from counts)
    instants: tuple[datetime, ...] = ()

    @property
    def missed(self) -> int:
        return len(self.instants) if self.instants else max(0, self.expected - self.recorded)

    @property
    def last(self) -> datetime | None:
        return self.instants[0] if self.instants else None


def window_of(
    job: ManagedJob, now: datetime, window: timedelta
) -> tuple[datetime, datetime] | None:
    """The span over which ``job`` owes runs, or ``None`` when it owes none (disabled,
    paused, started on startup)."""
    definition = job.definition
    if job.paused or not definition.get("enabled", True):
        return None
    kind = definition.get("trigger", {}).get("kind")
    if kind not in ("cron", "every", "at"):
        return None
    start = max(now - window, job.applied_at)
    end = now - GRACE
    return (start, end) if start < end else None


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def expected_instants(
    trigger: Trigger, zone: str, start: datetime, end: datetime
) -> list[datetime]:
    """The instants in ``(start, end]`` the schedule expected (at most ``MAX_INSTANTS``)."""
    if isinstance(trigger, At):
        return [trigger.when] if start < trigger.when <= end else []
    if isinstance(trigger, Every) and every_as_cron(trigger.seconds) is None:
        if trigger.seconds < 60:
            return _every_seconds(trigger.seconds, start, end)
        # An interval counted from the previous run has no clock instants: count the slots.
        step = timedelta(seconds=trigger.seconds)
        count = min(int((end - start) / step), MAX_INSTANTS)
        return [end - step * k for k in range(count)][::-1]
    if not isinstance(trigger, Cron | Every):
        return []
    return list(_cron_instants(trigger, zone, _floor_minute(start), _floor_minute(end)))


def _every_seconds(seconds: int, start: datetime, end: datetime) -> list[datetime]:
    """Sub-minute intervals: beat counts them from its start; approximate with an epoch grid."""
    first = int(start.timestamp()) // seconds * seconds + seconds
    last = int(end.timestamp())
    stamps = range(first, last + 1, seconds)
    return [datetime.fromtimestamp(s, tz=start.tzinfo) for s in stamps[-MAX_INSTANTS:]]


@lru_cache(maxsize=4096)
def _cron_instants(
    trigger: Trigger, zone: str, start: datetime, end: datetime
) -> tuple[datetime, ...]:
    """Cached on minute-rounded bounds: a page of jobs mostly shares a few schedules."""
    found: list[datetime] = []
    cursor = start
    while len(found) < MAX_INSTANTS:
        batch = next_runs(trigger, zone, 64, cursor)
        for instant in batch:
            if instant > end:
                return tuple(found)
            found.append(instant)
        if not batch:
            break
        cursor = batch[-1]
    return tuple(found)


def _scheduled_runs(names: Sequence[str], since: datetime) -> QuerySet[JobRun]:
    """First attempts of scheduled (not run-now) runs, by their slot time."""
    return JobRun.objects.filter(
        job__in=names, attempt=1, delivery=1, manual=False, scheduled_for__gte=since - EARLY
    )


def missed_counts(
    jobs: Iterable[ManagedJob], now: datetime | None = None, window: timedelta = WINDOW
) -> dict[str, Missed]:
    """``{name: Missed}`` for the jobs that owe runs; one grouped query for all of them.

    Each job's runs are counted from its own window start (the later of ``now - window`` and
    its last apply), which the query reads from the registry row it joins by name.
    """
    now = now or timezone.now()
    spans: dict[str, tuple[ManagedJob, datetime, datetime]] = {}
    for job in jobs:
        span = window_of(job, now, window)
        if span is not None:
            spans[job.name] = (job, *span)
    if not spans:
        return {}
    applied = ManagedJob.objects.filter(name=OuterRef("job")).values("applied_at")[:1]
    rows = (
        _scheduled_runs(list(spans), now - window)
        .filter(
            scheduled_for__gte=Greatest(Value(now - window), Subquery(applied)) - EARLY,
            scheduled_for__lte=now,
        )
        .values("job")
        .annotate(n=Count("scheduled_for", distinct=True))
        .values_list("job", "n")
    )
    recorded: dict[str, int] = dict.fromkeys(spans, 0)
    recorded.update(dict(rows))
    result = {}
    for name, (job, start, end) in spans.items():
        zone = str(job.definition.get("timezone") or "UTC")
        expected = len(expected_instants(trigger_of(job.definition), zone, start, end))
        result[name] = Missed(job=name, expected=expected, recorded=min(recorded[name], expected))
    return result


def missed_instants(
    job: ManagedJob, now: datetime | None = None, window: timedelta = WINDOW
) -> Missed:
    """The exact missed instants of one job over ``window``."""
    now = now or timezone.now()
    span = window_of(job, now, window)
    if span is None:
        return Missed(job=job.name, expected=0, recorded=0)
    start, end = span
    zone = str(job.definition.get("timezone") or "UTC")
    instants = expected_instants(trigger_of(job.definition), zone, start, end)
    slots = sorted(
        _scheduled_runs([job.name], start)
        .filter(scheduled_for__lte=end + GRACE)
        .values_list("scheduled_for", flat=True)
    )
    missed = []
    used = 0
    for index, instant in enumerate(instants):
        # A run covers the first expected instant it is at or after (less EARLY), up to the
        # next instant: each run covers one slot at most.
        following = instants[index + 1] if index + 1 < len(instants) else end + GRACE
        position = bisect_left(slots, instant - EARLY, lo=used)
        if position < len(slots) and slots[position] < following - EARLY:
            used = position + 1
        else:
            missed.append(instant)
    recorded = len(slots)
    if missed:
        logger.info("missed runs", extra={"job": job.name, "count": len(missed)})
    return Missed(
        job=job.name, expected=len(instants), recorded=recorded, instants=tuple(reversed(missed))
    )
