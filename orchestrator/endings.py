"""Which managed jobs have ended (expired, retired, done), and since when.

A job with ``expires``, ``max_runs`` or a one-time ``at`` trigger stops running for good at
some point, while its engine may still show it enabled until its next check (beat disables an
expired or fired one-off task when it looks; the runner retires a task after ``max_runs``).
Two readers need the same answer: the status model (``status``) shows such a job as
``expired``, ``retired`` or ``done`` rather than active or drift, and the plan (``reconcile``
through ``ended_jobs``) must neither resume it nor call the engine's disabled task drift. Both
ask here, so they never disagree; only jobs that can end are read, their runs in one query.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from django.db.models import Q
from django.db.models.fields.json import KT
from django.utils import timezone

from orchestrator.engines.base import LiveJob
from orchestrator.models import JobRun, ManagedJob
from orchestrator.specs import At
from orchestrator.stored import StoredJob

#: the status model's states (``status.State``) a job ends in
EndState = Literal["expired", "retired", "done"]


@dataclass(frozen=True, slots=True)
class Ending:
    """How a job ended: its state, since when (``None`` if unknown), and a sentence why."""

    state: EndState
    since: datetime | None
    detail: str


def endings(
    jobs: Sequence[StoredJob], live: Mapping[str, LiveJob | None], now: datetime
) -> dict[str, Ending]:
    """Which jobs have ended (expired, retired, done) and since when. Only jobs with
    ``expires``, ``max_runs`` or an ``at`` trigger can end; their runs are read in one query."""
    candidates = [j for j in jobs if j.expires or j.max_runs or isinstance(j.trigger, At)]
    if not candidates:
        return {}
    runs: dict[str, list[tuple[str, datetime | None]]] = {}
    rows = (
        JobRun.objects.filter(job__in=[job.name for job in candidates], manual=False)
        .order_by("job", "scheduled_for", "id")
        .values_list("job", "engine_run_id", "scheduled_for", "started")
    )
    for name, run_id, scheduled, started in rows:
        runs.setdefault(name, []).append((run_id, scheduled or started))
    found: dict[str, Ending] = {}
    for job in candidates:
        mine = runs.get(job.name, [])
        if job.expires is not None and job.expires <= now:
            found[job.name] = Ending(
                "expired", job.expires, f"expired at {job.expires.isoformat()}"
            )
            continue
        if job.max_runs:
            seen: list[datetime | None] = []
            ids: set[str] = set()
            for run_id, when in mine:  # the runner counts distinct scheduled runs
                if run_id not in ids:
                    ids.add(run_id)
                    seen.append(when)
            if len(seen) >= job.max_runs:
                since = seen[job.max_runs - 1]
                found[job.name] = Ending(
                    "retired", since, f"ran {job.max_runs} times (max_runs {job.max_runs})"
                )
                continue
        if isinstance(job.trigger, At):
            engine_job = live.get(job.name)
            fired = [when for _, when in mine if when is not None and when >= job.applied_at]
            engine_ran = engine_job is not None and engine_job.last_run is not None
            if fired or (engine_ran and job.trigger.when <= now):
                when = fired[0] if fired else job.trigger.when
                found[job.name] = Ending("done", when, f"fired at {when.isoformat()}")
    return found


def ended_jobs(
    live: Mapping[str, Mapping[str, LiveJob]], now: datetime | None = None
) -> frozenset[str]:
    """The managed jobs that have ended (expired, retired, done): the plan must not resume
    them, nor call the engine's disabled task drift. Only rows that can end are read."""
    rows = ManagedJob.objects.annotate(
        kind=KT("definition__trigger__kind"),
        ends=KT("definition__expires"),
        limit=KT("definition__max_runs"),
    ).filter(Q(kind="at") | Q(ends__isnull=False) | Q(limit__isnull=False))
    jobs = [StoredJob.of(row) for row in rows]
    if not jobs:
        return frozenset()
    by_id = {(job.engine, job.engine_id): job for jobs_ in live.values() for job in jobs_.values()}
    engine_jobs = {job.name: by_id.get((job.engine, job.engine_id)) for job in jobs}
    return frozenset(endings(jobs, engine_jobs, now or timezone.now()))
