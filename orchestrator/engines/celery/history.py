"""Run history of Celery-placed jobs, written from Celery's own signals.

Every job run on Celery goes through ``orchestrator.run_job`` (beat's schedules and every
run-now), so one set of signal handlers records them all into ``orchestrator.models.JobRun``:

- ``before_task_publish`` (in beat, the web process, or the worker re-publishing a retry):
  a ``queued`` row for attempt ``retries + 1``; ``manual`` unless beat sent it (beat adds the
  ``periodic_task_name`` header);
- ``task_prerun`` (pool child): ``running``, with worker hostname and pid, and what the job's
  body is called with (``registered.body_call``: its registered args and kwargs, a command's
  argv, the SQL). If that attempt already has a ``running`` row, the worker that ran it died
  and the broker redelivered the message (``acks_late`` + ``reject_on_worker_lost``): the old
  row becomes ``lost`` and the redelivery gets its own row (``delivery + 1``);
- ``task_success``: ``succeeded``, ``skipped`` (the runner's overlap skip or buffer_one) or
  ``cancelled`` (overlap cancel_other: the newer run wrote it first), with output (a string as
  written, anything else as JSON: never a Python repr);
- ``task_retry``: ``retried``, with the error and its full traceback (``einfo``); the retry's
  own message was queued just before;
- ``task_failure``: ``failed_final`` ("failed for good") with the error and its full traceback:
  the runner re-raises only when no retry follows (hard time limits fire it from the parent
  process), or ``lost`` for a ``WorkerLostError`` that Celery did not requeue. Tracebacks are
  kept whole up to ``models.TRACEBACK_LIMIT`` characters, start and end beyond;
- ``task_revoked``: ``cancelled`` when terminated mid-run, ``skipped`` when revoked or expired
  before it ran (a beat message carries ``expires``: its slot's end, see beat_send).

A final failure, and the first success after one, are reported to the job's ``notify``
(``notify_task``: a task of its own delivers them, off the run's path).

Rows whose worker died with no redelivery are closed by the sweeper in ``lost_runs``.

History must never break a run: every write is in its own savepoint, and a database error is
logged, not raised. Handlers import Django models lazily, so importing this module (from
``tasks.tasks`` and the tasks app's ``ready``) is safe before Django is set up.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError
from celery.signals import (
    before_task_publish,
    task_failure,
    task_prerun,
    task_retry,
    task_revoked,
    task_success,
)
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from orchestrator.engines.celery.notify_task import report, report_recovery
from orchestrator.engines.celery.registered import RUN_KWARGS, body_call
from orchestrator.engines.celery.runner import RUNNER_TASK

logger = logging.getLogger(__name__)

MESSAGE_LIMIT = 4000


def _message(error: BaseException | str | None) -> str:
    if error is None:
        return ""
    if isinstance(error, TimeLimitExceeded):
        return f"hard time limit exceeded ({error.args[0] if error.args else '?'} s): killed"
    if isinstance(error, SoftTimeLimitExceeded):
        return "soft time limit exceeded"
    text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
    return text[:MESSAGE_LIMIT]


def _traceback(einfo: Any) -> str:
    """The formatted traceback of Celery's ``ExceptionInfo`` (chained causes included)."""
    text = getattr(einfo, "traceback", None)
    return text if isinstance(text, str) else ""


def _output(output: Any) -> str:
    """A run's output as text: a string as written, anything else as JSON."""
    if output in (None, ""):
        return ""
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return text[:MESSAGE_LIMIT]


def _job_name(kwargs: Mapping[str, Any] | None) -> str | None:
    name = (kwargs or {}).get("name")
    return str(name)[:63] if name else None


def _guarded(
    action: str, task_id: str | None, write: Callable[[], None], *, raise_conflict: bool = False
) -> None:
    """Run one history write in a savepoint; log (never raise) a database error. With
    ``raise_conflict``, an ``IntegrityError`` (a concurrent insert won) is raised, to retry."""
    try:
        with transaction.atomic():
            write()
    except DatabaseError as error:
        if raise_conflict and isinstance(error, IntegrityError):
            raise
        logger.warning(
            "run history not recorded", extra={"action": action, "task_id": task_id}, exc_info=True
        )


# --------------------------------------------------------------------------- publish


def on_publish(
    sender: str | None = None,
    body: Any = None,
    headers: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    """A ``queued`` row for the attempt this message carries."""
    if sender != RUNNER_TASK or not headers:
        return
    kwargs = body[1] if isinstance(body, list | tuple) and len(body) > 1 else {}
    name = _job_name(kwargs if isinstance(kwargs, Mapping) else None)
    task_id = headers.get("id")
    if name is None or not task_id:
        return
    attempt = int(headers.get("retries") or 0) + 1
    # Beat's claimed slot (``beat.SLOT_HEADER``) first: a slot sent late, after a broker
    # outage, still runs for its slot and fills it in missed-run counting.
    slot = headers.get("scheduled_at") or headers.get("eta")
    scheduled = parse_datetime(slot) if isinstance(slot, str) else None
    backfill = bool(headers.get("backfill"))  # engines.base.backfill_headers
    manual = "periodic_task_name" not in headers and not backfill

    def write() -> None:
        from orchestrator.models import JobRun, RunStatus

        previous = (
            JobRun.objects.filter(engine="celery", engine_run_id=task_id, attempt=attempt - 1)
            .values_list("manual", "backfill")
            .first()
        )
        JobRun.objects.bulk_create(
            [
                JobRun(
                    job=name,
                    engine="celery",
                    engine_run_id=task_id,
                    attempt=attempt,
                    status=RunStatus.QUEUED,
                    manual=manual if previous is None else previous[0],
                    backfill=backfill if previous is None else previous[1],
                    scheduled_for=scheduled or timezone.now(),
                )
            ],
            ignore_conflicts=True,
        )

    _guarded("publish", task_id, write)


# --------------------------------------------------------------------------- start


def on_prerun(
    task_id: str | None = None,
    task: Any = None,
    kwargs: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    """``running`` for this attempt; a previous delivery still ``running`` was lost."""
    if task is None or task.name != RUNNER_TASK or not task_id:
        return
    name = _job_name(kwargs)
    if name is None:
        return
    request = task.request
    attempt = int(request.retries or 0) + 1
    worker = str(request.hostname or "")[:255]
    # A manual run's own keyword arguments (``jobs run --kwargs``), laid over the job's as the
    # runner lays them; a scheduled run never takes any (the runner ignores them there too).
    given = (kwargs or {}).get(RUN_KWARGS)
    run_kwargs = None
    if isinstance(given, Mapping):
        headers = getattr(request, "headers", None) or {}
        run_kwargs = None if headers.get("periodic_task_name") else dict(given)

    def write() -> None:
        _start(name, task_id, attempt, worker, os.getpid(), run_kwargs)

    for _round in range(2):  # a concurrent first insert (the publisher's) wins once at most
        try:
            _guarded("start", task_id, write, raise_conflict=True)
            return
        except IntegrityError:
            continue


def _start(
    name: str,
    task_id: str,
    attempt: int,
    worker: str,
    pid: int,
    run_kwargs: dict[str, Any] | None = None,
) -> None:
    from orchestrator.models import JobRun, RunStatus

    now = timezone.now()
    args, kwargs = body_call(name)
    if run_kwargs is not None and kwargs is not None:
        kwargs = {**kwargs, **run_kwargs}
    latest = (
        JobRun.objects.select_for_update()
        .filter(engine="celery", engine_run_id=task_id, attempt=attempt)
        .order_by("-delivery")
        .first()
    )
    if latest is not None and latest.status == RunStatus.QUEUED:
        latest.status = RunStatus.RUNNING
        latest.started, latest.worker, latest.pid = now, worker, pid
        latest.args, latest.kwargs = args, kwargs
        latest.save(
            update_fields=["status", "started", "worker", "pid", "args", "kwargs", "updated_at"]
        )
        return
    delivery = 1
    manual = backfill = False
    scheduled = now
    if latest is not None:
        delivery = latest.delivery + 1
        manual, backfill = latest.manual, latest.backfill
        scheduled = latest.scheduled_for or now
        if latest.status == RunStatus.RUNNING:
            latest.status = RunStatus.LOST
            latest.finished = now
            latest.duration = now - latest.started if latest.started else None
            latest.message = (
                f"the worker running it ({latest.worker or '?'} pid {latest.pid}) died; "
                "the broker redelivered the message"
            )
            latest.save(update_fields=["status", "finished", "duration", "message", "updated_at"])
            logger.warning(
                "run lost with its worker; redelivered",
                extra={"job": name, "task_id": task_id, "attempt": attempt},
            )
    JobRun.objects.create(
        job=name,
        engine="celery",
        engine_run_id=task_id,
        attempt=attempt,
        delivery=delivery,
        status=RunStatus.RUNNING,
        manual=manual,
        backfill=backfill,
        scheduled_for=scheduled,
        started=now,
        worker=worker,
        pid=pid,
        args=args,
        kwargs=kwargs,
    )


# --------------------------------------------------------------------------- finish


def _finish(
    task_id: str | None,
    status: str,
    message: str,
    *,
    only_running: bool = True,
    traceback: str = "",
) -> None:
    """Close the latest open row of ``task_id`` (its current attempt and delivery)."""
    if not task_id:
        return

    def write() -> None:
        from orchestrator.models import JobRun, RunStatus, bounded_traceback

        open_states = [RunStatus.RUNNING] if only_running else [RunStatus.RUNNING, RunStatus.QUEUED]
        row = (
            JobRun.objects.select_for_update()
            .filter(engine="celery", engine_run_id=task_id, status__in=open_states)
            .order_by("-attempt", "-delivery")
            .first()
        )
        if row is None:
            return
        now = timezone.now()
        row.status, row.finished, row.message = status, now, message
        row.traceback = bounded_traceback(traceback)
        row.duration = now - row.started if row.started else None
        row.save(
            update_fields=["status", "finished", "duration", "message", "traceback", "updated_at"]
        )

    _guarded(status, task_id, write)


def on_success(sender: Any = None, result: Any = None, **_: Any) -> None:
    if sender is None or sender.name != RUNNER_TASK:
        return
    status = "succeeded"
    output: Any = result
    if isinstance(result, Mapping):
        status = str(result.get("status"))
        status = status if status in ("skipped", "cancelled") else "succeeded"
        output = result.get("output", "")
    _finish(sender.request.id, status, _output(output))
    if status == "succeeded":
        report_recovery(_job_name(sender.request.kwargs), str(sender.request.id))


def on_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    einfo: Any = None,
    kwargs: Mapping[str, Any] | None = None,
    **_: Any,
) -> None:
    if sender is None or sender.name != RUNNER_TASK:
        return
    if isinstance(exception, WorkerLostError):
        _finish(task_id, "lost", f"the worker running it died: {exception}")
        return
    message = _message(exception)
    _finish(task_id, "failed_final", message, traceback=_traceback(einfo))
    report(_job_name(kwargs), "failed_final", str(task_id), "failed_final", message)


def on_retry(request: Any = None, reason: Any = None, einfo: Any = None, **_: Any) -> None:
    if request is None or getattr(request, "task", None) != RUNNER_TASK:
        return
    cause = getattr(reason, "exc", None) or reason
    _finish(request.id, "retried", _message(cause), traceback=_traceback(einfo))


def on_revoked(
    request: Any = None,
    terminated: bool = False,
    signum: Any = None,
    expired: bool = False,
    **_: Any,
) -> None:
    # Celery passes a worker ``Request`` (``type`` is the task's real name; ``name`` is its
    # shadow, the job's name) or, for a message revoked or expired on delivery, the message's
    # ``Context`` (``task`` is the real name; it has no ``type``).
    if request is None:
        return
    kind = getattr(request, "type", None) or getattr(request, "task", None)
    if getattr(kind, "name", kind) != RUNNER_TASK:
        return
    if terminated:
        _finish(request.id, "cancelled", f"terminated by an operator (signal {signum})")
    elif expired:
        _finish(
            request.id,
            "skipped",
            "expired before it ran: its slot had passed when a worker took the message",
            only_running=False,
        )
    else:
        _finish(request.id, "skipped", "revoked before it ran", only_running=False)


def connect() -> None:
    """Connect the handlers (idempotent: each has a ``dispatch_uid``)."""
    before_task_publish.connect(on_publish, dispatch_uid="orchestrator.history.publish", weak=False)
    task_prerun.connect(on_prerun, dispatch_uid="orchestrator.history.prerun", weak=False)
    task_success.connect(on_success, dispatch_uid="orchestrator.history.success", weak=False)
    task_failure.connect(on_failure, dispatch_uid="orchestrator.history.failure", weak=False)
    task_retry.connect(on_retry, dispatch_uid="orchestrator.history.retry", weak=False)
    task_revoked.connect(on_revoked, dispatch_uid="orchestrator.history.revoked", weak=False)


connect()
