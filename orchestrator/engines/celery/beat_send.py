"""Sending a claimed beat slot, through a broker outage.

The leader claims a slot in the database *before* it sends (``beat``: the claim is the fence), so
no other beat will ever send that slot. Stock beat logs ``Couldn't apply scheduled task`` when the
broker refuses the message and moves on: the claimed slot was lost for good, with nothing in run
history. Here a send that fails is kept and retried with bounded backoff, while this process is
still the leader and while the slot still means something:

- until the schedule's next slot, which supersedes it (Celery's own catch-up policy: missed
  slots collapse into the latest one), and
- at most ``MAX_WAIT`` after the slot's instant (a daily job is not sent hours late).

A slot that cannot be sent in that time, or that this process can no longer send (it lost the
leadership, or stopped), is recorded in run history as ``missed`` with the reason, so an operator
sees it next to the job's runs (and missed-run counting still counts it: it is no run).

Each message carries ``expires``: its slot's end, the next slot (``slot_expiry``), so a stale
message is dropped on delivery (recorded ``skipped``, "expired before it ran") instead of
running late, one after another, when a drained worker resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.result import denied_join_result
from django.db import DatabaseError, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

#: the longest a claimed slot is kept for a late send after its instant
MAX_WAIT = timedelta(minutes=15)
#: seconds before the first retry, doubled each time up to ``MAX_BACKOFF``
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 10.0
#: the history row's message is cut here
MESSAGE_LIMIT = 4000


@dataclass(kw_only=True, slots=True)
class PendingSlot:
    """A claimed slot whose message the broker has not taken yet: everything needed to send
    it later, frozen at claim time (the entry itself moves on to its next slot)."""

    task_id: int
    name: str
    task: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    slot: datetime
    deadline: datetime
    attempts: int = 0
    error: str = ""
    next_try: float = 0.0
    backoff: float = FIRST_BACKOFF
    first_failure: datetime = field(default_factory=timezone.now)


def _periodic_task_id(entry: Any) -> int:
    """The periodic task's id: ``DueEntry.task_id``, or django-celery-beat's ``entry.model``."""
    task_id = getattr(entry, "task_id", None)
    return int(task_id if task_id is not None else entry.model.pk)


def _next_slot(entry: Any, slot: datetime) -> datetime | None:
    """The schedule's slot after ``slot``, read on the schedule's own clock
    (``now() + remaining_estimate``) as beat itself reads it; None when there is none."""
    schedule = entry.schedule
    try:
        following = schedule.now() + schedule.remaining_estimate(slot)
    except (AttributeError, TypeError, ValueError):  # a schedule with no estimate (solar edge)
        return None
    return following if following > slot else None


def _deadline(entry: Any, slot: datetime) -> datetime:
    """When the slot stops meaning anything for a late send: its schedule's next slot, within
    ``MAX_WAIT``."""
    latest = slot + MAX_WAIT
    following = _next_slot(entry, slot)
    return latest if following is None else min(latest, following)


def slot_expiry(entry: Any, slot: datetime, options: dict[str, Any]) -> datetime | None:
    """The ``expires`` a slot's message carries: the next slot (at least one period after it
    is sent), when the slot has passed.

    A worker drops a message whose ``expires`` has passed on delivery (Celery revokes it as
    expired; history records it ``skipped``), so a worker resumed after a drain, or a queue
    that backed up, runs at most one run per job: the newest slot's, while it is still the
    newest. Older ones would only repeat it. A one-time (clocked) or startup slot has no
    next slot and never expires this way; a task's own ``expires`` (the manifest's
    ``expires``) is kept when it is earlier.
    """
    ends = _next_slot(entry, slot)
    if ends is not None:
        # A slot sent late on purpose (catch_up: all sends each missed slot now) is not stale
        # yet: it has one period from its send, like a slot sent on time.
        ends = max(ends, timezone.now() + (ends - slot))
    own = options.get("expires")
    if isinstance(own, int | float) and not isinstance(own, bool):
        own = timezone.now() + timedelta(seconds=own)
    if isinstance(own, datetime):
        return own if ends is None else min(own, ends)
    return ends


def _slot_options(entry: Any, slot: datetime) -> dict[str, Any]:
    options = {**entry.options, "headers": dict(entry.options.get("headers") or {})}
    expires = slot_expiry(entry, slot, options)
    if expires is not None:
        options["expires"] = expires
    return options


class ClaimedSlots:
    """The leader's claimed slots not yet taken by the broker, and their sending.

    Messages go out through the scheduler's own ``apply_async(entry, producer, advance=False)``
    (Celery's seam, which raises ``SchedulingError`` when the broker refuses); a retry passes
    the frozen ``PendingSlot``, which carries the same attributes as an entry.
    """

    def __init__(self, scheduler: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self.pending: dict[int, PendingSlot] = {}

    # ------------------------------------------------------------------ sending
    def send(self, entry: Any, slot: datetime, producer: Any = None) -> bool:
        """Send the entry's claimed ``slot`` now (``entry.options`` already carry its
        headers); keep it for a retry if the broker refuses. Returns whether it was sent."""
        pending = PendingSlot(
            task_id=_periodic_task_id(entry),
            name=str(entry.name),
            task=str(entry.task),
            args=tuple(entry.args or ()),
            kwargs=dict(entry.kwargs or {}),
            options=_slot_options(entry, slot),
            slot=slot,
            deadline=_deadline(entry, slot),
        )
        older = self.pending.pop(pending.task_id, None)
        if older is not None:
            self._missed(older, f"superseded by the next slot ({slot.isoformat()})")
        logger.info(
            "beat: sending due task", extra={"task": pending.name, "slot": slot.isoformat()}
        )
        if self._publish(pending, producer):
            return True
        self._keep(pending)
        logger.warning(
            "beat: the broker refused the claimed slot %s of %s (%s); retrying until %s",
            slot.isoformat(),
            pending.name,
            pending.error,
            pending.deadline.isoformat(),
            extra={
                "task": pending.name,
                "slot": slot.isoformat(),
                "until": pending.deadline.isoformat(),
                "error": pending.error,
            },
        )
        return False

    def retry_due(self) -> None:
        """Retry the pending slots whose backoff has passed; give up on those past their
        deadline. Called on every tick of the leader."""
        if not self.pending:
            return
        now, clock = timezone.now(), self.clock()
        for key, pending in list(self.pending.items()):
            if now > pending.deadline:
                del self.pending[key]
                self._missed(pending, "the broker did not take it before the slot passed")
            elif clock >= pending.next_try:
                if self._publish(pending, None):
                    del self.pending[key]
                    logger.warning(
                        "beat: claimed slot %s of %s sent late, after the broker came back",
                        pending.slot.isoformat(),
                        pending.name,
                        extra={
                            "task": pending.name,
                            "slot": pending.slot.isoformat(),
                            "attempts": pending.attempts,
                            "late_by": (now - pending.slot).total_seconds(),
                        },
                    )
                else:
                    self._keep(pending)

    def next_retry_in(self, default: float) -> float:
        """Seconds until the earliest pending retry, at most ``default``."""
        if not self.pending:
            return default
        soonest = min(pending.next_try for pending in self.pending.values())
        return max(0.0, min(default, soonest - self.clock()))

    def abandon(self, reason: str) -> None:
        """This process can no longer send its pending slots (another beat will not: they
        are claimed): record each as missed."""
        pending, self.pending = list(self.pending.values()), {}
        for slot in pending:
            self._missed(slot, reason)

    # ------------------------------------------------------------------ inside
    def _keep(self, pending: PendingSlot) -> None:
        pending.next_try = self.clock() + pending.backoff
        pending.backoff = min(MAX_BACKOFF, pending.backoff * 2)
        self.pending[pending.task_id] = pending

    def _publish(self, pending: PendingSlot, producer: Any) -> bool:
        pending.attempts += 1
        try:
            # Beat never waits for a result, so it must not subscribe to one: with the Redis
            # result backend that subscription retries for ~20 s per send while Redis is down,
            # freezing every tick (and the leader's lock checks) with it.
            with denied_join_result():
                self.scheduler.apply_async(pending, producer=producer, advance=False)
        # A refused publish surfaces as the transport's own error (kombu wraps most, not all,
        # in OperationalError; beat wraps it in SchedulingError); whatever it is, the claimed
        # slot is kept or recorded, never dropped in silence, and beat goes on ticking.
        except Exception as error:  # noqa: BLE001 - see above
            cause = error.__cause__ or error
            pending.error = f"{type(cause).__name__}: {cause}"
            return False
        return True

    @staticmethod
    def _missed(pending: PendingSlot, reason: str) -> None:
        message = (
            f"missed: slot {pending.slot.isoformat()} was claimed but never sent; {reason}; "
            f"{pending.attempts} send attempt(s) since {pending.first_failure.isoformat()}, "
            f"last error: {pending.error or 'none'}"
        )[:MESSAGE_LIMIT]
        logger.error("beat: claimed slot of %s missed: %s", pending.name, message)
        job = _job_of(pending)
        if job is not None:
            record_missed(job, pending.task_id, pending.slot, message)


def _job_of(pending: PendingSlot) -> str | None:
    """The managed job a slot runs (the runner's message names it), or None."""
    from orchestrator.engines.celery.runner import RUNNER_TASK

    name = pending.kwargs.get("name") if pending.task == RUNNER_TASK else None
    return str(name)[:63] if isinstance(name, str) and name else None


def record_missed(job: str, task_id: int, slot: datetime, message: str) -> None:
    """A ``missed`` history row for the slot (idempotent on the task and slot)."""
    from orchestrator.models import JobRun, RunStatus

    try:
        with transaction.atomic():
            JobRun.objects.bulk_create(
                [
                    JobRun(
                        job=job,
                        engine="celery",
                        engine_run_id=f"missed:{task_id}:{slot.isoformat()}"[:64],
                        status=RunStatus.MISSED,
                        manual=False,
                        scheduled_for=slot,
                        finished=timezone.now(),
                        message=message,
                    )
                ],
                ignore_conflicts=True,
            )
    except DatabaseError:
        logger.warning("missed slot not recorded in history", extra={"job": job}, exc_info=True)
        return
    from orchestrator.engines.celery.notify_task import report

    report(job, "missed", f"missed:{task_id}:{slot.isoformat()}"[:64], "missed", message)
