"""Three leader-elected beats, the leader SIGKILLed twice: every slot dispatched exactly once.

Shortened from the issue's 3 minutes to 80 s (8 slots of an every-10s job), with the kills at
~25 s and ~50 s: two takeovers, and at least two slots after each (each leader is checked to
have dispatched) to show that the new leader neither re-sends what the dead one sent nor drifts.
A replacement beat is started after each kill (as a supervisor would), so three beats run
throughout and restarted beats are tested too. Every dispatched slot writes ``failover@<slot>``
to the ledger; attempts count deliveries.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.faults.processes import Beat, Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

RUN_SECONDS = 80
KILL_AT = (25, 50)
EVERY = timedelta(seconds=10)


@pytest.fixture
def every_10s_job(ledger: Any) -> Iterator[PeriodicTask]:
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(
        name="fault-failover",
        task="tests.faults.jobs.record_slot",
        interval=interval,
        kwargs=json.dumps({"job": "failover"}),
        queue="faults-beat",
    )
    yield task
    PeriodicTask.objects.filter(pk=task.pk).delete()


def wait_for_leader(beats: list[Beat], timeout: float = 30.0) -> Beat:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = [beat for beat in beats if beat.alive() and beat.is_leader()]
        if leaders:
            assert len(leaders) == 1, [beat.name for beat in leaders]
            return leaders[0]
        time.sleep(0.5)
    raise AssertionError(f"no beat became leader within {timeout}s")


def test_leader_killed_twice_every_slot_once(
    every_10s_job: PeriodicTask, ledger: Any, celery_app: Any
) -> None:
    worker = Worker(queues="faults-beat", concurrency=2)
    beats = [Beat(f"b{i}") for i in range(3)]
    try:
        worker.wait_ready(celery_app)
        started = time.monotonic()
        leader = wait_for_leader(beats)
        takeovers = []
        kills: list[datetime] = []
        for number, at in enumerate(KILL_AT):
            time.sleep(max(0.0, at - (time.monotonic() - started)))
            leader.kill()
            kills.append(datetime.now(UTC))
            killed_at = time.monotonic()
            beats.append(Beat(f"b{3 + number}"))
            leader = wait_for_leader(beats)
            takeovers.append(time.monotonic() - killed_at)
        time.sleep(max(0.0, RUN_SECONDS - (time.monotonic() - started)))
    finally:
        for beat in beats:
            beat.stop()
        time.sleep(3)  # let the worker finish what the last leader sent
        worker.stop()

    assert all(seconds < 15 for seconds in takeovers), takeovers
    effects = ledger.effects("failover@")
    attempts = ledger.attempts("failover@")
    slots = [slot for _key, slot, _started in effects]
    assert None not in slots, "a dispatch without its slot header"
    assert len(slots) >= RUN_SECONDS // EVERY.seconds - 3, slots
    # Every leader dispatched: slots before the first kill, between the kills, after the last.
    edges = [datetime.min.replace(tzinfo=UTC), *kills, datetime.max.replace(tzinfo=UTC)]
    for since, until in itertools.pairwise(edges):
        assert any(since <= slot < until for slot in slots), (since, until, slots)
    assert all(count == 1 for count in attempts.values()), attempts  # nothing sent twice
    gaps = [later - earlier for earlier, later in itertools.pairwise(slots)]
    assert all(gap % EVERY == timedelta(0) for gap in gaps), gaps  # slots never drift
    missed = sum(gap // EVERY - 1 for gap in gaps)
    assert missed <= len(KILL_AT), (missed, slots)
