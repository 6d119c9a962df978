"""The pg_cron backend: jobs live in ``cron.job`` and change only through pg_cron's functions.

Every change goes through ``orchestrator_cron.schedule`` / ``alter_job`` / ``unschedule`` (never
direct writes to ``cron.job``), in bulk: one statement per kind of change, each value an array
parameter, so 5,000 jobs cost one round trip and a quote, ``$$`` or ``;--`` in a body is data,
never SQL. All of it runs in the caller's transaction, beside the Celery beat tables.

Those are SECURITY DEFINER wrappers a superuser installs (``scripts/jobs_role.sql``) around
pg_cron's functions, because pg_cron 1.4 lets only a superuser create a job that runs as another
role: every job the orchestrator schedules runs as the jobs role, never as the role applying the
manifest (which owns the database and could grant, schedule and alter it). Without them, nothing
is scheduled: ``JobsRoleMissing`` says how to install them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime

from celery import current_app
from django.conf import settings
from django.db import connection
from prometheus_client.metrics_core import Metric

from orchestrator.engines.base import (
    Desired,
    Health,
    LiveJob,
    Needs,
    backfill_headers,
    payload_from_definition,
)
from orchestrator.engines.pg_cron import clock, heartbeat
from orchestrator.engines.pg_cron.capabilities import Capabilities, read_capabilities
from orchestrator.engines.pg_cron.fit import PgCronFit
from orchestrator.engines.pg_cron.metrics import launcher_families
from orchestrator.engines.pg_cron.preflight import ensure_pg_cron
from orchestrator.engines.pg_cron.queries import query
from orchestrator.errors import JobsRoleMissing, OrchestratorError
from orchestrator.schedules import EngineSchedule
from orchestrator.specs import JobSpec, SqlBody, Trigger

logger = logging.getLogger(__name__)

RUNNER_TASK = "orchestrator.run_job"


class PgCronBackend:
    """pg_cron, in the application database (pg_cron's ``cron.database_name``)."""

    engine = "pg_cron"
    label = "pg_cron"

    def __init__(self) -> None:
        self._jobs_role: str | None = None

    # ------------------------------------------------------------------ judging
    def capabilities(self, needs: Needs) -> Capabilities:
        """pg_cron's version and settings, and the catalog facts the manifest's SQL needs."""
        return read_capabilities(
            connection,
            function_names=needs.function_names,
            database_names=dict(needs.database_names) or None,
        )

    def fitter(self, capabilities: object) -> PgCronFit:
        if not isinstance(capabilities, Capabilities):
            raise TypeError(f"pg_cron capabilities expected, got {type(capabilities).__name__}")
        return PgCronFit(capabilities)

    def health(self) -> Health:
        """pg_cron's launcher and its work (``heartbeat``)."""
        state = heartbeat.scheduler_state()
        return Health(
            engine=self.engine,
            label="pg_cron scheduler",
            state=state.state,
            healthy=state.healthy,
            detail=state.detail,
            facts={
                "launcher_pid": state.launcher_pid,
                "launcher_since": state.launcher_since,
                "last_start": state.last_start,
                "due_at": state.due_at,
            },
        )

    def ensure_ready(self) -> str:
        return f"pg_cron {ensure_pg_cron()} is installed"

    def import_runs(self) -> int:
        """Copy finished runs from ``cron.job_run_details`` (the upkeep job does it each minute;
        this is for a reader that wants them now). Idempotent by the importer's watermark."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT orchestrator_import_cron_runs()")
            row = cursor.fetchone()
        return int(row[0] or 0) if row else 0

    def metric_families(self) -> Iterable[Metric]:
        """Is pg_cron's launcher process alive (its runs are in the shared counters)?"""
        return launcher_families()

    # ------------------------------------------------------------------ reading
    def runs(
        self, trigger: Trigger, timezone: str, after: datetime, last_run: datetime | None = None
    ) -> Iterator[datetime]:
        return clock.runs(trigger, timezone, after, last_run)

    def schedule_of(self, trigger: Trigger, timezone: str) -> EngineSchedule | None:
        return clock.schedule_of(trigger, timezone)

    def live(self) -> dict[str, LiveJob]:
        with connection.cursor() as cursor:
            cursor.execute(query("live_jobs"))
            rows = cursor.fetchall()
        jobs: dict[str, LiveJob] = {}
        for jobid, jobname, schedule, command, database, username, active in rows:
            name = jobname or f"#{jobid}"
            jobs[name] = LiveJob(
                engine=self.engine,
                engine_id=str(jobid),
                name=name,
                active=bool(active),
                state={
                    "schedule": schedule,
                    "command": command,
                    "database": database,
                    "username": username,
                },
            )
        return jobs

    def problems(self, spec: JobSpec) -> list[tuple[str, str]]:
        """The classifier already sends pg_cron only what it runs exactly."""
        return []

    def render(self, desired: Desired) -> Mapping[str, object]:
        return {
            "schedule": self._schedule(desired),
            "command": self._command(desired),
            "database": self._database(desired),
            "username": self.jobs_role(),
        }

    # ------------------------------------------------------------------ changing
    def create(self, jobs: Sequence[Desired]) -> dict[str, str]:
        if not jobs:
            return {}
        self.jobs_role()
        with connection.cursor() as cursor:
            cursor.execute(query("schedule_many"), self._columns(jobs, [d.spec.name for d in jobs]))
            created = {name: str(jobid) for name, jobid in cursor.fetchall()}
        logger.info("pg_cron jobs scheduled", extra={"count": len(created)})
        return created

    def update(self, jobs: Sequence[tuple[str, Desired]]) -> None:
        if not jobs:
            return
        ids = [int(engine_id) for engine_id, _ in jobs]
        self.jobs_role()
        with connection.cursor() as cursor:
            cursor.execute(query("alter_many"), self._columns([d for _, d in jobs], ids))
        logger.info("pg_cron jobs altered", extra={"count": len(jobs)})

    def delete(self, engine_ids: Sequence[str]) -> None:
        if not engine_ids:
            return
        self.jobs_role()
        with connection.cursor() as cursor:
            cursor.execute(query("unschedule_many"), [[int(i) for i in engine_ids]])
        logger.info("pg_cron jobs unscheduled", extra={"count": len(engine_ids)})

    def set_active(self, engine_id: str, active: bool) -> None:
        self.jobs_role()
        with connection.cursor() as cursor:
            cursor.execute(query("set_active"), [int(engine_id), active])

    def run_now(
        self,
        definition: Mapping[str, object],
        queue: str | None,
        kwargs: Mapping[str, object] | None = None,
    ) -> str:
        """pg_cron 1.4 cannot start a job out of schedule, so a run-now goes to a Celery
        worker's runner, which executes the same SQL in the same database right away. The
        message names the job; the runner reads its SQL from the registry. A pg_cron job is
        SQL: it takes no keyword arguments."""
        if kwargs is not None:
            raise OrchestratorError(
                "keyword arguments apply to task jobs only; this job's body is SQL",
                job=str(definition.get("name")),
            )
        payload = payload_from_definition(definition)
        result = current_app.send_task(
            RUNNER_TASK,
            kwargs=payload,
            queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE,
            shadow=str(payload["name"]),
        )
        return str(result.id)

    def run_slot(self, definition: Mapping[str, object], queue: str | None, slot: datetime) -> str:
        """pg_cron cannot run a past slot either: a backfill run goes to the runner, like
        run-now, carrying its slot."""
        payload = payload_from_definition(definition)
        result = current_app.send_task(
            RUNNER_TASK,
            kwargs=payload,
            queue=queue or settings.CELERY_TASK_DEFAULT_QUEUE,
            headers=backfill_headers(slot),
            shadow=str(payload["name"]),
        )
        return str(result.id)

    def finish(self) -> None:
        """pg_cron notices changes to cron.job by itself (a trigger invalidates its cache)."""

    # ------------------------------------------------------------------ rendering
    def _columns(self, jobs: Sequence[Desired], keys: list) -> list[list]:
        return [
            keys,
            [self._schedule(d) for d in jobs],
            [self._command(d) for d in jobs],
            [self._database(d) for d in jobs],
            [d.active for d in jobs],
        ]

    @staticmethod
    def _schedule(desired: Desired) -> str:
        if desired.schedule.cron is None:
            raise ValueError(f"job {desired.spec.name!r} has no cron schedule for pg_cron")
        return desired.schedule.cron

    @staticmethod
    def _command(desired: Desired) -> str:
        body = desired.spec.body
        if not isinstance(body, SqlBody):
            raise ValueError(f"job {desired.spec.name!r} has no SQL body for pg_cron")
        return body.sql

    @staticmethod
    def _database(desired: Desired) -> str:
        return str(settings.DATABASES[desired.spec.database]["NAME"])

    def jobs_role(self) -> str:
        """The role every pg_cron job the orchestrator schedules runs as (read once)."""
        if self._jobs_role is None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_catalog.to_regclass('orchestrator_cron.roles')")
                if cursor.fetchone()[0] is None:
                    raise JobsRoleMissing()
                cursor.execute("SELECT jobs FROM orchestrator_cron.roles")
                row = cursor.fetchone()
            if row is None:
                raise JobsRoleMissing()
            self._jobs_role = str(row[0])
        return self._jobs_role
