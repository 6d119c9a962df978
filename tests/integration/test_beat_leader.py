"""The leader-elected beat scheduler against the real PostgreSQL: one leader, takeover, fencing.

Two schedulers live in this one process, each with its own lock connection, exactly as two beat
processes would. Dispatches are recorded instead of sent, so the tests see what *would* reach
Redis; the fault tests (tests/faults/test_beat_failover.py) run real beat processes. Every test runs
against both leader schedulers: ``LeaderDatabaseScheduler`` (stock reading) and ``DueScheduler``
(the indexed due time, the project's default).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from orchestrator.engines.celery.beat import SLOT_HEADER, LeaderDatabaseScheduler, lock_key
from orchestrator.engines.celery.due_scheduler import DueScheduler

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

TEST_KEY = lock_key("tests:beat-leader")


class Recording:
    """Mixed into a leader scheduler: records what it would send instead of publishing it."""

    check_every = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        super().__init__(*args, lock_key=TEST_KEY, **kwargs)

    def apply_async(
        self, entry: Any, producer: Any = None, advance: bool = True, **kw: Any
    ) -> None:
        self.sent.append((entry.name, dict(entry.options.get("headers", {}))))

    @property
    def producer(self) -> None:
        return None


class RecordingScheduler(Recording, LeaderDatabaseScheduler):
    pass


class RecordingDueScheduler(Recording, DueScheduler):
    pass


def run_ticks(scheduler: Any, count: int = 6) -> None:
    """Tick until nothing more is due now (``tick`` sends one due entry per call)."""
    for _ in range(count):
        if scheduler.tick() != 0:
            return


@pytest.fixture
def every_10s() -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(
        name="beat-leader-test",
        task="orchestrator.ping",
        interval=interval,
        kwargs=json.dumps({"token": "t"}),
        last_run_at=timezone.now() - timedelta(seconds=15),
    )


def wait_until_lock_free(timeout: float = 5.0) -> None:
    """A closed session's advisory lock is freed when its backend exits, a moment after close."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 1 AND classid::bigint = (%(key)s >> 32) & 4294967295"
                " AND objid::bigint = %(key)s & 4294967295",
                {"key": TEST_KEY},
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.02)
    raise AssertionError("the released advisory lock is still held")


@pytest.fixture(params=[RecordingScheduler, RecordingDueScheduler], ids=["leader", "due"])
def schedulers(celery_app: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    made: list[Any] = []

    def make() -> Any:
        scheduler = request.param(app=celery_app)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.lock.release()


def test_only_one_acquires_and_the_other_takes_over_on_release(schedulers: Any) -> None:
    first, second = schedulers(), schedulers()
    assert first.ensure_leadership() is True
    assert second.ensure_leadership() is False
    assert second.ensure_leadership() is False

    first.close()
    assert first.leading is False
    wait_until_lock_free()
    assert second.ensure_leadership() is True
    assert first.ensure_leadership() is False


def test_leader_dispatches_the_due_slot_once_and_persists_it(
    schedulers: Any, every_10s: PeriodicTask
) -> None:
    due = every_10s.last_run_at + timedelta(seconds=10)
    leader, standby = schedulers(), schedulers()
    run_ticks(leader)
    run_ticks(standby)

    assert [name for name, _ in leader.sent] == ["beat-leader-test"]
    assert standby.sent == []
    headers = leader.sent[0][1]
    assert headers[SLOT_HEADER] == due.isoformat()
    every_10s.refresh_from_db()
    # Written at dispatch, not at the lazy sync three minutes later.
    assert every_10s.last_run_at == due
    assert every_10s.total_run_count == 1

    # The leader dies without any sync; the standby takes over and must not send the slot again.
    leader.lock.release()
    wait_until_lock_free()
    run_ticks(standby)
    assert standby.leading is True
    assert standby.sent == []


def test_a_dead_lock_connection_stops_dispatching(schedulers: Any, every_10s: PeriodicTask) -> None:
    leader = schedulers()
    assert leader.ensure_leadership() is True
    backend_pid = leader.lock.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend_pid])

    run_ticks(leader)
    assert leader.sent == []
    assert leader.leading is False
    every_10s.refresh_from_db()
    assert every_10s.total_run_count == 0


def test_the_claim_fences_even_when_the_liveness_check_is_skipped(
    schedulers: Any, every_10s: PeriodicTask
) -> None:
    leader = schedulers()
    leader.check_every = 3600.0  # the per-tick check will not run: only the claim stands guard
    assert leader.ensure_leadership() is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [leader.lock.connection.info.backend_pid])

    run_ticks(leader)
    assert leader.sent == []
    assert leader.leading is False


def test_a_slot_claimed_by_another_leader_is_not_sent(
    schedulers: Any, every_10s: PeriodicTask
) -> None:
    leader = schedulers()
    assert leader.ensure_leadership() is True
    leader.schedule  # noqa: B018 - read the schedule (and the stale last_run_at) into memory
    # Meanwhile a former leader (split brain) already ran this slot and persisted it.
    due = every_10s.last_run_at + timedelta(seconds=10)
    PeriodicTask.objects.filter(pk=every_10s.pk).update(last_run_at=due)

    run_ticks(leader)
    assert leader.sent == []
    assert leader.leading is True
