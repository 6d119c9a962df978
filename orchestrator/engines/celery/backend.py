"""The Celery beat backend: jobs are django-celery-beat ``PeriodicTask`` rows.

Every managed periodic task calls one task, ``orchestrator.run_job``, with only the job's name
as keyword arguments (``{"name": ...}``): the runner reads the definition from the registry, so
editing a row can never change what runs, and retries, time limits and overlap behave the same
for SQL, task and command bodies. A row still in the older shape (the whole body in its kwargs)
differs from what ``render`` gives, so the plan shows it and the next apply rewrites it.

Schedules map to django-celery-beat's own: cron to ``CrontabSchedule`` (in the
job's time zone), intervals to ``IntervalSchedule``, ``at`` to a one-off ``ClockedSchedule``.
``on: startup`` jobs have no periodic task: the hall runs them when workers start.

Changes are bulk writes that fire no per-row signals; ``finish`` then bumps beat's change
counter once, and beat reloads its schedule on its next tick (every 5 s at most).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)
from prometheus_client.metrics_core import Metric

from orchestrator.bulk_copy import copy_insert
from orchestrator.cron_readings import has_extension
from orchestrator.engines.base import (
    STARTUP_PREFIX,
    Desired,
    Health,
    LiveJob,
    Needs,
    backfill_headers,
    payload_from_definition,
    run_payload,
)
from orchestrator.engines.celery import clock
from orchestrator.engines.celery.beat import leader_count
from orchestrator.engines.celery.broker import check_broker
from orchestrator.engines.celery.delivery import check_fits
from orchestrator.engines.celery.fit import CeleryFit
from orchestrator.engines.celery.metrics import CeleryFamilies
from orchestrator.engines.celery.registered import RUN_KWARGS, check_run_kwargs
from orchestrator.engines.celery.runner import RUNNER_TASK
from orchestrator.engines.celery.schedule_rows import ScheduleRows
from orchestrator.engines.celery.slot_policy import POLICY_HEADER, SlotPolicy
from orchestrator.schedules import EngineSchedule, jitter_offset
from orchestrator.specs import DEFAULT_CATCH_UP_LIMIT, Cron, JobSpec, Trigger, body_to_dict

logger = logging.getLogger(__name__)

#: seconds a hard time limit leaves after the soft one, for the job to clean up
HARD_LIMIT_GRACE = 30
#: seconds between statement_timeout and the soft time limit of a SQL body
SQL_SOFT_LIMIT_SLACK = 5
_FIELDS = ("task", "kwargs", "queue", "headers", "one_off", "expires", "description", "enabled")
#: what ``live`` reads of a periodic task and its schedule
_LIVE_COLUMNS = (
    "id", "name", "enabled", "task", "args", "kwargs", "queue", "headers", "one_off", "expires",
    "description", "crontab_id", "interval_id", "clocked_id", "crontab__minute", "crontab__hour",
    "crontab__day_of_month", "crontab__month_of_year", "crontab__day_of_week",
    "crontab__timezone", "interval__every", "interval__period", "clocked__clocked_time",
    "last_run_at",
)  # fmt: skip


def _json(value: object) -> str:
    """The one JSON spelling we write to django-celery-beat's text columns.

    Live state is compared as this text, not parsed: 10,000 tasks compare in a blink, and a
    hand edit that only re-spells the JSON still shows, honestly, as an edit.
    """
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def _time_limit_headers(timeout: int | None, body: object) -> dict[str, object]:
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


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


#: seconds in each of django-celery-beat's interval periods
_PERIOD_SECONDS = {
    IntervalSchedule.DAYS: 86400,
    IntervalSchedule.HOURS: 3600,
    IntervalSchedule.MINUTES: 60,
    IntervalSchedule.SECONDS: 1,
    IntervalSchedule.MICROSECONDS: 1e-6,
}


class CeleryBeatBackend:
    """Celery beat with django-celery-beat's database scheduler."""

    engine = "celery"
    label = "Celery"

    # ------------------------------------------------------------------ operating
    def ensure_ready(self) -> str:
        check_broker()
        return "Redis answers"

    def import_runs(self) -> int:
        """Celery's runs are recorded from its signals as they happen: nothing to import."""
        return 0

    def metric_families(self) -> Iterable[Metric]:
        """Queue depths, beat leader present, workers up (``metrics``); the workers' ping
        starts now, in the background, and is waited for only when the families are read."""
        return CeleryFamilies()

    # ------------------------------------------------------------------ judging
    def capabilities(self, needs: Needs) -> None:
        """Celery runs every body and trigger; what it cannot honour is in the schedules."""
        return None

    def fitter(self, capabilities: object) -> CeleryFit:
        return CeleryFit()

    def health(self) -> Health:
        """Is a beat leader dispatching? It holds the leader's advisory lock."""
        try:
            leaders = leader_count()
        except DatabaseError as error:
            logger.warning("cannot read beat's leader lock", extra={"error": str(error)})
            return Health(
                engine=self.engine,
                label="Celery beat",
                state="unknown",
                healthy=False,
                detail=f"cannot read beat's leader lock: {error}",
            )
        if leaders:
            return Health(
                engine=self.engine,
                label="Celery beat",
                state="running",
                healthy=True,
                detail="a beat leader holds the lock and sends what is due",
            )
        return Health(
            engine=self.engine,
            label="Celery beat",
            state="stopped",
            healthy=False,
            detail="no celery beat holds the leader lock: periodic tasks are not being sent",
        )

    def __init__(self) -> None:
        self._changed = False
        #: clocked schedules that lost a task in this batch: removed in ``finish`` if unused
        self._clocked: set[int] = set()

    # ------------------------------------------------------------------ reading
    def runs(
        self, trigger: Trigger, timezone: str, after: datetime, last_run: datetime | None = None
    ) -> Iterator[datetime]:
        return clock.runs(trigger, timezone, after, last_run)

    def schedule_of(self, trigger: Trigger, timezone: str) -> EngineSchedule | None:
        return clock.schedule_of(trigger, timezone)

    def live(self) -> dict[str, LiveJob]:
        """Every periodic task, read as plain rows (one query, schedules joined in): building
        10,000 model instances with their schedules would cost more than the whole plan."""
        rows = PeriodicTask.objects.values_list(*_LIVE_COLUMNS)
        jobs: dict[str, LiveJob] = {}
        for row in rows:
            values = dict(zip(_LIVE_COLUMNS, row, strict=True))
            jobs[values["name"]] = LiveJob(
                engine=self.engine,
                engine_id=str(values["id"]),
                name=values["name"],
                active=values["enabled"],
                state=self._state(values),
                last_run=values["last_run_at"],
            )
        return jobs

    def problems(self, spec: JobSpec) -> list[tuple[str, str]]:
        """A job must finish, retries' countdowns included, within the broker's visibility
        timeout, or Redis delivers it a second time while it still runs."""
        countdown = 0
        if spec.retries is not None and spec.retries.max > 0:
            countdown = spec.retries.backoff * 2 ** (spec.retries.max - 1)
        message = check_fits(spec.timeout, countdown)
        if message is None:
            return []
        return [("timeout" if spec.timeout else "retries", message)]

    def _state(self, row: Mapping[str, Any]) -> dict[str, object]:
        return {
            "task": row["task"],
            "args": row["args"] or "[]",
            "kwargs": row["kwargs"],
            "queue": row["queue"] or None,
            "headers": row["headers"] or "{}",
            "one_off": row["one_off"],
            "expires": _iso(row["expires"]),
            "description": row["description"],
            "schedule": self._schedule_of(row),
        }

    @staticmethod
    def _schedule_of(row: Mapping[str, Any]) -> dict[str, object]:
        if row["crontab_id"] is not None:
            cron = " ".join(
                row[f"crontab__{part}"]
                for part in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
            )
            return {"kind": "cron", "cron": cron, "timezone": str(row["crontab__timezone"])}
        if row["interval_id"] is not None:
            seconds = row["interval__every"] * _PERIOD_SECONDS[row["interval__period"]]
            return {"kind": "interval", "seconds": seconds}
        if row["clocked_id"] is not None:
            return {"kind": "clocked", "when": _iso(row["clocked__clocked_time"])}
        return {"kind": "solar"}

    def render(self, desired: Desired) -> Mapping[str, object] | None:
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
            "headers": _json(self._headers(desired)),
            "one_off": schedule.kind == "clocked",
            "expires": _iso(spec.expires),
            "description": spec.description,
            "schedule": rendered,
        }

    @staticmethod
    def _headers(desired: Desired) -> dict[str, object]:
        spec = desired.spec
        headers = _time_limit_headers(spec.timeout, body_to_dict(spec.body))
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

    # ------------------------------------------------------------------ changing
    def create(self, jobs: Sequence[Desired]) -> dict[str, str]:
        created: dict[str, str] = {}
        periodic = [d for d in jobs if d.schedule.kind != "startup"]
        for desired in jobs:
            if desired.schedule.kind == "startup":
                created[desired.spec.name] = STARTUP_PREFIX + desired.spec.name
        if not periodic:
            return created
        schedules = ScheduleRows(periodic)
        rows = [self._fill(PeriodicTask(name=d.spec.name), d, schedules) for d in periodic]
        copy_insert(PeriodicTask, rows)
        for row in rows:
            created[row.name] = str(row.pk)
        self._changed = True
        logger.info("periodic tasks created", extra={"count": len(rows)})
        return created

    def update(self, jobs: Sequence[tuple[str, Desired]]) -> None:
        periodic = [(i, d) for i, d in jobs if not i.startswith(STARTUP_PREFIX)]
        if not periodic:
            return
        schedules = ScheduleRows([d for _, d in periodic])
        existing = PeriodicTask.objects.in_bulk([int(i) for i, _ in periodic])
        rows = []
        for engine_id, desired in periodic:
            task = existing[int(engine_id)]
            before = (task.crontab_id, task.interval_id, task.clocked_id)
            self._fill(task, desired, schedules)
            if before != (task.crontab_id, task.interval_id, task.clocked_id):
                # A new schedule starts afresh: beat would otherwise count it from the old
                # one's last run, and disable a one-off that already ran once.
                task.last_run_at = None
                task.total_run_count = 0
                if before[2] is not None:
                    self._clocked.add(before[2])
            rows.append(task)
        PeriodicTask.objects.bulk_update(
            rows,
            [
                *_FIELDS, "args", "crontab", "interval", "clocked", "date_changed",
                "last_run_at", "total_run_count",
            ],
            batch_size=2000,
        )  # fmt: skip
        self._changed = True

    def delete(self, engine_ids: Sequence[str]) -> None:
        ids = [int(i) for i in engine_ids if not i.startswith(STARTUP_PREFIX)]
        if not ids:
            return
        # A raw DELETE: Django's delete() would fire django-celery-beat's per-row signal, each
        # bumping the change counter; finish() bumps it once instead.
        table = connection.ops.quote_name(PeriodicTask._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id = ANY(%s) RETURNING clocked_id",  # noqa: S608 - table name from the model
                [ids],
            )
            self._clocked.update(row[0] for row in cursor.fetchall() if row[0] is not None)
        self._changed = True

    def set_active(self, engine_id: str, active: bool) -> None:
        if engine_id.startswith(STARTUP_PREFIX):
            return
        PeriodicTask.objects.filter(pk=int(engine_id)).update(
            enabled=active, date_changed=timezone.now()
        )
        PeriodicTasks.update_changed()

    def run_now(
        self,
        definition: Mapping[str, object],
        queue: str | None,
        kwargs: Mapping[str, object] | None = None,
    ) -> str:
        timeout = definition.get("timeout")
        payload = payload_from_definition(definition)
        if kwargs is not None:
            body, args, base = (definition.get(key) for key in ("body", "args", "kwargs"))
            check_run_kwargs(
                current_app,
                body if isinstance(body, Mapping) else {},
                args if isinstance(args, list) else [],
                base if isinstance(base, Mapping) else {},
                kwargs,
            )
            payload[RUN_KWARGS] = dict(kwargs)  # only the operator's: the runner merges again
        result = current_app.send_task(
            RUNNER_TASK,
            kwargs=payload,
            queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE,
            headers=_time_limit_headers(
                timeout if isinstance(timeout, int) else None, definition.get("body")
            ),
            shadow=str(payload["name"]),
        )
        return str(result.id)

    def run_slot(self, definition: Mapping[str, object], queue: str | None, slot: datetime) -> str:
        timeout = definition.get("timeout")
        payload = payload_from_definition(definition)
        headers = _time_limit_headers(
            timeout if isinstance(timeout, int) else None, definition.get("body")
        )
        result = current_app.send_task(
            RUNNER_TASK,
            kwargs=payload,
            queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE,
            headers={**headers, **backfill_headers(slot)},
            shadow=str(payload["name"]),
        )
        return str(result.id)

    def finish(self) -> None:
        if self._clocked:
            self._remove_unused_clocks(sorted(self._clocked))
            self._clocked = set()
        if self._changed:
            PeriodicTasks.update_changed()
            self._changed = False

    @staticmethod
    def _remove_unused_clocks(ids: list[int]) -> None:
        """Delete the clocked schedules our tasks used and no task uses any more.

        A one-time schedule is never reused once its instant is gone, so each one left behind
        is litter in django-celery-beat's admin. Only rows that lost one of our tasks in this
        apply are candidates, and one still used by any task (a hand-made one included) stays.
        """
        clocks = connection.ops.quote_name(ClockedSchedule._meta.db_table)
        tasks = connection.ops.quote_name(PeriodicTask._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {clocks} AS c WHERE c.id = ANY(%s)"  # noqa: S608 - table names from the models
                f" AND NOT EXISTS (SELECT 1 FROM {tasks} AS t WHERE t.clocked_id = c.id)",
                [ids],
            )
            removed = cursor.rowcount
        if removed:
            logger.info("unused clocked schedules removed", extra={"count": removed})

    # ------------------------------------------------------------------ rendering
    def _fill(self, task: PeriodicTask, desired: Desired, schedules: ScheduleRows) -> PeriodicTask:
        rendered = self.render(desired)
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
