"""The ``Backend`` protocol: everything the hall may ask of an engine.

The hall (manifest, classifier, planner, reconciler, views) knows engines only through this module.
Classification asks each engine for a ``Verdict`` on a job (through the pure ``EngineFit`` the
backend builds from its live capabilities); the hall keeps only the preference order and the
reasons. The planner and reconciler work on ``Desired`` jobs and ``LiveJob`` snapshots; each
engine turns them into its own calls. ``render`` is the bridge for drift detection: the state a
backend would write for a desired job, in the same shape as ``LiveJob.state``, so "live differs
from what we would write" means someone edited the job outside the manifest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from prometheus_client.metrics_core import Metric

from orchestrator.schedules import EngineSchedule
from orchestrator.specs import JobSpec, Trigger

#: engine id prefix of ``on: startup`` jobs, which have no engine-side object: the hall runs
#: them when workers start (``engines.celery.startup_hook``) through the backend's ``run_now``
STARTUP_PREFIX = "startup:"


@dataclass(frozen=True, kw_only=True, slots=True)
class Desired:
    """A job as it should exist in an engine: its spec, the engine's schedule, and whether it
    should be active (the manifest's ``enabled`` and not paused by an operator)."""

    spec: JobSpec
    schedule: EngineSchedule
    active: bool = True
    #: ``Backend.render`` of this job, when the caller already has it (the placed manifest
    #: keeps it for the plan): a backend writing the job may use it instead of rendering again
    rendered: Mapping[str, object] | None = field(default=None, compare=False)


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveJob:
    """A job as an engine has it now, managed by us or not."""

    engine: str
    engine_id: str
    name: str
    active: bool
    state: Mapping[str, object] = field(default_factory=dict)
    #: when the engine last started the job by its schedule, where the engine keeps it
    #: (django-celery-beat's ``last_run_at``); not part of ``state``, which is compared for drift
    last_run: datetime | None = None


@dataclass(frozen=True, slots=True)
class Blocker:
    """One reason an engine cannot run a job exactly as declared, and the field responsible."""

    field: str
    reason: str
    #: False: rules the engine out for ``target: auto``, but an explicit target may insist
    refuses_explicit: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class Verdict:
    """One engine's answer for one job: the schedule it would get, or why it cannot run it.

    ``reasons`` say what running the job there means (shown when it is placed there);
    ``chosen_because`` is the sentence for being the first engine that fits, ``advantage`` why
    it beats the engines after it that could also run the job.
    """

    engine: str
    #: how reasons name the engine ("pg_cron", "Celery")
    label: str
    schedule: EngineSchedule | None
    blockers: tuple[Blocker, ...] = ()
    reasons: tuple[str, ...] = ()
    chosen_because: str | None = None
    advantage: str | None = None

    @property
    def fits(self) -> bool:
        return self.schedule is not None and not self.blockers


class EngineFit(Protocol):
    """An engine's pure judgement, bound to the capabilities it was built from."""

    engine: str

    def fit(self, spec: JobSpec) -> Verdict:
        """Whether and how this engine runs ``spec`` exactly as declared."""
        ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Needs:
    """What a manifest asks of the engines, so each reads only the capabilities that matter."""

    function_names: frozenset[str] = frozenset()
    #: Django database alias -> database name, for the aliases on the ``default`` server
    database_names: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Health:
    """Is an engine's scheduler doing its work? ``state`` is the engine's own word."""

    engine: str
    #: what the operator calls the scheduler ("pg_cron scheduler", "Celery beat")
    label: str
    state: str
    healthy: bool
    detail: str
    #: engine-specific facts for the admin (launcher pid, last start, ...)
    facts: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """One engine. Every method runs inside the caller's transaction and commits nothing."""

    engine: str
    #: how people name it ("pg_cron", "Celery")
    label: str

    def capabilities(self, needs: Needs) -> object:
        """What the engine, as installed and configured, offers (read live, once per command);
        raises ``ServiceError`` when it cannot be reached."""
        ...

    def fitter(self, capabilities: object) -> EngineFit:
        """The engine's pure judgement of specs, bound to ``capabilities``."""
        ...

    def health(self) -> Health:
        """Whether the engine's scheduler runs what is due, read now."""
        ...

    def ensure_ready(self) -> str:
        """Check (and where it is ours to do, set up) what the engine needs before migrations:
        a line saying what was found; raises ``ServiceError`` saying how to fix what is not."""
        ...

    def import_runs(self) -> int:
        """Bring the engine's finished runs into the run history now; how many were added
        (engines that record runs as they happen add none)."""
        ...

    def metric_families(self) -> Iterable[Metric]:
        """The engine's own Prometheus series (queue depths, workers up, ...), read at scrape
        time. Asked at the start of a scrape and read at its end: an engine may start a slow
        read when asked (in a thread) and finish it when the families are iterated."""
        ...

    def live(self) -> dict[str, LiveJob]:
        """Every job the engine holds, keyed by name (unnamed ones by ``#<id>``)."""
        ...

    def runs(
        self, trigger: Trigger, timezone: str, after: datetime, last_run: datetime | None = None
    ) -> Iterator[datetime]:
        """The instants after ``after`` at which this engine runs ``trigger`` (aware, UTC,
        ascending; endless for a recurring trigger), by the engine's own reading of the
        schedule, daylight-saving days included. ``last_run`` is the engine's last run of
        the job, where known (an interval counts from it). ``explain --next``, the status
        model and missed-run counting all ask this, never croniter."""
        ...

    def schedule_of(self, trigger: Trigger, timezone: str) -> EngineSchedule | None:
        """The schedule this engine was given for ``trigger`` when the job was placed on it,
        so a registry definition can be rendered and compared with the live job."""
        ...

    def problems(self, spec: JobSpec) -> list[tuple[str, str]]:
        """What this engine, as configured, cannot honour in a job placed on it:
        ``(field, message)`` pairs, reported as located manifest errors."""
        ...

    def render(self, desired: Desired) -> Mapping[str, object] | None:
        """The state ``create`` would write, comparable with ``LiveJob.state``; ``None`` when
        the job has no engine-side object (an ``on: startup`` job)."""
        ...

    def create(self, jobs: Sequence[Desired]) -> dict[str, str]:
        """Create the jobs; return their engine ids by name."""
        ...

    def update(self, jobs: Sequence[tuple[str, Desired]]) -> None:
        """Overwrite the jobs with these engine ids with their desired state."""
        ...

    def delete(self, engine_ids: Sequence[str]) -> None:
        """Remove the jobs with these engine ids."""
        ...

    def set_active(self, engine_id: str, active: bool) -> None:
        """Pause (``False``) or resume (``True``) one job."""
        ...

    def run_now(
        self,
        definition: Mapping[str, object],
        queue: str | None,
        kwargs: Mapping[str, object] | None = None,
    ) -> str:
        """Start one run now of the job with this registered definition; return an id to
        follow it by. The message names the job only: the runner reads its definition from
        the registry, so nothing sent can change what runs. ``kwargs`` (a task job's only)
        are laid over the registered keyword arguments after a check against the task's
        signature; an engine that cannot take them raises ``OrchestratorError``."""
        ...

    def run_slot(self, definition: Mapping[str, object], queue: str | None, slot: datetime) -> str:
        """Start one run now of the job, for its past scheduled instant ``slot`` (a backfill):
        the message carries ``backfill_headers(slot)``, so run history records the run as a
        backfill with ``scheduled_for = slot``. Returns an id to follow it by."""
        ...

    def finish(self) -> None:
        """Called once after a batch of changes (e.g. to tell beat to reload once)."""
        ...


#: the message header a run's scheduled instant travels in (beat's slots use the same one)
SLOT_HEADER = "scheduled_at"
#: the message header that marks a backfill run
BACKFILL_HEADER = "backfill"


def backfill_headers(slot: datetime) -> dict[str, object]:
    """The headers of a backfill run of ``slot``."""
    return {SLOT_HEADER: slot.isoformat(), BACKFILL_HEADER: True}


def run_payload(spec: JobSpec) -> dict[str, object]:
    """The keyword arguments of a run of ``spec``: its name only (``payload_from_definition``).

    Built from the name alone: it was a whole ``to_dict`` for every render of a Celery job
    (100,000 of them in a 100,000-job apply from empty, for nothing but the name)."""
    return payload_from_definition({"name": spec.name})


def payload_from_definition(definition: Mapping[str, object]) -> dict[str, object]:
    """What a run message carries: the keyword arguments of ``orchestrator.run_job``.

    Only the job's name. Schedule rows and run-now messages can be edited or forged by people
    the manifest does not trust (django-celery-beat's change permission, broker access); the
    runner reads the body, arguments, retries and limits from the orchestrator's registry,
    which only an apply writes. Beat's schedules and run-now send exactly this, so a run
    behaves the same whoever started it.
    """
    return {"name": definition["name"]}
