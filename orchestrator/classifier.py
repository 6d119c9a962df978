"""Which engine runs a job, and why: ``classify(spec, engines) -> Placement``.

The classifier knows no engine. Each engine judges a job itself (``EngineFit.fit`` returns a
``Verdict``: the schedule it would get, the blockers that stop it, what running there means);
the classifier keeps only the preference order (the order of ``engines``, from
``settings.ORCHESTRATOR_BACKENDS``) and turns the verdicts into reasons:

* ``target: auto`` goes to the first engine with no blocker at all;
* an explicit ``target`` goes to that engine unless one of its blockers refuses an explicit
  choice, which is a ``PlacementError`` located at the blocker's field;
* a job no engine can run exactly is an error at its trigger, quoting every engine's reasons.

The placement's reasons say why it went where it went and why not elsewhere, in the order an
operator reads them: the choice, what was ruled out before it, what running it there means,
and what the engines after it could not do or lack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orchestrator.engines.base import EngineFit, Verdict
from orchestrator.errors import ManifestInvalid, OrchestratorError, PlacementError
from orchestrator.field_values import shorten
from orchestrator.gc_pause import gc_paused
from orchestrator.schedules import EngineSchedule
from orchestrator.specs import JobSpec, SqlBody
from orchestrator.sql_analysis import analyse_sql

#: Statements that act only on what the running role owns, and otherwise skip without failing.
OWNER_ONLY = frozenset({"VACUUM", "ANALYZE"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Placement:
    """Where a job runs, the schedule that engine gets, and the reasons, in order."""

    name: str
    target: str
    reasons: tuple[str, ...]
    schedule: EngineSchedule

    @property
    def cron(self) -> str | None:
        """The cron expression the engine gets (evaluated in ``schedule.timezone``), if any."""
        return self.schedule.cron


def classify(spec: JobSpec, engines: Sequence[EngineFit]) -> Placement:
    """Place one job; raises ``ManifestInvalid`` holding located ``PlacementError``s."""
    verdicts = [engine.fit(spec) for engine in engines]
    if spec.target != "auto":
        chosen = next((v for v in verdicts if v.engine == spec.target), None)
        if chosen is None:
            known = ", ".join(v.engine for v in verdicts)
            message = f"no engine {spec.target!r} is configured (engines: {known})"
            raise ManifestInvalid([_error(spec, "target", message)], path=spec.path)
        # A blocker that only rules out ``auto`` does not refuse an explicit choice, unless
        # the engine has no schedule to give the job at all.
        refusals = [b for b in chosen.blockers if b.refuses_explicit or chosen.schedule is None]
        if refusals:
            raise ManifestInvalid(
                [
                    _error(spec, b.field, f"target {spec.target} cannot run this job: {b.reason}")
                    for b in refusals
                ],
                path=spec.path,
            )
        if chosen.schedule is None:
            message = f"target {spec.target} cannot run this schedule"
            raise ManifestInvalid([_error(spec, spec.trigger_field, message)], path=spec.path)
        return _placement(spec, chosen, verdicts, explicit=True)
    chosen = next((v for v in verdicts if v.fits), None)
    if chosen is None:
        raise ManifestInvalid([_no_engine(spec, verdicts)], path=spec.path)
    return _placement(spec, chosen, verdicts, explicit=False)


def classify_all(
    specs: Iterable[JobSpec], engines: Sequence[EngineFit]
) -> tuple[dict[str, Placement], list[OrchestratorError]]:
    """Place every job; the errors of all jobs are collected rather than raised.

    The cyclic garbage collector is held off meanwhile (see ``gc_pause``)."""
    placements: dict[str, Placement] = {}
    errors: list[OrchestratorError] = []
    with gc_paused():
        for spec in specs:
            try:
                placements[spec.name] = classify(spec, engines)
            except ManifestInvalid as invalid:
                errors.extend(invalid.errors)
    return placements, errors


def _placement(
    spec: JobSpec, chosen: Verdict, verdicts: list[Verdict], *, explicit: bool
) -> Placement:
    position = verdicts.index(chosen)
    before, after = verdicts[:position], verdicts[position + 1 :]
    reasons: list[str] = []
    if explicit:
        reasons.append(f"target: {chosen.engine} was chosen in the manifest.")
        for other in before:
            if other.fits:
                reasons.append(
                    f"{other.label} could also have run it exactly; "
                    f"the manifest chose {chosen.label}."
                )
            reasons.extend(f"Not {other.label} anyway: {b.reason}" for b in other.blockers)
    else:
        for other in before:
            reasons.extend(f"Not {other.label}: {b.reason}" for b in other.blockers)
        if not before and chosen.chosen_because:
            reasons.append(chosen.chosen_because)
    reasons.extend(chosen.reasons)
    reasons.extend(f"Not verified: {b.reason}" for b in chosen.blockers)
    reasons.extend(_role_notes(spec))
    for other in after:
        reasons.extend(
            f"{other.label} could not run it exactly: {b.reason}" for b in other.blockers
        )
        if chosen.advantage:
            reasons.append(f"Not {other.label}: {chosen.advantage}")
    schedule = chosen.schedule
    if schedule is None:  # classify refuses an engine without a schedule before this
        raise ManifestInvalid([_no_engine(spec, verdicts)], path=spec.path)
    return Placement(
        name=spec.name, target=chosen.engine, reasons=tuple(reasons), schedule=schedule
    )


def _role_notes(spec: JobSpec) -> list[str]:
    """What running as the jobs role means for this SQL, whichever engine runs it."""
    if not isinstance(spec.body, SqlBody):
        return []
    owner_only = sorted(set(analyse_sql(spec.body.sql).labels) & OWNER_ONLY)
    if not owner_only:
        return []
    verb = "skips" if len(owner_only) == 1 else "skip"
    return [
        f"SQL jobs run as the jobs role: {' and '.join(owner_only)} {verb}, with a warning, every "
        "table that role does not own (PostgreSQL 15 has no MAINTAIN privilege); the "
        "tasks.maintenance tasks do the whole database on the owner's connection."
    ]


def _no_engine(spec: JobSpec, verdicts: list[Verdict]) -> PlacementError:
    """One error at the trigger: the last engine's reasons, then each earlier engine's."""
    last, earlier = verdicts[-1], verdicts[:-1]
    message = "no engine can run this job exactly: " + " ".join(b.reason for b in last.blockers)
    for other in earlier:
        message += f" And {other.label}: " + " ".join(b.reason for b in other.blockers)
    return _error(spec, spec.trigger_field, message)


def _error(spec: JobSpec, field: str, message: str) -> PlacementError:
    return PlacementError(
        shorten(message), path=spec.path, line=spec.line_of(field), job=spec.name, field=field
    )
