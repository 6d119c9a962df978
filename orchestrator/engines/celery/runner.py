"""``orchestrator.run_job``: the one task every Celery-placed job runs through.

A run message carries only the job's *name* (``engines.base.payload_from_definition``): beat's
schedule rows, run-now and startup runs alike. The runner reads the job's definition from the
orchestrator's registry (``registered``), so only the manifest ever defines what runs; a message
naming no managed job is refused, recorded in history, and runs nothing.

One runner gives every body kind the manifest's semantics: ``retries`` (with exponential
backoff), ``timeout`` (the message's time limit, plus ``statement_timeout`` for SQL and a kill
of the whole process group for commands), and ``overlap`` (skip, buffer_one, cancel_other:
session advisory locks per job, which the server drops by itself if the worker dies; see
``overlap``). A run cannot outlive its worker: a
command's program is killed with it (``child_process``), and a SQL statement left behind by a
dead worker is aborted by the server or terminated before the redelivery runs (``run_session``).
"""

from __future__ import annotations

import dataclasses
import logging
import subprocess
from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

from orchestrator.engines.celery.child_process import run_supervised
from orchestrator.engines.celery.libpq import Target, client_environment
from orchestrator.engines.celery.overlap import cancel_sessions, overlap_guard, was_cancelled
from orchestrator.engines.celery.registered import (
    RUN_KWARGS,
    JobRefused,
    RunArgumentsInvalid,
    RunDefinition,
    check_run_kwargs,
    ignored_fields,
    registered_definition,
)
from orchestrator.engines.celery.run_session import (
    run_session,
    run_tag,
    settle_lost_delivery,
    tag_session,
)

logger = logging.getLogger(__name__)

#: the name every managed periodic task and run-now sends; spelled only here
RUNNER_TASK = "orchestrator.run_job"

OUTPUT_LIMIT = 4000


class JobFailed(Exception):
    """A job's body failed; the message says how."""


def job_shadow_name(task: Task, args: Any, kwargs: Mapping[str, Any] | None, options: Any) -> Any:
    """Celery's ``shadow_name``: every run shows under its job's name in Celery's own tools
    (worker logs, events, Flower), though all of them run through this one task."""
    name = (kwargs or {}).get("name")
    return str(name) if isinstance(name, str) and name else None


@shared_task(
    bind=True,
    name=RUNNER_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    shadow_name=job_shadow_name,
)
def run_job(self: Task, name: str, **message: Any) -> dict[str, Any]:
    """Run the registered definition of job ``name`` once; retry it as its manifest says.

    ``message`` holds whatever else the message carried (the pre-registry row shape put the
    whole body there, and a tampered row might): it is never executed, only reported.
    """
    request = self.request
    headers = request.headers or {}
    attempt = request.retries + 1
    extra = {"job": name, "attempt": attempt, "task_id": request.id}
    run_kwargs = message.pop(RUN_KWARGS, None)
    if message:
        logger.warning(
            "run message carries fields besides the job's name; ignored, the registry's "
            "definition runs",
            extra={**extra, "ignored": ignored_fields(message)},
        )
    periodic = headers.get("periodic_task_name")
    try:
        definition = registered_definition(name, periodic if isinstance(periodic, str) else None)
    except JobRefused as refused:
        # Raised on, so Celery and run history record the failure with this message.
        logger.error("run refused, nothing run: %s", refused, extra=extra)
        raise
    if run_kwargs is not None:
        definition = _with_run_kwargs(self, definition, run_kwargs, periodic, extra)
    if definition.max_runs and periodic and runs_so_far(name, request.id) >= definition.max_runs:
        retire(name)
        logger.info("run skipped: max_runs reached; schedule disabled", extra=extra)
        return {
            "job": name,
            "status": "skipped",
            "output": f"max_runs {definition.max_runs} reached",
        }
    tag = run_tag(request.id, attempt)
    with run_session(definition.database, tag):
        kind = str(definition.body.get("kind"))
        settle_lost_delivery(session_connections(definition), tag, request.id, attempt, kind)
        return _run_guarded(self, definition, tag, extra)


def _with_run_kwargs(
    task: Task, definition: RunDefinition, run_kwargs: object, periodic: object, extra: dict
) -> RunDefinition:
    """A manual run's keyword arguments laid over the registered ones, checked again here
    against the registered task (the message may be forged); a scheduled run never takes any
    (its row is the manifest's)."""
    if periodic:
        logger.warning("a scheduled run's message carries run arguments; ignored", extra=extra)
        return definition
    try:
        merged = check_run_kwargs(
            task.app, definition.body, definition.args, definition.kwargs, run_kwargs
        )
    except RunArgumentsInvalid as invalid:
        logger.error("run refused, nothing run: %s", invalid, extra=extra)
        raise JobRefused(invalid.message, job=definition.name) from invalid
    return dataclasses.replace(definition, kwargs=merged)


def _run_guarded(
    task: Task, definition: RunDefinition, tag: str, extra: dict[str, Any]
) -> dict[str, Any]:
    name = definition.name
    request = task.request
    attempt = request.retries + 1

    def cancel(task_id: str, other_attempt: int) -> None:
        # A statement or lock wait of the other run ends with a cancel on its sessions; a task
        # or a program may be outside the database: its worker process is terminated.
        cancel_sessions(session_connections(definition), task_id, other_attempt)
        if definition.body.get("kind") != "sql":
            task.app.control.revoke(task_id, terminate=True, signal="SIGTERM")

    try:
        with overlap_guard(
            name, definition.overlap, definition.database, task_id=request.id, cancel=cancel
        ) as admission:
            if not admission.run:
                logger.info("run skipped: %s", admission.reason, extra=extra)
                return {"job": name, "status": "skipped", "output": admission.reason}
            output = execute(task, definition, tag)
    # A body may raise anything, and the manifest's retries apply to all of it; what is not
    # retried is re-raised unchanged, so Celery records the real failure.
    except Exception as error:
        if was_cancelled(request.id, attempt):
            logger.info("run cancelled by a newer run (cancel_other)", extra=extra)
            return {"job": name, "status": "cancelled", "output": str(error)[:OUTPUT_LIMIT]}
        retries = definition.retries
        if retries and request.retries < int(retries.get("max", 0)):
            countdown = int(retries.get("backoff", 0)) * 2**request.retries
            logger.warning(
                "run failed; retrying", extra={**extra, "countdown": countdown}, exc_info=True
            )
            raise task.retry(exc=error, countdown=countdown, max_retries=retries["max"]) from error
        raise
    logger.info("run succeeded", extra=extra)
    return {"job": name, "status": "succeeded", "output": output}


def execute(task: Task, definition: RunDefinition, tag: str) -> Any:
    body, database, timeout = definition.body, definition.database, definition.timeout
    kind = body.get("kind")
    if kind == "sql":
        return run_sql(str(body["sql"]), database, timeout, tag)
    if kind == "task":
        target = task.app.tasks[str(body["task"])]
        result = target(*definition.args, **definition.kwargs)
        json_like = isinstance(result, str | int | float | bool | dict | list | None)
        return result if json_like else repr(result)
    if kind == "command":
        return run_command([str(part) for part in body["argv"]], database, timeout)
    raise JobFailed(f"unknown body kind {kind!r}")


def sql_connection(database: str) -> BaseDatabaseWrapper:
    """The connection a job's SQL runs on: the jobs role's, never the owner's.

    A job's SQL logs in as the jobs role (``settings.ORCHESTRATOR_JOBS_CONNECTIONS``: the
    ``default`` database's is ``JOBS_DATABASE_URL``) rather than switching to it with
    ``SET ROLE``, which the SQL itself could ``RESET``. A database without such a connection
    fails the job instead of running it with the owner's privileges.
    """
    alias = settings.ORCHESTRATOR_JOBS_CONNECTIONS.get(database)
    if alias is None:
        raise JobFailed(
            f"no jobs role connection for database {database!r}: set JOBS_DATABASE_URL "
            "(README, Security); SQL jobs never run as the role that owns the database"
        )
    return connections[alias]


def session_connections(definition: RunDefinition) -> list[BaseDatabaseWrapper]:
    """The database sessions a run of this job uses: its database's (the overlap lock, task
    bodies) and, for SQL, the jobs role's (``sql_connection``)."""
    found = [connections[definition.database]]
    # Without a jobs role connection the run fails in ``run_sql``, saying so; nothing to end.
    if definition.body.get("kind") == "sql":
        with suppress(JobFailed):
            found.append(sql_connection(definition.database))
    return found


def run_sql(sql: str, database: str, timeout: int | None, tag: str | None = None) -> str:
    """Run the SQL as written, as pg_cron would: one simple-protocol command in autocommit, so
    several statements run as one implicit transaction and VACUUM may stand alone.

    The session carries the run's tag (``run_session``): if this worker dies, the server aborts
    the statement, and a redelivery terminates it if it is still there."""
    connection = sql_connection(database)
    try:
        with connection.cursor() as cursor:
            if tag:
                tag_session(cursor, tag)
            if timeout:
                cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{timeout}s"])
            cursor.execute(sql)
            status = cursor.cursor.statusmessage or ""
            if timeout:
                cursor.execute("RESET statement_timeout")
    except BaseException:
        # A failed, cancelled or interrupted statement may leave the session mid-command or
        # with our statement_timeout set: never hand it to the next job.
        connection.close()
        raise
    return status


def run_command(argv: list[str], database: str, timeout: int | None) -> str:
    """Run a program without a shell, with the database's connection in libpq's environment.

    The password reaches libpq through a 0600 PGPASSFILE in a private folder, never argv or a
    PGPASSWORD variable that ``ps e`` would show (``libpq``). The program dies with this worker
    process and, on a timeout, with its whole process group (``child_process``).
    """
    with client_environment(Target.from_alias(database), application=f"job:{argv[0]}") as env:
        try:
            done = run_supervised(argv, env, timeout)
        except FileNotFoundError as error:
            raise JobFailed(f"program not found: {argv[0]}") from error
        except subprocess.TimeoutExpired as error:
            raise JobFailed(f"{argv[0]} ran longer than its timeout of {timeout} s") from error
    output = (done.stdout + done.stderr)[-OUTPUT_LIMIT:]
    if done.returncode != 0:
        raise JobFailed(f"{argv[0]} exited with {done.returncode}: {output.strip()}")
    return output


def runs_so_far(name: str, current: str | None) -> int:
    """How many scheduled runs of the job have started before this one (run history)."""
    from orchestrator.models import JobRun

    earlier = JobRun.objects.filter(job=name, manual=False).exclude(engine_run_id=current or "")
    return earlier.values("engine_run_id").distinct().count()


def retire(name: str) -> None:
    """Disable the job's periodic task: it has run ``max_runs`` times. Every view then shows
    it as ``retired`` (``orchestrator.status``), and plans leave it off, never as drift."""
    from django_celery_beat.models import PeriodicTask, PeriodicTasks

    if PeriodicTask.objects.filter(name=name, enabled=True).update(enabled=False):
        PeriodicTasks.update_changed()
