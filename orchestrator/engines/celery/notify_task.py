"""Celery's side of ``notify``: noticing events in run history, and the delivery task.

The run signals (``history``) and beat's missed slots (``beat_send``) call ``report`` /
``report_recovery`` right after they record a run's outcome. Those only look the job's
``notify`` up (one indexed read, nothing for a job without one) and publish
``orchestrator.notify`` (JSON: the event only) to the job's queue; the run's own task is
never held up by a mail server or a slow webhook. The delivery task reads whom to tell from
the registry (``orchestrator.notify``) and retries a webhook that did not take it with
exponential backoff (2, 4, 8 ... s, ``ORCHESTRATOR_NOTIFY_ATTEMPTS`` attempts).

Everything Django is imported lazily: ``history`` imports this module before Django is set up.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, current_app, shared_task
from kombu.exceptions import KombuError

logger = logging.getLogger(__name__)

NOTIFY_TASK = "orchestrator.notify"
MISSED_CHECK_TASK = "orchestrator.check_missed_runs"


@shared_task(bind=True, name=NOTIFY_TASK, acks_late=True, max_retries=None)
def notify_job(self: Task, **event: Any) -> list[str]:
    """Deliver one event of one job on the channels its applied manifest names."""
    from django.conf import settings

    from orchestrator.notify import DeliveryFailed, Event, deliver, give_up

    found = Event.of(event)
    try:
        return deliver(found)
    except DeliveryFailed as failed:
        if self.request.retries + 1 >= settings.ORCHESTRATOR_NOTIFY_ATTEMPTS:
            give_up(found, str(failed))
            return []
        raise self.retry(countdown=2 ** (self.request.retries + 1), exc=failed) from failed


@shared_task(name=MISSED_CHECK_TASK)
def check_missed_runs() -> int:
    """The upkeep job ``orchestrator.missed-run-check``: each slot the status model counts as
    missed, for a job whose ``notify`` asks for ``missed``, queued as an ``orchestrator.notify``
    delivery (with its retries) on the job's queue."""
    from orchestrator.missed_notify import check_missed
    from orchestrator.notify import Event

    def queue(event: Event) -> None:
        report(event.job, event.event, event.run_id, event.status, event.message, event.at)

    return check_missed(send=queue)


def report(
    job: str | None, event: str, run_id: str, status: str, message: str, at: str = ""
) -> None:
    """Queue the delivery of ``event`` when the job asks for it; never raises (history's
    handlers must not break a run). ``at`` defaults to now."""
    if not job:
        return
    from django.db import DatabaseError
    from django.utils import timezone

    from orchestrator.models import ManagedJob
    from orchestrator.notify import Event, wanted

    try:
        if not wanted(job, event):
            return
        queue = ManagedJob.objects.filter(name=job).values_list("definition__queue", flat=True)
        chosen = queue.first()
        found = Event(
            job=job,
            event=event,
            run_id=run_id,
            status=status,
            message=message,
            at=at or timezone.now().isoformat(),
        )
        current_app.send_task(
            NOTIFY_TASK,
            kwargs=found.payload(),
            queue=chosen if isinstance(chosen, str) and chosen else None,
        )
    # A broker or database hiccup must not fail the run that is being recorded; it is
    # logged with the job and event so an operator sees a notification went missing.
    except (DatabaseError, OSError, KombuError) as error:
        logger.error(
            "notification not queued",
            extra={"job": job, "event": event, "run_id": run_id, "error": str(error)},
        )


def report_recovery(job: str | None, run_id: str) -> None:
    """After a success: ``recovered`` when the job's previous finished run failed for good."""
    if not job:
        return
    from django.db import DatabaseError

    from orchestrator.models import JobRun, RunStatus
    from orchestrator.notify import wanted

    try:
        if not wanted(job, "recovered"):
            return
        previous = (
            JobRun.objects.filter(
                job=job,
                finished__isnull=False,
                status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED_FINAL, RunStatus.FAILED],
            )
            .exclude(engine_run_id=run_id)
            .order_by("-finished", "-id")
            .values_list("status", "engine_run_id")
            .first()
        )
    except DatabaseError as error:
        logger.error("recovery not checked", extra={"job": job, "error": str(error)})
        return
    if previous is not None and previous[0] == RunStatus.FAILED_FINAL:
        report(
            job,
            "recovered",
            run_id,
            "succeeded",
            f"first success since run {previous[1]} failed for good",
        )
