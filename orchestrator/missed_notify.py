"""Missed slots as ``missed`` notifications: the check the ``orchestrator.missed-run-check``
upkeep job runs.

Beat reports a slot it claimed but could not send (``beat_send``), but a slot in which nothing
ran at all (beat or pg_cron down, a worker fleet gone) has nobody to report it: no engine
noticed. The status model does count it (``orchestrator.missed``, each engine's own reading of
the schedule, only while the job was meant to run), so this check asks the status model, the
same number every view shows, and turns each missed slot into one ``missed`` event.

Once per slot: the event's ``run_id`` is derived from the slot instant and the ledger is unique
per (job, event, run_id, channel), so a second check finds the slot's rows and sends nothing.
A slot beat claimed and could not send (a ``missed`` history row within ``EARLY`` of it) was
told by beat already and is skipped.
Bounded: the look-back is the status model's (``missed.WINDOW``, 24 h, never before the job's
last apply or resume), and at most ``ORCHESTRATOR_NOTIFY_MAX`` new slots per job per check are
handed on (more would only be recorded ``suppressed`` by the rate limit in this check; the rest
are taken up by the following checks, newest first).

Engine-free: the caller chooses how an event is sent. The default delivers in-process (a
webhook that did not take it stays ``pending`` in the ledger and the next check sends it
again); the Celery task queues ``orchestrator.notify`` instead, with its retries.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone

from orchestrator.missed import EARLY, WINDOW_LABEL
from orchestrator.models import JobRun, ManagedJob, Notification, RunStatus
from orchestrator.notify import PENDING, DeliveryFailed, Event, deliver
from orchestrator.status import job_statuses

logger = logging.getLogger(__name__)

EVENT = "missed"
#: run ids of status-model slots start with this (beat's own missed slots use ``missed:``)
RUN_PREFIX = "slot:"


def slot_run_id(instant: datetime) -> str:
    """The ledger's run id of a missed slot: the instant in UTC to the second (the ledger's
    key already holds the job, so job and instant together name the slot)."""
    return RUN_PREFIX + instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver_now(event: Event) -> None:
    """Deliver in-process; what was not taken is left ``pending`` for the next check."""
    try:
        deliver(event)
    # A refused webhook, or a mail server that is down (smtplib's errors are OSErrors, and
    # notify does not catch them): the row stays pending, the next check sends it again, and
    # the other jobs' slots in this check are still sent.
    except (DeliveryFailed, OSError) as failed:
        logger.warning(
            "missed-run notification not taken; the next check retries it",
            extra={"job": event.job, "run_id": event.run_id, "error": str(failed)},
        )


def missed_events(*, now: datetime | None = None) -> list[Event]:
    """The ``missed`` events still to send: one per slot the status model counts as missed,
    for each job whose applied ``notify`` asks for ``missed``, at most
    ``ORCHESTRATOR_NOTIFY_MAX`` per job, newest first."""
    rows = ManagedJob.objects.filter(definition__notify__on__contains=[EVENT])
    limit = max(int(settings.ORCHESTRATOR_NOTIFY_MAX), 1)
    events = []
    for found in job_statuses(rows, now=now):
        if found.missed is None or not found.missed.instants:
            continue
        name = found.name
        instants = found.missed.instants
        done = set(
            Notification.objects.filter(job=name, event=EVENT, run_id__startswith=RUN_PREFIX)
            .exclude(status=PENDING)
            .values_list("run_id", flat=True)
        )
        told_by_beat = list(
            JobRun.objects.filter(
                job=name,
                status=RunStatus.MISSED,
                scheduled_for__gte=min(instants) - EARLY,
                scheduled_for__lte=max(instants) + EARLY,
            ).values_list("scheduled_for", flat=True)
        )
        chosen = 0
        for instant in instants:
            if chosen >= limit:
                break
            run_id = slot_run_id(instant)
            if run_id in done or any(abs(slot - instant) <= EARLY for slot in told_by_beat):
                continue
            events.append(
                Event(
                    job=name,
                    event=EVENT,
                    run_id=run_id,
                    status="missed",
                    message=(
                        f"nothing ran in the slot at {instant.isoformat()} "
                        f"({found.job.engine} was meant to run it); {found.missed.missed} "
                        f"missed in the last {WINDOW_LABEL}"
                    ),
                    at=instant.isoformat(),
                )
            )
            chosen += 1
    return events


def check_missed(
    *, now: datetime | None = None, send: Callable[[Event], None] = deliver_now
) -> int:
    """Send each missed slot's event still unsent; returns how many were handed on."""
    events = missed_events(now=now or timezone.now())
    for event in events:
        send(event)
    if events:
        logger.info("missed-run notifications", extra={"count": len(events)})
    return len(events)
