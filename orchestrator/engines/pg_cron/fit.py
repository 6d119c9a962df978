"""What pg_cron, as installed, runs exactly: its schedules, its zone, and the SQL it may run.

A job fits pg_cron only when the pg_cron installed runs it *exactly* as declared. Each check
that rules it out is a ``Blocker``: a sentence an operator understands, at the field that
causes it. Decisions taken here, each stated in the reasons it produces:

* A function the SQL calls that is missing from ``pg_catalog``, or that could not be looked up,
  rules pg_cron out under ``auto`` (we cannot show it stays inside the database), but does not
  refuse an explicit ``target: pg_cron`` (the operator vouches for it).
* Functions compiled into the server or an extension (languages ``internal``/``c``) and those
  in trusted languages stay inside the database, unless they are known to reach outside
  (``sql_rules.EXTERNAL_FUNCTIONS``: dblink, ``pg_read_file`` ...).
* ``timeout`` rules pg_cron out: it has no per-job timeout, and a ``SET statement_timeout``
  prefix would bound each statement rather than the job, and would turn a lone VACUUM into a
  multi-statement command that fails.
* ``overlap`` unset accepts pg_cron's behaviour: pg_cron 1.4 never runs a job concurrently with
  itself; a slot that comes due while the job runs adds one to the task's ``pendingRunCount``
  (src/pg_cron.c), and every pending run starts back to back when the running one ends. That
  is none of ``skip``, ``allow``, ``buffer_one`` (at most one waiting) or ``cancel_other``.
* An interval that divides an hour or a day is a cron expression in UTC, which pg_cron honours;
  any other interval is refused: ``every`` is aligned to the clock, and pg_cron 1.5's
  ``N seconds`` counts from the job's previous start (``lastStartTime`` in src/pg_cron.c).
* ``catch_up: none`` is what pg_cron does; ``one`` and ``all`` rule it out, and so does a
  ``jitter`` (pg_cron starts a job on its minute).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.cron_readings import croniter_reading, has_extension
from orchestrator.engines.base import Blocker, Verdict
from orchestrator.engines.pg_cron.capabilities import Capabilities
from orchestrator.engines.pg_cron.reading import pg_cron_reading
from orchestrator.schedules import EngineSchedule, Fit, every_as_cron, format_every, is_utc
from orchestrator.specs import (
    At,
    CommandBody,
    Cron,
    Every,
    JobSpec,
    SqlBody,
    Startup,
    TaskBody,
    Trigger,
)
from orchestrator.sql_analysis import SqlFacts, analyse_sql

CHOSEN_BECAUSE = "Every condition for pg_cron holds, so the job runs inside the database."
#: Why a job that fits pg_cron goes there rather than to an engine after it.
ADVANTAGE = (
    "no worker, broker or network hop is needed, and the job runs even while the application "
    "is down."
)


@dataclass(frozen=True, slots=True)
class PgCronFit:
    """pg_cron's judgement of specs, for the pg_cron described by ``capabilities``."""

    capabilities: Capabilities
    engine: str = "pg_cron"

    def fit(self, spec: JobSpec) -> Verdict:
        caps = self.capabilities
        blockers = pg_cron_blockers(spec, caps)
        schedule = pg_cron_fit(spec.trigger, spec.timezone, caps).schedule
        reasons: list[str] = []
        if schedule is not None and isinstance(spec.body, SqlBody):
            what = ", ".join(dict.fromkeys(analyse_sql(spec.body.sql).labels)) or "SQL"
            reasons = [
                f"The body is SQL ({what}) that stays inside the database.",
                f"{caps.pg_cron_label} runs it at exactly the declared instants: "
                f"{schedule.describe()}.",
            ]
            if isinstance(spec.trigger, Every) and not is_utc(spec.timezone):
                reasons.append(
                    f"An interval is the same instants in every time zone ({spec.timezone})."
                )
        return Verdict(
            engine=self.engine,
            label="pg_cron",
            schedule=schedule,
            blockers=tuple(blockers),
            reasons=tuple(reasons),
            chosen_because=CHOSEN_BECAUSE,
            advantage=ADVANTAGE,
        )


# --------------------------------------------------------------------------- schedules


def pg_cron_zone(capabilities: Capabilities) -> str:
    """The zone pg_cron evaluates schedules in: GMT before 1.5, ``cron.timezone`` after."""
    if capabilities.supports_timezone and capabilities.cron_timezone:
        return capabilities.cron_timezone
    return "GMT"


def pg_cron_zone_reason(trigger: Trigger, timezone: str, capabilities: Capabilities) -> str | None:
    """Why pg_cron cannot evaluate ``trigger`` in ``timezone``, or None when it can.

    Only cron expressions depend on a zone: an interval is the same instants everywhere.
    """
    if not isinstance(trigger, Cron):
        return None
    engine_zone = pg_cron_zone(capabilities)
    if timezone == engine_zone or (is_utc(timezone) and is_utc(engine_zone)):
        return None
    label = capabilities.pg_cron_label
    if capabilities.supports_timezone:
        return (
            f"{label} runs every schedule in cron.timezone ({engine_zone}); "
            f"this job asks for {timezone}."
        )
    return f"{label} runs schedules in GMT only; this job asks for {timezone}."


def pg_cron_fit(trigger: Trigger, timezone: str, capabilities: Capabilities) -> Fit:
    """Can this pg_cron run ``trigger`` in ``timezone`` at exactly croniter's instants?"""
    label = capabilities.pg_cron_label
    engine_zone = pg_cron_zone(capabilities)
    if isinstance(trigger, At):
        return Fit(schedule=None, reasons=("pg_cron has no one-time schedules.",))
    if isinstance(trigger, Startup):
        return Fit(
            schedule=None,
            reasons=(
                "pg_cron cannot run a job when the application starts "
                "(its @reboot means the database server's start).",
            ),
        )
    if isinstance(trigger, Every):
        return _pg_cron_every(trigger, capabilities, label)
    reasons: list[str] = []
    zone_reason = pg_cron_zone_reason(trigger, timezone, capabilities)
    if zone_reason:
        reasons.append(zone_reason)
    reasons.extend(_pg_cron_reading_reasons(trigger, label))
    if reasons:
        return Fit(schedule=None, reasons=tuple(reasons))
    return Fit(schedule=EngineSchedule(kind="cron", cron=trigger.expr, timezone=engine_zone))


def _pg_cron_every(trigger: Every, capabilities: Capabilities, label: str) -> Fit:
    expr = every_as_cron(trigger.seconds)
    if expr is not None:
        return Fit(schedule=EngineSchedule(kind="cron", cron=expr, timezone="UTC"))
    every = format_every(trigger.seconds)
    if trigger.seconds < 60:
        if capabilities.supports_seconds:
            return Fit(
                schedule=None,
                reasons=(
                    f"{label}'s '{trigger.seconds} seconds' schedule counts from the job's "
                    f"previous start, but '{every}' is aligned to the clock (the multiples of "
                    f"{trigger.seconds} s since 00:00 UTC).",
                ),
            )
        return Fit(
            schedule=None,
            reasons=(
                f"{label} schedules whole minutes at best; '{every}' needs seconds "
                "(pg_cron 1.5 or later).",
            ),
        )
    return Fit(
        schedule=None,
        reasons=(
            f"'{every}' does not divide an hour or a day evenly, so no cron expression fires "
            "at exactly these instants, and pg_cron has only cron schedules.",
        ),
    )


def _pg_cron_reading_reasons(trigger: Cron, label: str) -> list[str]:
    if has_extension(trigger.expr):
        return [
            f"{label} (Vixie cron) does not read croniter's day extensions L, W and # in "
            f"'{trigger.source}'."
        ]
    engine = pg_cron_reading(trigger.expr)
    if engine.reading is None:
        return [f"{engine.refusal}." if engine.refusal else f"{label} refuses this schedule."]
    differences = croniter_reading(trigger.expr).differences(engine.reading)
    if not differences:
        return []
    if engine.notes:
        return [f"{note}." for note in engine.notes]
    if differences == ["day"]:
        return [
            f"{label} (Vixie cron) treats a day field starting with '*' as unrestricted and "
            f"then requires both day fields to match, so it reads '{trigger.source}' on "
            "different days than cron and croniter, which fire when either day field matches."
        ]
    fields = ", ".join(differences)
    return [f"{label} reads '{trigger.source}' differently from croniter (fields: {fields})."]


# --------------------------------------------------------------------------- jobs


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
    elif spec.overlap == "buffer_one":
        blockers.append(
            Blocker(
                "overlap",
                "pg_cron queues every run that comes due while the previous one is still "
                "running and runs them all back to back; it cannot keep at most one waiting "
                "(buffer_one).",
            )
        )
    elif spec.overlap == "cancel_other":
        blockers.append(
            Blocker(
                "overlap",
                "pg_cron never cancels a running job when the next run comes due; it queues "
                "the new run behind it (cancel_other asks for the opposite).",
            )
        )
    if spec.notify is not None:
        blockers.append(
            Blocker(
                "notify",
                "pg_cron's runs reach the run history through a SQL importer, which sends no "
                "notifications; this job asks to notify "
                + ", ".join(spec.notify.events).replace("failed_final", "failed for good")
                + ".",
            )
        )
    blockers.extend(_scheduling_blockers(spec))
    if spec.max_runs is not None:
        blockers.append(
            Blocker("max_runs", f"pg_cron cannot stop a job after {spec.max_runs} runs.")
        )
    if spec.expires is not None:
        blockers.append(Blocker("expires", "pg_cron cannot stop a job at an expiry time."))
    if caps.pg_cron_installed:
        blockers.extend(_database_blockers(spec, caps, label))
    return blockers


def _scheduling_blockers(spec: JobSpec) -> list[Blocker]:
    """``catch_up`` and ``jitter``: pg_cron runs a slot at its minute or not at all.

    pg_cron never runs the slots it missed while the server (or its launcher) was down, which
    is ``catch_up: none``; it starts each job on its minute, so it cannot delay one by a
    per-job offset (shifting whole minutes would change the job's cron expression, and the
    offset would no longer be the jitter the manifest asks for).
    """
    blockers = []
    if spec.catch_up in ("one", "all"):
        blockers.append(
            Blocker(
                "catch_up",
                "pg_cron never runs the slots it missed while the database was down "
                f"(catch_up: none); this job asks for catch_up: {spec.catch_up}.",
            )
        )
    if spec.jitter:
        blockers.append(
            Blocker(
                "jitter",
                "pg_cron starts every job at the start of its minute and cannot delay a job "
                f"by an offset of its own; this job asks for a jitter of {spec.jitter} s.",
            )
        )
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
                f"orchestrator_cron.schedule to run jobs in {name!r} (scripts/jobs_role.sql).",
            )
        )
    return blockers
