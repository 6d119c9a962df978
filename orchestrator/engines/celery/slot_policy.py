"""What our beat does with a job's slots: catch-up after downtime, jitter, clock-aligned intervals.

The manifest's ``catch_up``, ``catch_up_limit``, ``jitter`` and the one meaning of ``every`` reach
beat in the periodic task's ``headers``, under ``POLICY_HEADER`` (the backend renders it, so an
edit by hand shows as drift); ``DueScheduler`` reads it from the row it already selects. Stock
Celery has none of these: it collapses missed slots into one run, counts an interval from the
previous run and starts every job on its instant.

For a row with a policy, the scheduler asks this module, at dispatch time, which slots in
``(last_run_at, now - offset]`` to send:

* ``none``: only the latest slot, and only if it is on time (within ``grace`` of its start);
  missed ones are not sent;
* ``one`` (and unset, Celery's own): the latest slot, once, however late;
* ``all``: every missed slot, the latest ``limit`` of them, oldest first.

Slots of a crontab are croniter's, on the spelled-out fields Celery gets (``reading``: the two
read alike, daylight-saving days aside), or on the policy's own expression when it uses
croniter's L, W or # (which Celery's crontab cannot read: the row holds a superset); slots of
an interval are the multiples of its length since the Unix epoch. ``jitter`` is a fixed offset
per job (``schedules.jitter_offset``): each slot is due ``offset`` seconds after its instant,
and the message still carries the slot itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from orchestrator.schedules import aligned_after
from orchestrator.specs import DEFAULT_CATCH_UP_LIMIT

#: The periodic task header holding the policy (dropped from the messages beat sends).
POLICY_HEADER = "orchestrator_schedule"
#: The most seconds a slot may start late and still count as on time for ``catch_up: none``.
GRACE_SECONDS = 30
#: seconds in django-celery-beat's interval periods
_PERIOD_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


@dataclass(frozen=True, slots=True)
class SlotPolicy:
    """One job's slot policy, as rendered into its periodic task's headers."""

    catch_up: str | None = None
    limit: int = DEFAULT_CATCH_UP_LIMIT
    offset: int = 0
    align: bool = False
    #: a cron expression with croniter's L, W or # (and its zone): the row's crontab is only
    #: a superset (``fit._croniter_fit``), the slots are croniter's reading of this
    cron: str | None = None
    tz: str = "UTC"

    def as_header(self) -> dict[str, object]:
        header: dict[str, object] = {}
        if self.catch_up is not None:
            header["catch_up"] = self.catch_up
        if self.catch_up == "all":
            header["limit"] = self.limit
        if self.offset:
            header["offset"] = self.offset
        if self.align:
            header["align"] = True
        if self.cron:
            header["cron"], header["tz"] = self.cron, self.tz
        return header

    @classmethod
    def from_headers(cls, text: str | None) -> SlotPolicy | None:
        """The policy in a row's headers (JSON text), or ``None`` for a row without one (a
        periodic task made by hand, which keeps stock Celery's behaviour)."""
        if not text or POLICY_HEADER not in text:
            return None
        try:
            found = json.loads(text).get(POLICY_HEADER)
        except (ValueError, AttributeError):
            return None
        if not isinstance(found, dict):
            return None
        catch_up = found.get("catch_up")
        limit, offset = found.get("limit"), found.get("offset")
        return cls(
            catch_up=catch_up if catch_up in ("none", "one", "all") else None,
            limit=limit if isinstance(limit, int) and limit > 0 else DEFAULT_CATCH_UP_LIMIT,
            offset=offset if isinstance(offset, int) and offset > 0 else 0,
            align=found.get("align") is True,
            cron=str(found["cron"]) if found.get("cron") else None,
            tz=str(found.get("tz") or "UTC"),
        )


def interval_seconds(definition: tuple[Any, ...]) -> int:
    every, period = definition
    return int(every) * _PERIOD_SECONDS.get(str(period), 1)


def next_interval_slot(policy: SlotPolicy, definition: tuple[Any, ...], last: datetime) -> datetime:
    """The interval's first slot after ``last``: aligned to the clock, or ``last + every``."""
    seconds = interval_seconds(definition)
    if policy.align:
        return aligned_after(seconds, last.astimezone(UTC))
    return last + timedelta(seconds=seconds)


def next_croniter_slot(policy: SlotPolicy, last: datetime) -> datetime:
    """croniter's first instant of ``policy.cron`` after ``last``, in the policy's zone (UTC)."""
    assert policy.cron is not None
    zone = ZoneInfo(policy.tz)
    return croniter(policy.cron, last.astimezone(zone)).get_next(datetime).astimezone(UTC)


def slots_since(
    kind: str | None,
    definition: tuple[Any, ...],
    policy: SlotPolicy,
    last: datetime,
    until: datetime,
    keep: int,
) -> list[datetime]:
    """The slots in ``(last, until]``, the latest ``keep`` of them, oldest first (UTC)."""
    if keep < 1 or until <= last:
        return []
    found: list[datetime] = []
    if kind == "interval":
        seconds = interval_seconds(definition)
        step = timedelta(seconds=seconds)
        first = next_interval_slot(policy, definition, last)
        if first > until:
            return []
        count = int((until - first) // step) + 1
        latest = first + step * (count - 1)
        return [latest - step * k for k in range(min(keep, count) - 1, -1, -1)]
    if kind == "crontab":
        minute, hour, day_of_week, day_of_month, month_of_year, tz = definition
        expr = f"{minute} {hour} {day_of_month} {month_of_year} {day_of_week}"
        if policy.cron:
            expr, tz = policy.cron, policy.tz
        zone = ZoneInfo(str(tz))
        # croniter's get_prev returns instants strictly before its start: start a second after.
        walker = croniter(expr, (until + timedelta(seconds=1)).astimezone(zone))
        while len(found) < keep:
            slot = walker.get_prev(datetime).astimezone(UTC)
            if slot <= last:
                break
            if slot <= until:
                found.append(slot)
        found.reverse()
    return found


def slots_to_send(
    policy: SlotPolicy,
    kind: str | None,
    definition: tuple[Any, ...],
    last: datetime,
    now: datetime,
) -> tuple[list[datetime], datetime | None]:
    """(slots to send now, oldest first; the slot to claim) for a due row at ``now``.

    The claimed slot is the latest one due, sent or not: it becomes ``last_run_at``, so a slot
    left unsent by ``catch_up: none`` is never looked at again. ``None`` when no slot is due
    (the caller then falls back to Celery's own slot).
    """
    until = now - timedelta(seconds=policy.offset)
    keep = policy.limit if policy.catch_up == "all" else 1
    slots = slots_since(kind, definition, policy, last, until, keep)
    if not slots:
        return [], None
    latest = slots[-1]
    if policy.catch_up == "none":
        late = (until - latest).total_seconds()
        return ([latest] if late <= grace(kind, definition) else []), latest
    return slots, latest


def grace(kind: str | None, definition: tuple[Any, ...]) -> float:
    """How late a slot may start and still be on time: ``GRACE_SECONDS``, at most half an
    interval (an every-10s job 6 s late is a missed slot, not a late one)."""
    if kind == "interval":
        return min(GRACE_SECONDS, interval_seconds(definition) / 2)
    return GRACE_SECONDS


__all__ = (
    "GRACE_SECONDS",
    "POLICY_HEADER",
    "SlotPolicy",
    "next_croniter_slot",
    "next_interval_slot",
    "slots_since",
    "slots_to_send",
)
