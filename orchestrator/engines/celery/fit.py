"""What Celery beat (django-celery-beat) runs exactly, and what running a job there means.

Celery runs every body (SQL through the runner task, a task, a program) and every trigger;
what it may not honour exactly is a cron expression it reads differently (both day fields must
match). An interval that is not a cron expression is counted from the previous run by stock
beat; our beat (``due_scheduler``) keeps it aligned to the clock, and also honours ``catch_up``
and ``jitter`` (the project runs it; stock django-celery-beat schedulers do not). On the
days a zone changes its clocks, Celery's rule for skipped and repeated local times applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.clock_changes import clock_changes
from orchestrator.cron_readings import croniter_reading, has_extension
from orchestrator.engines.base import Blocker, Verdict
from orchestrator.engines.celery.reading import celery_fields, celery_reading
from orchestrator.schedules import EngineSchedule, Fit, every_as_cron, format_every, jitter_offset
from orchestrator.specs import (
    DEFAULT_CATCH_UP_LIMIT,
    At,
    Cron,
    Every,
    JobSpec,
    Notify,
    SqlBody,
    Startup,
    Trigger,
)
from orchestrator.sql_analysis import analyse_sql

#: What the runner does for each ``overlap`` mode (runner.py), as explain says it.
OVERLAP_REASONS = {
    "skip": "overlap skip: a run that comes due while the previous one is still running is "
    "skipped (recorded as skipped).",
    "allow": "overlap allow: runs may overlap; each due run starts at once.",
    "buffer_one": "overlap buffer_one: while a run is going, one more run waits for it to end; "
    "any further run that comes due meanwhile is skipped (recorded as skipped, with the reason).",
    "cancel_other": "overlap cancel_other: a run that comes due while the previous one is still "
    "running cancels it (its SQL statement is cancelled, its task or program terminated; "
    "recorded as cancelled) and then starts.",
}


@dataclass(frozen=True, slots=True)
class CeleryFit:
    """Celery beat's judgement of specs (it needs no live capabilities)."""

    engine: str = "celery"

    def fit(self, spec: JobSpec) -> Verdict:
        fit = celery_fit(spec.trigger, spec.timezone)
        if fit.schedule is None:
            return Verdict(
                engine=self.engine,
                label="Celery",
                schedule=None,
                blockers=tuple(Blocker(spec.trigger_field, reason) for reason in fit.reasons),
            )
        reasons: list[str] = []
        if isinstance(spec.body, SqlBody):
            alone = analyse_sql(spec.body.sql).non_transactional
            if alone:
                reasons.append(
                    f"Celery runs the SQL with a task, outside a transaction block as "
                    f"{alone[0].label} requires."
                )
            else:
                reasons.append("Celery runs the SQL with a task, as one transaction.")
        reasons.append(f"Celery beat runs it: {fit.schedule.describe()}.")
        reasons.extend(fit.reasons)
        if spec.overlap is not None:
            reasons.append(OVERLAP_REASONS[spec.overlap])
        if spec.notify is not None:
            reasons.append(notify_reason(spec.notify))
        if fit.schedule.kind in ("cron", "interval"):
            reasons.extend(scheduling_reasons(spec))
        return Verdict(
            engine=self.engine, label="Celery", schedule=fit.schedule, reasons=tuple(reasons)
        )


def notify_reason(notify: Notify) -> str:
    """What ``notify`` does, as explain says it (no secret: only the variable's name)."""
    events = ", ".join(notify.events).replace("failed_final", "failed for good")
    whom = [f"e-mail to {', '.join(notify.email)}"] if notify.email else []
    if notify.webhook:
        whom.append(f"a webhook POST to {notify.webhook} signed with ${notify.secret_env}")
    return f"notify on {events}: {' and '.join(whom)} (sent by a Celery task of its own)."


def celery_fit(trigger: Trigger, timezone: str) -> Fit:
    """Can Celery beat (django-celery-beat) run ``trigger`` at exactly croniter's instants?"""
    if isinstance(trigger, At):
        return Fit(schedule=EngineSchedule(kind="clocked", when=trigger.when, timezone=timezone))
    if isinstance(trigger, Startup):
        return Fit(schedule=EngineSchedule(kind="startup", timezone=timezone))
    if isinstance(trigger, Every):
        expr = every_as_cron(trigger.seconds)
        if expr is not None:
            return Fit(schedule=EngineSchedule(kind="cron", cron=expr, timezone="UTC"))
        every = format_every(trigger.seconds)
        return Fit(
            schedule=EngineSchedule(kind="interval", seconds=trigger.seconds, timezone="UTC"),
            reasons=(
                f"Celery's interval schedule would count '{every}' from the previous run; our "
                f"beat (DueScheduler) keeps it aligned to the clock, at the multiples of "
                f"{trigger.seconds} s since 00:00 UTC, as 'every' means on every engine.",
            ),
        )
    if has_extension(trigger.expr):
        return _croniter_fit(trigger, timezone)
    try:
        celerys = celery_reading(trigger.expr)
    except ValueError as refused:
        # Celery's crontab refuses day/month pairs that never meet ('30' in February) even
        # where cron's either-day rule still fires ('* * 30 2 0' runs on February's Sundays).
        return Fit(
            schedule=None,
            reasons=(f"Celery's crontab refuses '{trigger.source}': {refused}",),
        )
    differences = croniter_reading(trigger.expr).differences(celerys)
    if differences == ["day"]:
        day_of_month, day_of_week = _day_fields(trigger.expr)
        return Fit(
            schedule=None,
            reasons=(
                "Celery's crontab fires only on days matching both day-of-month "
                f"('{day_of_month}') and day-of-week ('{day_of_week}'), but cron and croniter "
                f"fire '{trigger.source}' when either matches.",
            ),
        )
    if differences:
        fields = ", ".join(differences)
        return Fit(
            schedule=None,
            reasons=(f"Celery's crontab reads '{trigger.source}' differently (fields: {fields}).",),
        )
    cron = celery_fields(trigger.expr).as_cron()
    notes: tuple[str, ...] = ()
    reading = croniter_reading(trigger.expr)
    shifted = sorted(
        (hour, minute)
        for hour, minute in clock_changes(timezone)
        if hour in reading.hours and minute in reading.minutes
    )
    if shifted:
        first = "{:02d}:{:02d}".format(*shifted[0])
        notes = (
            f"On the days {timezone} changes its clocks, runs at local times that are skipped "
            f"or repeated (such as {first}) follow Celery's rule, not croniter's: Celery runs a "
            "skipped time late by the size of the change and a repeated time once, where "
            "croniter runs it at the end of the gap and twice.",
        )
    return Fit(schedule=EngineSchedule(kind="cron", cron=cron, timezone=timezone), reasons=notes)


def scheduling_reasons(spec: JobSpec) -> list[str]:
    """What our beat (``due_scheduler``) does after downtime and with ``jitter``, in words."""
    catch_up = {
        None: None,  # Celery's own, said by explain's "around the slots" line
        "none": "After beat downtime it sends none of the slots it missed (catch_up: none).",
        "one": "After beat downtime it sends one run, for the latest slot it missed "
        "(catch_up: one).",
        "all": "After beat downtime it sends each slot it missed, the latest "
        f"{spec.catch_up_limit or DEFAULT_CATCH_UP_LIMIT} at most, each carrying its slot "
        "(catch_up: all).",
    }[spec.catch_up]
    reasons = [catch_up] if catch_up else []
    if spec.jitter:
        reasons.append(
            f"Each run starts {jitter_offset(spec.name, spec.jitter)} s after its slot: a fixed "
            f"offset of at most {spec.jitter} s drawn from the job's name (jitter)."
        )
    return reasons


def _croniter_fit(trigger: Cron, timezone: str) -> Fit:
    """An expression with croniter's L, W or #: Celery's crontab reads none of them, so our beat
    computes its instants with croniter (``slot_policy``). The crontab row beat gets fires every
    day at the expression's minutes, hours and months (a superset, never used by our beat to
    decide), so the row stays a valid django-celery-beat schedule."""
    minute, hour, _, month, _ = trigger.expr.split(" ")
    superset = celery_fields(f"{minute} {hour} * {month} *").as_cron()
    return Fit(
        schedule=EngineSchedule(kind="cron", cron=superset, timezone=timezone),
        reasons=(
            f"Celery's crontab does not read croniter's L, W or # in '{trigger.source}'; our "
            "beat (DueScheduler) computes its instants with croniter itself, exactly as "
            "croniter reads them, in the job's time zone.",
        ),
    )


def _day_fields(expr: str) -> tuple[str, str]:
    fields = expr.split(" ")
    return fields[2], fields[4]
