"""What a managed ``PeriodicTask`` row says, written from a job and read back in one shape.

Drift is "the live row differs from what ``render`` gives", so the two directions must agree
field for field: ``render`` turns a placed job into the state ``create`` writes, ``live_jobs``
reads a row (as ``LIVE_COLUMNS`` values, schedule joined in) into the same shape, and ``fill``
writes a rendered job into a model instance. The backend (``backend``) only moves rows in bulk;
the schedule rows themselves are ``schedule_rows``'.

A row carries the job's name only (``{"name": ...}``): the runner reads the definition from the
registry. Its headers carry the manifest's timeout (``timelimit``) and slot policy, which our
beat (``due_scheduler``) reads and drops from the messages it sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from orchestrator.cron_readings import has_extension
from orchestrator.engines.base import Desired, LiveJob, run_payload
from orchestrator.engines.celery.runner import RUNNER_TASK
from orchestrator.engines.celery.schedule_rows import ScheduleRows
from orchestrator.engines.celery.slot_policy import POLICY_HEADER, SlotPolicy
from orchestrator.schedules import jitter_offset
from orchestrator.specs import DEFAULT_CATCH_UP_LIMIT, Cron, body_to_dict

#: seconds a hard time limit leaves after the soft one, for the job to clean up
HARD_LIMIT_GRACE = 30
#: seconds between statement_timeout and the soft time limit of a SQL body
SQL_SOFT_LIMIT_SLACK = 5
#: the ``PeriodicTask`` fields ``fill`` sets from a job (besides args and the schedule)
FIELDS = ("task", "kwargs", "queue", "headers", "one_off", "expires", "description", "enabled")
#: what ``live_jobs`` reads of a periodic task and its schedule
LIVE_COLUMNS = (
    "id", "name", "enabled", "task", "args", "kwargs", "queue", "headers", "one_off", "expires",
    "description", "crontab_id", "interval_id", "clocked_id", "crontab__minute", "crontab__hour",
    "crontab__day_of_month", "crontab__month_of_year", "crontab__day_of_week",
    "crontab__timezone", "interval__every", "interval__period", "clocked__clocked_time",
    "last_run_at",
)  # fmt: skip

#: seconds in each of django-celery-beat's interval periods
_PERIOD_SECONDS = {
    IntervalSchedule.DAYS: 86400,
    IntervalSchedule.HOURS: 3600,
    IntervalSchedule.MINUTES: 60,
    IntervalSchedule.SECONDS: 1,
    IntervalSchedule.MICROSECONDS: 1e-6,
}


def _json(value: object) -> str:
    """The one JSON spelling we write to django-celery-beat's text columns.

    Live state is compared as this text, not parsed: 10,000 tasks compare in a blink, and a
    hand edit that only re-spells the JSON still shows, honestly, as an edit.
    """
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def time_limit_headers(timeout: int | None, body: object) -> dict[str, object]:
    """Celery reads a message's ``timelimit`` header as (hard, soft) seconds; beat copies a
    periodic task's headers into every message it sends, so the manifest's timeout lands on
    each run without a task-level setting.

    SQL bodies are stopped by the server (``statement_timeout``), which leaves the session
    usable; their soft limit comes a little later, as a backstop only.
    """
    if not timeout:
        return {}
    is_sql = isinstance(body, Mapping) and body.get("kind") == "sql"
    soft = timeout + SQL_SOFT_LIMIT_SLACK if is_sql else timeout
    return {"timelimit": [soft + HARD_LIMIT_GRACE, soft]}


# --------------------------------------------------------------------------- reading


def live_jobs(engine: str, found: Iterable[Sequence[Any]]) -> dict[str, LiveJob]:
    """Each periodic task of ``found`` (rows of ``LIVE_COLUMNS`` values) as a ``LiveJob``.

    Each row is unpacked by position, in ``LIVE_COLUMNS``' order: a dict per row cost a tenth
    of a no-op plan at 10,000 jobs."""
    jobs: dict[str, LiveJob] = {}
    for (
        pk, name, enabled, task, args, kwargs, queue, headers, one_off, expires,
        description, crontab_id, interval_id, clocked_id, minute, hour, day_of_month,
        month_of_year, day_of_week, zone, every, period, clocked_time, last_run_at,
    ) in found:  # fmt: skip
        if crontab_id is not None:
            cron = f"{minute} {hour} {day_of_month} {month_of_year} {day_of_week}"
            schedule: dict[str, object] = {"kind": "cron", "cron": cron, "timezone": str(zone)}
        elif interval_id is not None:
            schedule = {"kind": "interval", "seconds": every * _PERIOD_SECONDS[period]}
        elif clocked_id is not None:
            schedule = {"kind": "clocked", "when": _iso(clocked_time)}
        else:
            schedule = {"kind": "solar"}
        jobs[name] = LiveJob(
            engine=engine,
            engine_id=str(pk),
            name=name,
            active=enabled,
            state={
                "task": task,
                "args": args or "[]",
                "kwargs": kwargs,
                "queue": queue or None,
                "headers": headers or "{}",
                "one_off": one_off,
                "expires": _iso(expires),
                "description": description,
                "schedule": schedule,
            },
            last_run=last_run_at,
        )
    return jobs


# --------------------------------------------------------------------------- writing


def render(desired: Desired) -> Mapping[str, object] | None:
    """The state ``create`` writes for a placed job, in ``live_jobs``'s shape (``None`` for
    an ``on: startup`` job: it has no periodic task)."""
    schedule = desired.schedule
    if schedule.kind == "startup":
        return None
    if schedule.kind == "cron":
        rendered: dict[str, object] = {
            "kind": "cron",
            "cron": schedule.cron,
            "timezone": schedule.timezone,
        }
    elif schedule.kind == "interval":
        rendered = {"kind": "interval", "seconds": schedule.seconds}
    else:
        rendered = {"kind": "clocked", "when": _iso(schedule.when)}
    spec = desired.spec
    return {
        "task": RUNNER_TASK,
        "args": "[]",
        "kwargs": _json(run_payload(spec)),
        "queue": spec.queue or None,
        "headers": _json(_headers(desired)),
        "one_off": schedule.kind == "clocked",
        "expires": _iso(spec.expires),
        "description": spec.description,
        "schedule": rendered,
    }


def _headers(desired: Desired) -> dict[str, object]:
    spec = desired.spec
    headers = time_limit_headers(spec.timeout, body_to_dict(spec.body))
    extended = isinstance(spec.trigger, Cron) and has_extension(spec.trigger.expr)
    policy = SlotPolicy(
        catch_up=spec.catch_up,
        limit=spec.catch_up_limit or DEFAULT_CATCH_UP_LIMIT,
        offset=jitter_offset(spec.name, spec.jitter or 0),
        align=desired.schedule.kind == "interval",
        cron=spec.trigger.expr if extended and isinstance(spec.trigger, Cron) else None,
        tz=spec.timezone,
    ).as_header()
    if policy:  # read by our beat (due_scheduler), dropped from the messages it sends
        headers[POLICY_HEADER] = policy
    return headers


def fill(task: PeriodicTask, desired: Desired, schedules: ScheduleRows) -> PeriodicTask:
    """Write ``desired``'s rendered state and schedule rows into ``task`` (not saved)."""
    rendered = desired.rendered or render(desired)
    assert rendered is not None  # startup jobs never reach here
    task.task = RUNNER_TASK
    task.args = "[]"
    task.kwargs = str(rendered["kwargs"])
    task.queue = desired.spec.queue or None
    task.headers = str(rendered["headers"])
    task.one_off = bool(rendered["one_off"])
    task.expires = desired.spec.expires
    task.description = desired.spec.description
    task.enabled = desired.active
    task.crontab, task.interval, task.clocked = schedules.for_(desired)
    task.solar = None
    task.date_changed = timezone.now()
    return task
