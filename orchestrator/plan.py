"""The plan: what must change in each engine for it to match the manifest, job by job.

Like ``terraform plan``: a pure comparison of three things — the manifest's placed jobs, the
registry (what we applied before) and each engine's live jobs — into one ``Change`` per job:

- ``create``: in the manifest, not in the registry;
- ``update``: the definition changed (its hash), or the classifier moved it to another engine;
- ``drift``: the definition is the same but the engine's job was edited, paused or removed
  outside the manifest (the django-celery-beat admin, a hand-run ``cron.alter_job``);
- ``delete``: in the registry, no longer in the manifest (applied only with ``--prune``);
- ``unchanged``.

A manifest job whose name is already taken by a job we did not create is refused: pg_cron upserts
by name and django-celery-beat's names are unique, so going ahead would silently take it over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from orchestrator.engines.base import Backend, Desired, LiveJob
from orchestrator.errors import OrchestratorError
from orchestrator.schedules import EngineSchedule, stored_instant
from orchestrator.specs import At, JobSpec, spec_hash, to_dict

Action = Literal["create", "update", "drift", "delete", "unchanged"]
ACTIONS: tuple[Action, ...] = ("create", "update", "drift", "delete", "unchanged")


class NameTaken(OrchestratorError):
    """A job of that name exists in the engine and was not created by the orchestrator."""


class PlanRefused(OrchestratorError):
    """The plan cannot be made."""

    def __init__(self, errors: Sequence[OrchestratorError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(str(error) for error in self.errors))


@dataclass(frozen=True, kw_only=True, slots=True)
class Placed:
    """A manifest job with the engine the classifier chose and that engine's schedule."""

    spec: JobSpec
    engine: str
    schedule: EngineSchedule
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class Applied:
    """What the registry says we applied for one job."""

    name: str
    engine: str
    engine_id: str
    spec_hash: str
    #: loaded only for jobs whose definition changed or that left the manifest (for the diff)
    definition: Mapping[str, object] = field(default_factory=dict)
    enabled: bool = True
    paused: bool = False
    #: expired, retired (max_runs) or done (one-time, fired): its engine job stays disabled
    ended: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Change:
    name: str
    action: Action
    target: str
    diff: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    placed: Placed | None = None
    applied: Applied | None = None
    live: LiveJob | None = None

    @property
    def desired(self) -> Desired | None:
        if self.placed is None:
            return None
        return Desired(
            spec=self.placed.spec,
            schedule=self.placed.schedule,
            active=self.placed.spec.enabled and not self.paused and not self.ended,
        )

    @property
    def paused(self) -> bool:
        """Paused by an operator through the orchestrator (the registry's flag). A pause state
        changed in an engine's own tools is drift, which apply restores (``orchestrator.status``
        says why it is not adopted)."""
        return self.applied is not None and self.applied.paused

    @property
    def ended(self) -> bool:
        """The job ended (``Applied.ended``) and its definition is unchanged: keep it off.

        A changed definition re-arms it (a one-time job changed into a schedule runs on that
        schedule), except while the instant that ended it is still the manifest's: a fired
        one-time job, or an expired one, whose description changed must not run again."""
        if self.applied is None or not self.applied.ended:
            return False
        return self.action != "update" or self._same_ending()

    def _same_ending(self) -> bool:
        if self.placed is None or self.applied is None:
            return False
        spec, before = self.placed.spec, self.applied.definition
        if isinstance(spec.trigger, At):
            trigger = before.get("trigger")
            when = trigger.get("when") if isinstance(trigger, Mapping) else None
            return stored_instant(when) == spec.trigger.when
        if spec.expires is not None and spec.expires <= datetime.now(UTC):
            return stored_instant(before.get("expires")) == spec.expires
        return False

    @property
    def moves(self) -> bool:
        return self.applied is not None and self.applied.engine != self.target

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "action": self.action, "target": self.target, "diff": self.diff}


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    changes: tuple[Change, ...]
    unmanaged: tuple[LiveJob, ...] = ()

    def of(self, *actions: Action) -> list[Change]:
        return [change for change in self.changes if change.action in actions]

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        counts["unmanaged"] = len(self.unmanaged)
        return counts

    def pending(self, prune: bool = True) -> bool:
        actions: tuple[Action, ...] = ("create", "update", "drift")
        return bool(self.of(*actions, "delete") if prune else self.of(*actions))

    def as_json(self) -> dict[str, object]:
        return {
            "changes": [
                change.as_json() for change in self.changes if change.action != "unchanged"
            ],
            "summary": self.summary(),
        }


def field_diff(old: Mapping[str, object], new: Mapping[str, object]) -> dict[str, dict]:
    """``{field: {"from": old, "to": new}}`` for every top-level field that differs."""
    return {
        key: {"from": old.get(key), "to": new.get(key)}
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    }


class PlacedJobs(Protocol):
    """Placed jobs that materialise on demand (``orchestrator.placed_manifest``): the name,
    engine, hash and rendered state of each are at hand, its ``Placed`` only through ``get``."""

    # Read-only members, so a plain ``dict`` attribute satisfies them.
    @property
    def hashes(self) -> Mapping[str, str]: ...

    @property
    def rendered(self) -> Mapping[str, Mapping[str, object] | None]: ...

    @property
    def enabled(self) -> Mapping[str, bool]: ...

    def names(self) -> list[tuple[str, str]]: ...

    def get(self, name: str) -> Placed: ...


class _InMemory:
    """``PlacedJobs`` over a plain sequence of ``Placed``."""

    def __init__(
        self,
        placed: Sequence[Placed],
        hashes: Mapping[str, str] | None,
        rendered: Mapping[str, Mapping[str, object] | None] | None,
    ) -> None:
        self.by_name = {job.spec.name: job for job in placed}
        self.hashes = hashes or {name: spec_hash(job.spec) for name, job in self.by_name.items()}
        self.rendered = rendered or {}
        self.enabled = {name: job.spec.enabled for name, job in self.by_name.items()}

    def names(self) -> list[tuple[str, str]]:
        return [(name, job.engine) for name, job in self.by_name.items()]

    def get(self, name: str) -> Placed:
        return self.by_name[name]


def placed_jobs(
    placed: Sequence[Placed] | PlacedJobs,
    hashes: Mapping[str, str] | None = None,
    rendered: Mapping[str, Mapping[str, object] | None] | None = None,
) -> PlacedJobs:
    """``placed`` as ``PlacedJobs`` (a sequence is wrapped; its hashes computed if not given)."""
    if isinstance(placed, Sequence):
        return _InMemory(placed, hashes, rendered)
    return placed


def make_plan(
    placed: Sequence[Placed] | PlacedJobs,
    applied: Mapping[str, Applied],
    live: Mapping[str, Mapping[str, LiveJob]],
    backends: Mapping[str, Backend],
    hashes: Mapping[str, str] | None = None,
    rendered: Mapping[str, Mapping[str, object] | None] | None = None,
) -> Plan:
    """Compare the manifest with the registry and the engines (see the module docstring).

    ``hashes`` are the placed specs' hashes by name, and ``rendered`` the state each job's
    backend would write (``Backend.render``), when the caller already has them (a
    ``PlacedJobs`` carries both). A job whose hash, engine and live state all match is
    ``unchanged`` without its ``Placed`` ever being materialised (its ``placed`` is then None).
    """
    jobs = placed_jobs(placed, hashes, rendered)
    managed_ids = {(a.engine, a.engine_id) for a in applied.values()}
    errors: list[OrchestratorError] = []
    changes: list[Change] = []
    wanted_hashes, wanted_rendered, wanted_enabled = jobs.hashes, jobs.rendered, jobs.enabled
    for name, engine in jobs.names():
        before = applied.get(name)
        existing = live.get(engine, {}).get(name)
        if existing is not None and (engine, existing.engine_id) not in managed_ids:
            errors.append(_name_taken(jobs.get(name), existing))
            continue
        # The usual case inline (10,000 calls of ``_change`` were a tenth of a no-op plan):
        # same engine and hash, the engine's state as rendered, its active flag as wanted.
        if (
            before is not None
            and existing is not None
            and before.engine == engine
            and before.spec_hash == wanted_hashes[name]
            and wanted_rendered.get(name) is not None
            and existing.state == wanted_rendered[name]
            and (before.ended or existing.active == (wanted_enabled[name] and not before.paused))
        ):
            changes.append(
                Change(name=name, action="unchanged", target=engine, applied=before, live=existing)
            )
            continue
        changes.append(_change(name, engine, jobs, before, existing, backends[engine]))
    if errors:
        raise PlanRefused(errors)
    wanted = {name for name, _ in jobs.names()}
    for name, before in sorted(applied.items()):
        if name not in wanted:
            changes.append(
                Change(
                    name=name,
                    action="delete",
                    target=before.engine,
                    diff={"definition": {"from": dict(before.definition), "to": None}},
                    applied=before,
                    live=live.get(before.engine, {}).get(name),
                )
            )
    unmanaged = tuple(
        job
        for engine_jobs in live.values()
        for job in engine_jobs.values()
        if (job.engine, job.engine_id) not in managed_ids
    )
    changes.sort(key=lambda change: (ACTIONS.index(change.action), change.name))
    return Plan(changes=tuple(changes), unmanaged=unmanaged)


def _name_taken(job: Placed, existing: LiveJob) -> NameTaken:
    return NameTaken(
        f"a {existing.engine} job named {job.spec.name!r} already exists (id "
        f"{existing.engine_id}) and was not created by the orchestrator; rename this job or "
        f"remove the hand-made one",
        path=job.spec.path,
        line=job.spec.line,
        job=job.spec.name,
        field="name",
    )


def _change(
    name: str,
    engine: str,
    jobs: PlacedJobs,
    before: Applied | None,
    existing: LiveJob | None,
    backend: Backend,
) -> Change:
    if before is None:
        return Change(name=name, action="create", target=engine, placed=jobs.get(name))
    if before.engine != engine or before.spec_hash != jobs.hashes[name]:
        job = jobs.get(name)
        diff = field_diff(before.definition, to_dict(job.spec))
        if before.engine != engine:
            diff["target"] = {"from": before.engine, "to": engine}
        return Change(
            name=name, action="update", target=engine, diff=diff, placed=job,
            applied=before, live=existing,
        )  # fmt: skip
    if name in jobs.rendered:
        rendered = jobs.rendered[name]
    else:
        job = jobs.get(name)
        rendered = backend.render(Desired(spec=job.spec, schedule=job.schedule))
    if rendered is None:  # nothing engine-side to drift (an on: startup job)
        return Change(name=name, action="unchanged", target=engine, applied=before, live=existing)
    if existing is None:
        diff = {"exists": {"from": False, "to": True}}
    else:
        # equal dicts (the usual case) compare in C; field_diff says what differs otherwise
        diff = {} if existing.state == rendered else field_diff(existing.state, rendered)
        # Paused or resumed outside the orchestrator. An ended job's flag is the engine's own
        # business: beat disables an expired or fired one-off task, the runner a retired one.
        # (What ``Change.desired.active`` says, from what is at hand without the spec.)
        active = jobs.enabled[name] and not before.paused and not before.ended
        if existing.active != active and not before.ended:
            diff["active"] = {"from": existing.active, "to": active}
    if not diff:
        return Change(name=name, action="unchanged", target=engine, applied=before, live=existing)
    return Change(
        name=name, action="drift", target=engine, diff=diff, placed=jobs.get(name),
        applied=before, live=existing,
    )  # fmt: skip
