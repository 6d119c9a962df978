"""The status model: what each managed job is *really* doing, read from the engines.

Every view (``jobs list``, ``jobs explain``, the admin's list and job page, ``/metrics`` and
missed-run counting) asks ``job_statuses`` and shows what it answers, so no two views disagree
and none claims a state the engine does not have. Three sources are combined:

- the engines' live state, through each backend's ``live()`` (``cron.job`` rows; django-celery-
  beat's ``PeriodicTask`` rows), matched to the registry by engine id;
- the registry (``ManagedJob``: the applied definition, the operator's pause, and whether the
  last apply found the job gone from the manifest: ``orphaned_at``);
- the run history (``JobRun``: runs so far for ``max_runs``, whether a one-time job fired).

States, first match wins:

``drift``     the engine differs from what the orchestrator applied: the engine's job is gone,
              its definition was edited, or its pause state was changed outside the
              orchestrator (``cron.alter_job(id, active := true)`` by hand, a periodic task
              disabled in django-celery-beat's admin). ``jobs plan`` shows the same difference
              and ``jobs apply`` restores the registry's state.
``orphaned``  applied, but no longer in the manifest (kept because ``apply`` ran without
              ``--prune``); the detail says whether the engine still runs it.
``disabled``  ``enabled: false`` in the manifest.
``expired``   its ``expires`` instant has passed (beat disables the task at its next check).
``retired``   ``max_runs`` scheduled runs have started (the runner disables the task).
``done``      a one-time ``at`` job that has fired.
``paused``    paused by an operator (``jobs pause``, the orchestrator's admin).
``active``    the engine runs it on its schedule.

**Outside changes.** The registry's pause flag is the one record of an operator's intent, so
every pause-state change made in an engine's own tools is *drift*, never adopted: a click in
django-celery-beat's admin or a hand ``cron.alter_job`` would otherwise become permanent
behind the manifest's back, and differently per engine. To keep a pause, pause the job through
the orchestrator (``jobs pause NAME``: that records it); ``jobs apply`` otherwise restores the
registry's state. The engine-side changes the orchestrator's own machinery makes are not
drift: beat disabling an expired or fired one-off task, the runner retiring a task after
``max_runs``: those jobs show ``expired``, ``done`` and ``retired``.

``next_run`` is only given when the engine will really start the job's body then: the engine
has it enabled and it has not ended; it is computed with the engine's own reading of the
schedule (``engine_times``). Whether a job has ended (expired, retired, done) is ``endings``'
answer, which the plan asks too.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from django.db import connection
from django.utils import timezone

from orchestrator import engine_times, missed
from orchestrator.endings import Ending, endings
from orchestrator.engines import backends as configured_backends
from orchestrator.engines.base import Backend, Desired, LiveJob
from orchestrator.models import ManagedJob
from orchestrator.stored import StoredJob

logger = logging.getLogger(__name__)


class State(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    RETIRED = "retired"
    EXPIRED = "expired"
    DONE = "done"
    DISABLED = "disabled"
    ORPHANED = "orphaned"
    DRIFT = "drift"


#: states in which the job's body will not run again, whatever the engine's flag says
ENDED = frozenset({State.RETIRED, State.EXPIRED, State.DONE})


@dataclass(frozen=True, kw_only=True, slots=True)
class LastRun:
    status: str
    started: datetime | None
    finished: datetime | None
    duration: timedelta | None


@dataclass(frozen=True, kw_only=True, slots=True)
class JobStatus:
    """One job's state, as every view shows it."""

    job: StoredJob
    state: State
    #: a sentence saying why, in the engine's terms ("pg_cron has it active: ...")
    detail: str
    #: the engine's own active flag; ``None`` when the engine has no such job (or none at all)
    engine_active: bool | None
    next_run: datetime | None = None
    last_run: LastRun | None = None
    missed: missed.Missed | None = None
    #: ``{field: {"from": engine, "to": applied}}`` when ``state`` is drift
    drift: Mapping[str, Mapping[str, object]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.job.name

    @property
    def missed_count(self) -> int:
        return self.missed.missed if self.missed is not None else 0

    def as_json(self) -> dict[str, object]:
        last = self.last_run
        return {
            "name": self.job.name,
            "engine": self.job.engine,
            "engine_id": self.job.engine_id,
            "state": self.state.value,
            "detail": self.detail,
            "engine_active": self.engine_active,
            "next_run": None if self.next_run is None else self.next_run.isoformat(),
            "last_run": None
            if last is None
            else {
                "status": last.status,
                "started": None if last.started is None else last.started.isoformat(),
                "finished": None if last.finished is None else last.finished.isoformat(),
            },
            f"missed_{missed.WINDOW_LABEL}": self.missed_count,
            "drift": {key: dict(value) for key, value in self.drift.items()},
        }


# --------------------------------------------------------------------------- inputs


#: Each job's newest run: one probe of ``job_run_job_started`` per name. (``DISTINCT ON (job)``
#: reads every run of the jobs asked for: 3.5 s for 1,000 jobs over 1,000,000 runs, 50 ms this
#: way; bench/metrics.py.) ``started DESC`` puts a queued run (no start yet) first, as before.
LAST_RUNS_SQL = """
SELECT r.job, r.status, r.started, r.finished, r.duration
  FROM unnest(%s::text[]) AS n(name)
 CROSS JOIN LATERAL (
       SELECT job, status, started, finished, duration
         FROM orchestrator_jobrun
        WHERE job = n.name
        ORDER BY started DESC, id DESC
        LIMIT 1) AS r
"""


def _last_runs(names: Sequence[str]) -> dict[str, LastRun]:
    with connection.cursor() as cursor:
        cursor.execute(LAST_RUNS_SQL, [list(names)])
        rows = cursor.fetchall()
    return {
        name: LastRun(status=status, started=started, finished=finished, duration=duration)
        for name, status, started, finished, duration in rows
    }


# --------------------------------------------------------------------------- the model


def _live_by_id(engines: Mapping[str, Backend]) -> dict[tuple[str, str], LiveJob]:
    return {
        (engine, job.engine_id): job
        for engine, backend in engines.items()
        for job in backend.live().values()
    }


def _definition_drift(job: StoredJob, live: LiveJob, backend: Backend) -> dict[str, dict]:
    """Fields in which the engine's job differs from what applying the registry's definition
    writes (``Backend.render``: the comparison ``jobs plan`` makes)."""
    from orchestrator.plan import field_diff  # plan imports nothing of ours; no cycle

    schedule = backend.schedule_of(job.trigger, job.timezone)
    if schedule is None:
        return {}
    rendered = backend.render(Desired(spec=job.spec(), schedule=schedule, active=live.active))
    if rendered is None:
        return {}
    return {
        key: {"from": value["from"], "to": value["to"]}
        for key, value in field_diff(live.state, rendered).items()
    }


def _engine_words(engine: str, active: bool) -> str:
    return f"{engine} has it {'active' if active else 'paused'}"


def _classify(
    job: StoredJob,
    live: LiveJob | None,
    ending: Ending | None,
    in_manifest: bool,
    backend: Backend | None,
) -> tuple[State, str, dict[str, dict]]:
    engine = job.engine
    if job.on_startup:  # no engine-side object; the hall runs it when workers start
        if not job.enabled:
            return State.DISABLED, "enabled: false in the manifest", {}
        if job.paused:
            return State.PAUSED, "paused by an operator; skipped at start-up", {}
        return State.ACTIVE, "runs once each time the workers start", {}
    if live is None:
        return (
            State.DRIFT,
            f"{engine} has no job {job.engine_id}: removed outside the orchestrator; "
            "`jobs apply` recreates it",
            {"exists": {"from": False, "to": True}},
        )
    if not in_manifest:
        return (
            State.ORPHANED,
            f"no longer in the manifest ({_engine_words(engine, live.active)}); "
            "`jobs apply --prune` removes it",
            {},
        )
    expected_active = job.enabled and not job.paused and ending is None
    if ending is not None:
        still = f"; {engine} still has it enabled until its next check" if live.active else ""
        return State(ending.state), ending.detail + still, {}
    if live.active != expected_active:
        diff = {"active": {"from": live.active, "to": expected_active}}
        if live.active:
            why = "disabled in the manifest" if not job.enabled else "paused by an operator"
            text = (
                f"{why}, but {engine} has it active (changed outside the orchestrator): it "
                "runs; `jobs apply` pauses it again"
            )
        else:
            text = (
                f"{engine} has it paused (changed outside the orchestrator): it does not run; "
                "`jobs apply` resumes it, `jobs pause` keeps it paused"
            )
        return State.DRIFT, text, diff
    if not job.enabled:
        return State.DISABLED, "enabled: false in the manifest", {}
    if job.paused:
        return State.PAUSED, f"paused by an operator; {_engine_words(engine, False)}", {}
    diff = _definition_drift(job, live, backend) if backend is not None else {}
    if diff:
        fields = ", ".join(sorted(diff))
        return (
            State.DRIFT,
            f"edited in {engine} outside the manifest ({fields}); `jobs apply` restores it",
            diff,
        )
    return State.ACTIVE, f"{_engine_words(engine, True)}", {}


def job_statuses(
    rows: Iterable[ManagedJob] | None = None,
    *,
    now: datetime | None = None,
    engines: Mapping[str, Backend] | None = None,
) -> list[JobStatus]:
    """The status of each registry row (all of them by default), in the rows' order."""
    now = now or timezone.now()
    jobs = [StoredJob.of(row) for row in (ManagedJob.objects.all() if rows is None else rows)]
    if not jobs:
        return []
    engines = engines if engines is not None else configured_backends()
    live_by_id = _live_by_id(engines)
    live = {job.name: live_by_id.get((job.engine, job.engine_id)) for job in jobs}
    ended = endings(jobs, live, now)
    last_runs = _last_runs([job.name for job in jobs])
    partial: list[tuple[StoredJob, State, str, dict, bool | None]] = []
    owed: list[missed.Owed] = []
    for job in jobs:
        engine_job = live[job.name]
        ending = ended.get(job.name)
        in_manifest = job.orphaned_at is None
        state, detail, diff = _classify(
            job, engine_job, ending, in_manifest, engines.get(job.engine)
        )
        active = None if engine_job is None else engine_job.active
        partial.append((job, state, detail, diff, active))
        meant = (
            job.enabled
            and not job.paused
            and in_manifest
            and (ending is None or ending.state != State.DONE)
        )
        span = missed.owed_span(
            job, meant_to_run=meant, now=now, until=None if ending is None else ending.since
        )
        if span is not None:
            owed.append(span)
    counts = missed.missed_runs(owed)
    statuses = []
    for job, state, detail, diff, active in partial:
        engine_job = live[job.name]
        runs = active is True and state not in ENDED and job.engine in engines
        upcoming = (
            engine_times.next_runs(
                engines[job.engine],
                job.trigger,
                job.timezone,
                1,
                now,
                last_run=None if engine_job is None else engine_job.last_run,
            )
            if runs
            else []
        )
        statuses.append(
            JobStatus(
                job=job,
                state=state,
                detail=detail,
                engine_active=active,
                next_run=upcoming[0] if upcoming else None,
                last_run=last_runs.get(job.name),
                missed=counts.get(job.name),
                drift=diff,
            )
        )
    return statuses


def job_status(
    name: str, *, now: datetime | None = None, engines: Mapping[str, Backend] | None = None
) -> JobStatus | None:
    """One job's status (``None`` when no managed job has that name)."""
    found = job_statuses(ManagedJob.objects.filter(name=name), now=now, engines=engines)
    return found[0] if found else None
