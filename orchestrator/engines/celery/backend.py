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
counter once, and beat reloads its schedule on its next tick (every 5 s at most). What each row
holds, rendered and read back, is ``periodic_task_rows``; the schedule rows, ``schedule_rows``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask, PeriodicTasks
from prometheus_client.metrics_core import Metric

from orchestrator.bulk_copy import blank, copy_insert
from orchestrator.engines.base import (
    STARTUP_PREFIX,
    Desired,
    Health,
    LiveJob,
    Needs,
    backfill_headers,
    payload_from_definition,
)
from orchestrator.engines.celery import clock
from orchestrator.engines.celery import periodic_task_rows as rows
from orchestrator.engines.celery.beat import leader_count
from orchestrator.engines.celery.broker import check_broker
from orchestrator.engines.celery.delivery import check_fits
from orchestrator.engines.celery.fit import CeleryFit
from orchestrator.engines.celery.metrics import CeleryFamilies
from orchestrator.engines.celery.registered import RUN_KWARGS, check_run_kwargs
from orchestrator.engines.celery.runner import RUNNER_TASK
from orchestrator.engines.celery.schedule_rows import ScheduleRows
from orchestrator.schedules import EngineSchedule
from orchestrator.specs import JobSpec, Trigger

logger = logging.getLogger(__name__)


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
        return rows.live_jobs(self.engine, PeriodicTask.objects.values_list(*rows.LIVE_COLUMNS))

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

    def render(self, desired: Desired) -> Mapping[str, object] | None:
        return rows.render(desired)

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
        new_task = blank(PeriodicTask)
        tasks = [rows.fill(_named(new_task(), d.spec.name), d, schedules) for d in periodic]
        copy_insert(PeriodicTask, tasks)
        for task in tasks:
            created[task.name] = str(task.pk)
        self._changed = True
        logger.info("periodic tasks created", extra={"count": len(tasks)})
        return created

    def update(self, jobs: Sequence[tuple[str, Desired]]) -> None:
        periodic = [(i, d) for i, d in jobs if not i.startswith(STARTUP_PREFIX)]
        if not periodic:
            return
        schedules = ScheduleRows([d for _, d in periodic])
        existing = PeriodicTask.objects.in_bulk([int(i) for i, _ in periodic])
        tasks = []
        for engine_id, desired in periodic:
            task = existing[int(engine_id)]
            before = (task.crontab_id, task.interval_id, task.clocked_id)
            rows.fill(task, desired, schedules)
            if before != (task.crontab_id, task.interval_id, task.clocked_id):
                # A new schedule starts afresh: beat would otherwise count it from the old
                # one's last run, and disable a one-off that already ran once.
                task.last_run_at = None
                task.total_run_count = 0
                if before[2] is not None:
                    self._clocked.add(before[2])
            tasks.append(task)
        PeriodicTask.objects.bulk_update(
            tasks,
            [
                *rows.FIELDS, "args", "crontab", "interval", "clocked", "date_changed",
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
            headers=rows.time_limit_headers(
                timeout if isinstance(timeout, int) else None, definition.get("body")
            ),
            shadow=str(payload["name"]),
        )
        return str(result.id)

    def run_slot(self, definition: Mapping[str, object], queue: str | None, slot: datetime) -> str:
        timeout = definition.get("timeout")
        payload = payload_from_definition(definition)
        headers = rows.time_limit_headers(
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


def _named(task: PeriodicTask, name: str) -> PeriodicTask:
    task.name = name
    return task
