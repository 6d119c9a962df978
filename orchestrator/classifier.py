"""Which engine runs a job, and why: ``classify(spec, capabilities) -> Placement``.

``target: auto`` sends a job to pg_cron only when the pg_cron installed runs it *exactly* as
declared; everything else goes to Celery, SQL included (run by a task). Each check that rules
pg_cron out is a sentence an operator understands, and a placement always says why it went
where it went and why not the other engine. An explicit ``target`` the engine cannot honour is
a ``PlacementError`` located at the field that prevents it.

Decisions taken here, each stated in the reasons it produces:

* A function the SQL calls that is missing from ``pg_catalog``, or that could not be looked up,
  rules pg_cron out under ``auto`` (we cannot show it stays inside the database), but does not
  refuse an explicit ``target: pg_cron`` (the operator vouches for it).
* Functions compiled into the server or an extension (languages ``internal``/``c``) and those
  in trusted languages stay inside the database, unless they are known to reach outside
  (``sql_rules.EXTERNAL_FUNCTIONS``: dblink, ``pg_read_file`` ...).
* ``timeout`` rules pg_cron out: it has no per-job timeout, and a ``SET statement_timeout``
  prefix would bound each statement rather than the job, and would turn a lone VACUUM into a
  multi-statement command that fails.
* ``overlap`` unset accepts pg_cron's behaviour (a run that comes due while the previous one is
  still running is queued); ``skip`` and ``allow`` ask for something pg_cron does not do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from orchestrator.capabilities import Capabilities
from orchestrator.errors import ManifestInvalid, OrchestratorError, PlacementError
from orchestrator.manifest_fields import shorten
from orchestrator.schedules import (
    EngineSchedule,
    Fit,
    celery_fit,
    is_utc,
    pg_cron_fit,
    pg_cron_zone_reason,
)
from orchestrator.specs import CommandBody, Every, JobSpec, SqlBody, TaskBody
from orchestrator.sql_analysis import SqlFacts, analyse_sql


@dataclass(frozen=True, kw_only=True, slots=True)
class Placement:
    """Where a job runs, the schedule that engine gets, and the reasons, in order."""

    name: str
    target: Literal["pg_cron", "celery"]
    reasons: tuple[str, ...]
    schedule: EngineSchedule

    @property
    def cron(self) -> str | None:
        """The cron expression the engine gets (evaluated in ``schedule.timezone``), if any."""
        return self.schedule.cron


@dataclass(frozen=True, slots=True)
class Blocker:
    """One reason pg_cron cannot run the job, and the field responsible for it."""

    field: str
    reason: str
    refuses_explicit: bool = True  # False: rules out 'auto' but an explicit target may insist


def classify(spec: JobSpec, capabilities: Capabilities) -> Placement:
    """Place one job; raises ``ManifestInvalid`` holding located ``PlacementError``s."""
    celery = celery_fit(spec.trigger, spec.timezone)
    blockers = pg_cron_blockers(spec, capabilities)
    if spec.target == "celery":
        return _to_celery(spec, celery, blockers, chosen=True)
    if spec.target == "pg_cron":
        refusals = [blocker for blocker in blockers if blocker.refuses_explicit]
        if refusals:
            raise ManifestInvalid(
                [
                    _error(spec, b.field, f"target pg_cron cannot run this job: {b.reason}")
                    for b in refusals
                ],
                path=spec.path,
            )
        return _to_pg_cron(spec, capabilities, celery, blockers, chosen=True)
    if not blockers:
        return _to_pg_cron(spec, capabilities, celery, [], chosen=False)
    return _to_celery(spec, celery, blockers, chosen=False)


def classify_all(
    specs: Iterable[JobSpec], capabilities: Capabilities
) -> tuple[dict[str, Placement], list[OrchestratorError]]:
    """Place every job; the errors of all jobs are collected rather than raised."""
    placements: dict[str, Placement] = {}
    errors: list[OrchestratorError] = []
    for spec in specs:
        try:
            placements[spec.name] = classify(spec, capabilities)
        except ManifestInvalid as invalid:
            errors.extend(invalid.errors)
    return placements, errors


# --------------------------------------------------------------------------- placements


def _to_pg_cron(
    spec: JobSpec, caps: Capabilities, celery: Fit, notes: list[Blocker], *, chosen: bool
) -> Placement:
    fit = pg_cron_fit(spec.trigger, spec.timezone, caps)
    if fit.schedule is None:  # pg_cron_blockers reports every such case before we get here
        message = "pg_cron cannot run this schedule: " + " ".join(fit.reasons)
        raise ManifestInvalid([_error(spec, spec.trigger_field, message)], path=spec.path)
    schedule = fit.schedule
    facts = analyse_sql(spec.body.sql) if isinstance(spec.body, SqlBody) else None
    what = ", ".join(dict.fromkeys(facts.labels)) if facts else "SQL"
    reasons = [
        "target: pg_cron was chosen in the manifest."
        if chosen
        else "Every condition for pg_cron holds, so the job runs inside the database.",
        f"The body is SQL ({what}) that stays inside the database.",
        f"{caps.pg_cron_label} runs it at exactly the declared instants: {schedule.describe()}.",
    ]
    if isinstance(spec.trigger, Every) and not is_utc(spec.timezone):
        reasons.append(f"An interval is the same instants in every time zone ({spec.timezone}).")
    reasons.extend(f"Not verified: {note.reason}" for note in notes)
    if not celery.ok:
        reasons.extend(f"Celery could not run it exactly: {reason}" for reason in celery.reasons)
    reasons.append(
        "Not Celery: no worker, broker or network hop is needed, and the job runs even while "
        "the application is down."
    )
    return Placement(name=spec.name, target="pg_cron", reasons=tuple(reasons), schedule=schedule)


def _to_celery(spec: JobSpec, celery: Fit, blockers: list[Blocker], *, chosen: bool) -> Placement:
    if celery.schedule is None:
        field = spec.trigger_field
        why = " ".join(celery.reasons)
        if chosen:
            message = f"target celery cannot run this job: {why}"
        else:
            pg_cron_why = " ".join(blocker.reason for blocker in blockers)
            message = f"no engine can run this job exactly: {why} And pg_cron: {pg_cron_why}"
        raise ManifestInvalid([_error(spec, field, message)], path=spec.path)
    if chosen:
        reasons = ["target: celery was chosen in the manifest."]
        if blockers:
            reasons.extend(f"Not pg_cron anyway: {blocker.reason}" for blocker in blockers)
        else:
            reasons.append("pg_cron could also have run it exactly; the manifest chose Celery.")
    else:
        reasons = [f"Not pg_cron: {blocker.reason}" for blocker in blockers]
    if isinstance(spec.body, SqlBody):
        alone = analyse_sql(spec.body.sql).non_transactional
        if alone:
            reasons.append(
                f"Celery runs the SQL with a task, outside a transaction block as {alone[0].label} "
                "requires."
            )
        else:
            reasons.append("Celery runs the SQL with a task, as one transaction.")
    reasons.append(f"Celery beat runs it: {celery.schedule.describe()}.")
    reasons.extend(celery.reasons)
    return Placement(
        name=spec.name, target="celery", reasons=tuple(reasons), schedule=celery.schedule
    )


def _error(spec: JobSpec, field: str, message: str) -> PlacementError:
    return PlacementError(
        shorten(message), path=spec.path, line=spec.line_of(field), job=spec.name, field=field
    )


# --------------------------------------------------------------------------- pg_cron checks


def pg_cron_blockers(spec: JobSpec, caps: Capabilities) -> list[Blocker]:
    """Every reason pg_cron, as installed, cannot run ``spec`` exactly as declared."""
    blockers: list[Blocker] = []
    label = caps.pg_cron_label
    if not caps.pg_cron_installed:
        where = f"database {caps.current_database!r}" if caps.current_database else "this database"
        blockers.append(Blocker("target", f"pg_cron is not installed in {where}."))
    blockers.extend(_body_blockers(spec, caps))
    if caps.pg_cron_installed or spec.trigger_field != "schedule":
        # Without pg_cron, a schedule's fit depends on a version nobody knows: say nothing.
        zone_reason = pg_cron_zone_reason(spec.trigger, spec.timezone, caps)
        for reason in pg_cron_fit(spec.trigger, spec.timezone, caps).reasons:
            field = "timezone" if reason == zone_reason else spec.trigger_field
            blockers.append(Blocker(field, reason))
    if spec.retries is not None:
        blockers.append(
            Blocker(
                "retries",
                "pg_cron does not retry a failed run; "
                f"this job asks for {spec.retries.max} retries.",
            )
        )
    if spec.timeout is not None:
        blockers.append(
            Blocker(
                "timeout",
                f"pg_cron has no per-job timeout; this job asks for {spec.timeout} s "
                "(a statement_timeout would bound each statement, not the job).",
            )
        )
    if spec.overlap == "skip":
        blockers.append(
            Blocker(
                "overlap",
                "pg_cron queues a run that comes due while the previous one is still "
                "running; it does not skip it.",
            )
        )
    elif spec.overlap == "allow":
        blockers.append(
            Blocker(
                "overlap",
                "pg_cron never runs two instances of a job at once; this job allows overlap.",
            )
        )
    if spec.max_runs is not None:
        blockers.append(
            Blocker("max_runs", f"pg_cron cannot stop a job after {spec.max_runs} runs.")
        )
    if spec.expires is not None:
        blockers.append(Blocker("expires", "pg_cron cannot stop a job at an expiry time."))
    if caps.pg_cron_installed:
        blockers.extend(_database_blockers(spec, caps, label))
    return blockers


def _body_blockers(spec: JobSpec, caps: Capabilities) -> list[Blocker]:
    body = spec.body
    if isinstance(body, TaskBody):
        return [Blocker("task", f"the body is a Celery task ({body.task}); pg_cron runs only SQL.")]
    if isinstance(body, CommandBody):
        return [
            Blocker(
                "command", f"the body is a program ({body.argv[0]}); commands always run on Celery."
            )
        ]
    facts = analyse_sql(body.sql)
    blockers = [
        Blocker("sql", f"the SQL reaches outside the database: {reason}.")
        for reason in facts.leaves_database
    ]
    blockers.extend(
        Blocker("sql", f"cannot check that the SQL stays inside the database: {reason}.", False)
        for reason in facts.unverifiable
    )
    blockers.extend(_function_blockers(facts, caps))
    return blockers


def _function_blockers(facts: SqlFacts, caps: Capabilities) -> list[Blocker]:
    blockers = []
    for ref in facts.functions:
        found = caps.functions_named(ref.schema, ref.name)
        if found is None:
            blockers.append(
                Blocker(
                    "sql",
                    f"{ref} could not be looked up in pg_catalog, so it may reach outside "
                    "the database.",
                    False,
                )
            )
        elif not found:
            where = f" in database {caps.current_database!r}" if caps.current_database else ""
            blockers.append(
                Blocker("sql", f"{ref} does not exist{where}, so it cannot be checked.", False)
            )
        else:
            untrusted = sorted(
                {
                    info.language
                    for info in found
                    if not info.trusted and info.language not in {"internal", "c", "sql"}
                }
            )
            if untrusted:
                languages = ", ".join(untrusted)
                blockers.append(
                    Blocker(
                        "sql",
                        f"{ref} is written in {languages}, an untrusted language that can "
                        "reach outside the database.",
                    )
                )
    return blockers


def _database_blockers(spec: JobSpec, caps: Capabilities, label: str) -> list[Blocker]:
    name = caps.database_names.get(spec.database)
    if name is None:
        return [
            Blocker("database", f"the database alias {spec.database!r} is not on pg_cron's server.")
        ]
    blockers = []
    if name not in caps.connectable_databases:
        blockers.append(Blocker("database", f"the role may not connect to database {name!r}."))
    if name != caps.cron_database_name and not caps.can_schedule_in_database:
        blockers.append(
            Blocker(
                "database",
                f"{label} lives in {caps.cron_database_name!r} and this role may not call "
                f"cron.schedule_in_database to run jobs in {name!r}.",
            )
        )
    return blockers
