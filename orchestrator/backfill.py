"""Backfill: run the slots of a past window once each, on purpose.

``jobs backfill NAME --from T --to T`` asks the job's engine for its scheduled instants in the
window (``Backend.runs``: the instants that engine really uses, so a backfill fills exactly the
slots the schedule had), and runs each one that has not run, through the engine's
``run_slot`` (a runner message carrying the slot, recorded in history as a backfill run with
``scheduled_for`` set). Three promises:

* **Idempotent.** A slot with a run in history (any status but ``missed``) is not run again,
  and neither is a slot an earlier backfill took.
* **Once, even when two backfills race.** Each slot is taken by inserting a ``BackfillSlot``
  row (unique per job and slot, ``ON CONFLICT DO NOTHING``) and committing *before* its run
  is sent; a backfill whose insert found the row sends nothing for that slot.
* **Bounded.** A window of more than ``CONFIRM_ABOVE`` slots is refused unless the operator
  passes ``--limit N`` (the first N) or ``--yes`` (all, up to ``MAX_SLOTS``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from orchestrator.engines import backends
from orchestrator.engines.base import Backend
from orchestrator.errors import OrchestratorError, ServiceError
from orchestrator.models import BackfillSlot, JobRun, RunStatus
from orchestrator.operations import managed
from orchestrator.runs import import_engine_runs
from orchestrator.specs import Cron, Every
from orchestrator.stored import trigger_from

logger = logging.getLogger(__name__)

#: A window with more slots than this needs ``--limit`` or ``--yes``.
CONFIRM_ABOVE = 100
#: The most slots one backfill runs, ``--yes`` or not.
MAX_SLOTS = 10_000

_TAKE = """
INSERT INTO orchestrator_backfillslot (job, scheduled_for, run_id, requested_at)
SELECT %(job)s, slot, '', now() FROM unnest(%(slots)s::timestamptz[]) AS slot
ON CONFLICT (job, scheduled_for) DO NOTHING
RETURNING scheduled_for
"""


class BackfillRefused(OrchestratorError):
    """This backfill cannot run."""


@dataclass(frozen=True, slots=True)
class SlotOutcome:
    """What a backfill did with one slot: ``sent`` (with its run id), ``already run`` (history
    has a run of it) or ``taken`` (another backfill has it)."""

    slot: datetime
    status: str
    run_id: str = ""

    def as_json(self) -> dict[str, object]:
        return {"slot": self.slot.isoformat(), "status": self.status, "run_id": self.run_id}


def window_slots(name: str, start: datetime, end: datetime) -> list[datetime]:
    """The job's scheduled instants in ``[start, end]`` by its engine's reading (UTC, oldest
    first), at most ``MAX_SLOTS + 1`` (one more says the window is too large)."""
    row = managed(name)
    trigger = trigger_from(row.definition)
    if not isinstance(trigger, Cron | Every):
        raise BackfillRefused(
            "only a recurring schedule has slots to backfill; run a one-time or start-up job "
            "with `jobs run`",
            job=name,
        )
    if end <= start:
        raise BackfillRefused("--to must be after --from", job=name)
    if end > timezone.now():
        raise BackfillRefused(
            f"--to {end.isoformat()} is in the future; a backfill runs past slots only", job=name
        )
    tz = str(row.definition.get("timezone") or "UTC")
    found: list[datetime] = []
    instants = backends()[row.engine].runs(trigger, tz, start - timedelta(microseconds=1), None)
    for instant in instants:
        if instant > end or len(found) > MAX_SLOTS:
            break
        found.append(instant.astimezone(UTC))
    return found


def bounded(name: str, slots: list[datetime], limit: int | None, yes: bool) -> list[datetime]:
    """The slots this backfill may run: refuse a large window without ``--limit``/``--yes``."""
    if limit is not None:
        return slots[: min(limit, MAX_SLOTS)]
    if len(slots) > MAX_SLOTS:
        raise BackfillRefused(
            f"the window holds more than {MAX_SLOTS} slots; narrow it, or pass --limit N",
            job=name,
        )
    if len(slots) > CONFIRM_ABOVE and not yes:
        raise BackfillRefused(
            f"the window holds {len(slots)} slots (more than {CONFIRM_ABOVE}); pass --limit N "
            "to run the first N, or --yes to run them all",
            job=name,
        )
    return slots


def already_run(name: str, slots: Iterable[datetime]) -> set[datetime]:
    """The slots history has a run of (a ``missed`` row records that no run happened)."""
    return set(
        JobRun.objects.filter(job=name, scheduled_for__in=list(slots))
        .exclude(status=RunStatus.MISSED)
        .values_list("scheduled_for", flat=True)
    )


def take(name: str, slots: list[datetime]) -> set[datetime]:
    """Take the slots for this backfill, committed at once; returns those it got."""
    if not slots:
        return set()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_TAKE, {"job": name, "slots": slots})
        return {row[0] for row in cursor.fetchall()}


def backfill(
    name: str,
    start: datetime,
    end: datetime,
    *,
    limit: int | None = None,
    yes: bool = False,
    progress: Callable[[SlotOutcome, int, int], None] | None = None,
) -> list[SlotOutcome]:
    """Run each slot of the window that has not run; one outcome per slot, oldest first.

    ``progress(outcome, done, total)`` is called after each slot.
    """
    slots = bounded(name, window_slots(name, start, end), limit, yes)
    import_engine_runs()  # pg_cron's newest runs, so a slot it ran a moment ago counts as run
    ran = already_run(name, slots)
    got = take(name, [slot for slot in slots if slot not in ran])
    row = managed(name)
    queue = row.definition.get("queue")
    engine = backends()[row.engine]
    outcomes: list[SlotOutcome] = []
    for slot in slots:
        if slot in ran:
            outcome = SlotOutcome(slot, "already run")
        elif slot not in got:
            outcome = SlotOutcome(slot, "taken")
        else:
            outcome = SlotOutcome(slot, "sent", _send(engine, row.definition, queue, name, slot))
        outcomes.append(outcome)
        if progress is not None:
            progress(outcome, len(outcomes), len(slots))
    logger.info(
        "backfill done",
        extra={"job": name, "slots": len(slots), "sent": sum(o.status == "sent" for o in outcomes)},
    )
    return outcomes


def _send(
    engine: Backend, definition: Mapping[str, object], queue: object, name: str, slot: datetime
) -> str:
    try:
        run_id = engine.run_slot(definition, queue if isinstance(queue, str) else None, slot)
    # Reason: a broker refuses a message with many kinds of errors (kombu, redis, socket);
    # whichever it is, the slot was not sent, so it is given back for a later backfill and the
    # operator reads one sentence, not a traceback.
    except Exception as error:
        BackfillSlot.objects.filter(job=name, scheduled_for=slot).delete()
        raise ServiceError(
            f"the broker did not take the run of slot {slot.isoformat()}: {error}; "
            "slots sent before it stay sent, run the backfill again to go on",
            job=name,
        ) from error
    BackfillSlot.objects.filter(job=name, scheduled_for=slot).update(run_id=run_id)
    return run_id
