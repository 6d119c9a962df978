"""Claimed beat slots through a broker outage (``engines.celery.beat_send``), with a fake app
and clock: a refused send is retried with bounded backoff, sent when the broker takes it, and
recorded as missed (never dropped) once superseded, past its deadline, or abandoned.

The real broker outage, with a real beat and worker, is ``tests/faults/test_redis_outage.py``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from celery import schedules
from celery.beat import SchedulingError
from django.utils import timezone

from orchestrator.engines.celery import beat_send
from orchestrator.engines.celery.beat_send import MAX_BACKOFF, MAX_WAIT, ClaimedSlots
from orchestrator.engines.celery.runner import RUNNER_TASK


class FakeScheduler:
    """Beat's publishing seam: ``apply_async`` fails while ``broker_up`` is False, as
    Celery's does (a ``SchedulingError`` around the transport's error)."""

    def __init__(self) -> None:
        self.broker_up = True
        self.sent: list[tuple[Any, Any]] = []

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True) -> None:
        assert advance is False  # the slot is claimed already: never reserve again
        if not self.broker_up:
            raise SchedulingError(
                f"Couldn't apply scheduled task {entry.name}: Error 111 connecting to "
                "localhost:6379. Connection refused."
            )
        self.sent.append((entry.kwargs, entry.options["headers"]))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entry(pk: int, name: str, schedule: Any, slot: datetime) -> SimpleNamespace:
    return SimpleNamespace(
        model=SimpleNamespace(pk=pk),
        name=name,
        task=RUNNER_TASK,
        args=(),
        kwargs={"name": name},
        options={"queue": "q", "headers": {"scheduled_at": slot.isoformat()}},
        schedule=schedule,
    )


@pytest.fixture
def missed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, datetime, str]]:
    found: list[tuple[str, datetime, str]] = []
    monkeypatch.setattr(
        beat_send,
        "record_missed",
        lambda job, task_id, slot, message: found.append((job, slot, message)),
    )
    return found


def test_beat_send__refused_slot_is_retried_with_backoff_and_sent_when_the_broker_returns(
    missed: list,
) -> None:
    """The broker refuses: the slot waits; retries back off (0.5 s, 1 s, 2 s ... at most
    MAX_BACKOFF); once the broker takes it, it is sent once, with its slot header."""
    clock = Clock()
    app = FakeScheduler()
    slots = ClaimedSlots(app, clock)
    slot = timezone.now()
    app.broker_up = False
    daily = schedules.crontab(minute=0, hour=3)
    assert slots.send(entry(1, "nightly", daily, slot), slot) is False
    assert list(slots.pending) == [1]
    waits = []
    for _ in range(8):
        waits.append(round(slots.next_retry_in(60.0), 3))
        clock.now += slots.next_retry_in(60.0)
        slots.retry_due()
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF]
    assert app.sent == []
    app.broker_up = True
    clock.now += MAX_BACKOFF
    slots.retry_due()
    assert slots.pending == {}
    assert app.sent == [({"name": "nightly"}, {"scheduled_at": slot.isoformat()})]
    assert missed == []


def test_beat_send__a_slot_superseded_by_the_next_is_recorded_missed(missed: list) -> None:
    """Every 5 s through an outage: each new claim supersedes the pending one, which is
    recorded as missed with the reason; only the latest is sent when the broker returns."""
    clock = Clock()
    app = FakeScheduler()
    slots = ClaimedSlots(app, clock)
    every = schedules.schedule(timedelta(seconds=5))
    first = timezone.now()
    second = first + timedelta(seconds=5)
    app.broker_up = False
    slots.send(entry(2, "tick", every, first), first)
    slots.send(entry(2, "tick", every, second), second)
    assert [(job, slot) for job, slot, _ in missed] == [("tick", first)]
    assert "superseded by the next slot" in missed[0][2]
    assert "Connection refused" in missed[0][2]
    app.broker_up = True
    clock.now += 1
    slots.retry_due()
    assert [headers["scheduled_at"] for _, headers in app.sent] == [second.isoformat()]


def test_beat_send__deadline_is_the_next_slot_within_max_wait() -> None:
    """A slot matters until its schedule's next slot, and never longer than MAX_WAIT."""
    slot = timezone.now().replace(microsecond=0)
    every = schedules.schedule(timedelta(seconds=10))
    nightly = schedules.crontab(minute=slot.minute, hour=slot.hour)
    assert beat_send._deadline(SimpleNamespace(schedule=every), slot) == pytest.approx(
        slot + timedelta(seconds=10), abs=timedelta(milliseconds=50)
    )
    assert beat_send._deadline(SimpleNamespace(schedule=nightly), slot) == slot + MAX_WAIT


def test_beat_send__past_deadline_or_abandoned_slots_are_recorded_missed(missed: list) -> None:
    """A slot the broker never took before its deadline, and the slots pending when beat
    loses the leadership, are each recorded once as missed, with why."""
    clock = Clock()
    app = FakeScheduler()
    slots = ClaimedSlots(app, clock)
    app.broker_up = False
    old = timezone.now() - MAX_WAIT - timedelta(seconds=1)
    slots.send(entry(3, "late", schedules.crontab(minute=0, hour=3), old), old)
    clock.now += 1
    slots.retry_due()
    now = timezone.now()
    slots.send(entry(4, "other", schedules.crontab(minute=0, hour=4), now), now)
    slots.abandon("this beat lost the leadership before the broker took it")
    assert [(job, "slot passed" in m or "lost the leadership" in m) for job, _, m in missed] == [
        ("late", True),
        ("other", True),
    ]
    assert slots.pending == {}
    assert app.sent == []


def test_beat_send__a_slot_message_expires_at_the_next_slot() -> None:
    """Each sent slot carries ``expires`` = its schedule's next slot (stale messages are
    dropped on delivery); an earlier expiry of the task's own is kept; a slot with no next
    slot (a one-time clocked run) carries none of ours."""
    app = FakeScheduler()
    sent: list[dict[str, Any]] = []
    app.apply_async = lambda pending, producer=None, advance=True: sent.append(pending.options)
    slots = ClaimedSlots(app, Clock())
    slot = timezone.now().replace(microsecond=0)
    every = schedules.schedule(timedelta(seconds=10))
    slots.send(entry(5, "tick", every, slot), slot)
    assert abs((sent[-1]["expires"] - (slot + timedelta(seconds=10))).total_seconds()) < 1
    own = entry(6, "soon", every, slot)
    own.options["expires"] = slot + timedelta(seconds=3)
    slots.send(own, slot)
    assert sent[-1]["expires"] == slot + timedelta(seconds=3)
    once = entry(7, "once", SimpleNamespace(), slot)  # no remaining_estimate: no next slot
    slots.send(once, slot)
    assert "expires" not in sent[-1]


def test_beat_send__a_caught_up_slot_expires_one_period_after_its_send() -> None:
    """A missed slot sent late on purpose (catch_up: all) gets a whole period from now, not
    its long-past next slot: catch-up runs are not dropped as stale."""
    app = FakeScheduler()
    sent: list[dict[str, Any]] = []
    app.apply_async = lambda pending, producer=None, advance=True: sent.append(pending.options)
    slots = ClaimedSlots(app, Clock())
    old = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    every = schedules.schedule(timedelta(seconds=10))
    slots.send(entry(8, "caught-up", every, old), old)
    expires = sent[-1]["expires"]
    assert expires > timezone.now() + timedelta(seconds=8)
    assert expires <= timezone.now() + timedelta(seconds=10)
