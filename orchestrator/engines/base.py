"""The ``Backend`` protocol: everything the hall may ask of an engine.

The planner and reconciler work on ``Desired`` jobs and ``LiveJob`` snapshots; each wing turns
them into its engine's calls. ``render`` is the bridge for drift detection: the state a backend
would write for a desired job, in the same shape as ``LiveJob.state``, so "live differs from what
we would write" means someone edited the job outside the manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from orchestrator.schedules import EngineSchedule
from orchestrator.specs import JobSpec, to_dict

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


@dataclass(frozen=True, kw_only=True, slots=True)
class LiveJob:
    """A job as an engine has it now, managed by us or not."""

    engine: str
    engine_id: str
    name: str
    active: bool
    state: Mapping[str, object] = field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """One engine. Every method runs inside the caller's transaction and commits nothing."""

    engine: str

    def live(self) -> dict[str, LiveJob]:
        """Every job the engine holds, keyed by name (unnamed ones by ``#<id>``)."""
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

    def run_now(self, payload: Mapping[str, object], queue: str | None) -> str:
        """Start one run now with this run payload; return an id to follow it by."""
        ...

    def finish(self) -> None:
        """Called once after a batch of changes (e.g. to tell beat to reload once)."""
        ...


#: the fields of a job's canonical definition (``specs.to_dict``) that a run needs
PAYLOAD_FIELDS = ("body", "args", "kwargs", "retries", "timeout", "overlap", "max_runs", "database")


def payload_from_definition(definition: Mapping[str, object]) -> dict[str, object]:
    """What a worker needs to run one job: the keyword arguments of ``orchestrator.run_job``.

    Built from the canonical definition, which the registry keeps, so a run-now needs no
    manifest; beat's schedules and run-now send exactly this, so a run behaves the same
    whoever started it.
    """
    return {"name": definition["name"], **{key: definition.get(key) for key in PAYLOAD_FIELDS}}


def run_payload(spec: JobSpec) -> dict[str, object]:
    return payload_from_definition(to_dict(spec))
