"""DueScheduler on the real PostgreSQL: the due index, changes, bad rows, stock promises.

The scheduler records what it would send instead of publishing it (as in test_beat_leader.py),
so each test sees exactly what would reach Redis. Writes are made every way a user or the
reconciler makes them: ORM save(), QuerySet.update() and bulk_create() (no signals), raw SQL.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from orchestrator.engines.celery.beat import SLOT_HEADER, lock_key
from orchestrator.engines.celery.due_scheduler import DueScheduler
from orchestrator.engines.celery.models import BeatDue

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

TEST_KEY = lock_key("tests:due-scheduler")


class Recording(DueScheduler):
    """Records (name, kwargs, headers) of what it would send."""

    check_every = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        super().__init__(*args, lock_key=TEST_KEY, **kwargs)

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **_: Any) -> None:
        self.sent.append((entry.name, dict(entry.kwargs), dict(entry.options.get("headers", {}))))

    @property
    def producer(self) -> None:
        return None

    def names(self) -> list[str]:
        return [name for name, _, _ in self.sent]


def look(scheduler: Recording, count: int = 8) -> None:
    """Tick until nothing more is to be done right now."""
    for _ in range(count):
        if scheduler.tick() != 0:
            return


@pytest.fixture
def scheduler(celery_app: Any) -> Iterator[Recording]:
    made = Recording(app=celery_app)
    yield made
    made.close()


def every(seconds: int) -> IntervalSchedule:
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    return interval


def make_task(name: str, seconds: int = 3600, ago: int = 0, **fields: Any) -> PeriodicTask:
    """An interval task; with ``ago`` >= ``seconds`` it is due now."""
    return PeriodicTask.objects.create(
        name=name,
        task="orchestrator.ping",
        interval=every(seconds),
        last_run_at=timezone.now() - timedelta(seconds=ago),
        **fields,
    )


def due_row(task: PeriodicTask) -> BeatDue:
    return BeatDue.objects.get(task_id=task.pk)


def test_due_index__every_kind_of_write_marks_the_task_changed(scheduler: Recording) -> None:
    """ORM save, update(), bulk_create(), raw SQL on a schedule, raw DELETE: each marks the task
    dirty with a newer change_seq (or removes it) in the same transaction; the scheduler then
    computes due_at."""
    task = make_task("due-writes")
    assert due_row(task).dirty
    look(scheduler)
    computed = due_row(task)
    assert not computed.dirty
    assert computed.due_at == task.last_run_at + timedelta(hours=1)

    PeriodicTask.objects.filter(pk=task.pk).update(description="no signal sent")
    after_update = due_row(task)
    assert after_update.dirty
    assert after_update.due_at is None
    assert after_update.change_seq > computed.change_seq

    crontab = CrontabSchedule.objects.create(minute="0", hour="4", timezone="UTC")
    bulk = PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=f"due-bulk-{i}", task="orchestrator.ping", crontab=crontab)
         for i in range(3)]
    )  # fmt: skip
    assert BeatDue.objects.filter(task_id__in=[t.pk for t in bulk], dirty=True).count() == 3
    look(scheduler)
    assert not BeatDue.objects.filter(dirty=True).exists()

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_celery_beat_crontabschedule SET hour = '5' WHERE id = %s", [crontab.pk]
        )
    assert BeatDue.objects.filter(task_id__in=[t.pk for t in bulk], dirty=True).count() == 3
    look(scheduler)
    assert all(row.due_at.hour == 5 for row in BeatDue.objects.filter(task_id=bulk[0].pk))

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_celery_beat_periodictask WHERE id = %s", [bulk[0].pk])
    assert not BeatDue.objects.filter(task_id=bulk[0].pk).exists()


def test_saved_change__two_saves_in_one_second_both_seen(scheduler: Recording) -> None:
    """Each save is seen by the next look, even the second of two saves in the same second
    (django-celery-beat's own suite shows stock missing that one)."""
    task = make_task("due-twice", kwargs=json.dumps({"v": 0}))
    look(scheduler)
    assert scheduler.sent == []

    task.kwargs = json.dumps({"v": 1})
    task.save()
    look(scheduler)
    assert scheduler.sent == []
    first_saved = timezone.now()
    task.kwargs = json.dumps({"v": 2})
    task.interval = every(1)
    task.last_run_at = timezone.now() - timedelta(seconds=5)
    task.save()
    assert timezone.now() - first_saved < timedelta(seconds=1)
    look(scheduler)
    assert [(name, kwargs) for name, kwargs, _ in scheduler.sent] == [("due-twice", {"v": 2})]


def test_disabled_or_deleted_task__never_sent(scheduler: Recording) -> None:
    """Tasks due now and already computed: disabled by update() or deleted by raw SQL before the
    next look, they are not sent; an untouched due task is."""
    disabled, deleted, control = (make_task(f"due-{n}", 10, ago=15) for n in ("off", "gone", "on"))
    scheduler.ensure_leadership()
    scheduler._refresh(time.monotonic() + 5)  # computed: all three are due now
    assert BeatDue.objects.filter(due_at__lte=timezone.now()).count() == 3

    PeriodicTask.objects.filter(pk=disabled.pk).update(enabled=False)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_celery_beat_periodictask WHERE id = %s", [deleted.pk])
    look(scheduler)
    assert scheduler.names() == ["due-on"]
    assert (
        scheduler.sent[0][2][SLOT_HEADER]
        == (control.last_run_at + timedelta(seconds=10)).isoformat()
    )


def test_claim__refuses_a_task_changed_since_it_was_read(scheduler: Recording) -> None:
    """The fence also covers the task itself: a claim made with a stale change_seq fails."""
    task = make_task("due-stale", 10, ago=15)
    assert scheduler.ensure_leadership()
    stale = due_row(task).change_seq
    PeriodicTask.objects.filter(pk=task.pk).update(description="edited meanwhile")
    slot = task.last_run_at + timedelta(seconds=10)
    assert scheduler.lock.claim_due(task.pk, stale, slot) is False
    assert scheduler.lock.claim_due(task.pk, due_row(task).change_seq, slot) is True


def test_bad_rows__logged_with_the_task_name_and_skipped(
    scheduler: Recording, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown time zone, an impossible crontab and kwargs that are not JSON: each logged
    with its task's name, its error kept, beat goes on and sends the good task."""
    bad_zone = CrontabSchedule.objects.create(minute="*", timezone="UTC")
    bad_minute = CrontabSchedule.objects.create(minute="*", timezone="UTC")
    for name, crontab in (("due-bad-zone", bad_zone), ("due-bad-minute", bad_minute)):
        PeriodicTask.objects.create(name=name, task="orchestrator.ping", crontab=crontab)
    make_task("due-bad-json", 10, ago=15)
    make_task("due-good", 10, ago=15)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_celery_beat_crontabschedule SET timezone = 'Mars/Olympus_Mons'"
            " WHERE id = %s",
            [bad_zone.pk],
        )
        cursor.execute(
            "UPDATE django_celery_beat_crontabschedule SET minute = '99' WHERE id = %s",
            [bad_minute.pk],
        )
        cursor.execute(
            "UPDATE django_celery_beat_periodictask SET kwargs = '{nope' WHERE name = %s",
            ["due-bad-json"],
        )
    with caplog.at_level(logging.ERROR, logger="orchestrator.engines.celery.due_scheduler"):
        look(scheduler)
    assert scheduler.names() == ["due-good"]
    assert scheduler.leading
    logged = " ".join(record.getMessage() for record in caplog.records)
    for name in ("due-bad-zone", "due-bad-minute", "due-bad-json"):
        assert name in logged
        row = BeatDue.objects.get(task_id=PeriodicTask.objects.get(name=name).pk)
        assert row.error
        assert row.due_at is None
    caplog.clear()
    look(scheduler)
    assert not caplog.records  # looked at again only when changed


def test_one_off__sent_once_then_disabled_like_stock(scheduler: Recording) -> None:
    """A one-off task runs once; then, as ModelEntry.is_due leaves it: disabled, run count 0,
    last_run_at cleared."""
    task = make_task("due-once", 10, ago=15, one_off=True)
    look(scheduler)
    look(scheduler)
    assert scheduler.names() == ["due-once"]
    task.refresh_from_db()
    assert (task.enabled, task.total_run_count, task.last_run_at) == (False, 0, None)
    assert due_row(task).due_at is None


def test_expired_task__disabled_not_sent(scheduler: Recording) -> None:
    """Past its expires, a due task is disabled and not sent (ModelEntry.is_due)."""
    task = make_task("due-expired", 10, ago=15, expires=timezone.now() - timedelta(seconds=1))
    look(scheduler)
    assert scheduler.sent == []
    task.refresh_from_db()
    assert task.enabled is False


def test_start_time__not_sent_before_it(scheduler: Recording) -> None:
    """A due task with a start_time 1.5 s ahead is sent only once that time has come."""
    start = timezone.now() + timedelta(seconds=1.5)
    task = make_task("due-later", 10, ago=15, start_time=start)
    look(scheduler)
    assert scheduler.sent == []
    assert due_row(task).due_at == start
    time.sleep(max(0.0, (start - timezone.now()).total_seconds()) + 0.05)
    look(scheduler)
    assert scheduler.names() == ["due-later"]


def test_start_up__computes_only_changed_rows(celery_app: Any) -> None:
    """A new leader computes the dirty rows only: 300 tasks computed once by the first leader
    are not computed again by the next, which computes just the one changed since (and Celery's
    default cleanup entry, which every beat start saves again)."""
    crontab = CrontabSchedule.objects.create(minute="0", hour="4", timezone="Europe/Paris")
    PeriodicTask.objects.bulk_create(
        [PeriodicTask(name=f"due-many-{i}", task="orchestrator.ping", crontab=crontab)
         for i in range(300)]
    )  # fmt: skip
    first = Recording(app=celery_app)
    look(first)
    assert first.computed >= 300
    assert first.cache.parsed <= 2  # one crontab (and at most celery's cleanup task's)
    first.close()

    PeriodicTask.objects.filter(name="due-many-7").update(description="changed")
    second = Recording(app=celery_app)
    changed = BeatDue.objects.filter(dirty=True).count()
    assert changed <= 2
    deadline = time.monotonic() + 5
    while not second.leading and time.monotonic() < deadline:
        look(second)
        time.sleep(0.05)
    try:
        assert second.leading
        assert second.computed == changed
    finally:
        second.close()


def test_sleep__until_the_next_due_instant(scheduler: Recording) -> None:
    """With a task due in 0.15 s beat sleeps about that long; with nothing near, wake_every."""
    look(scheduler)
    assert scheduler.tick() == pytest.approx(scheduler.wake_every)
    make_task("due-soon", 10, ago=10 - 0.15)
    wait = scheduler.tick()
    assert 0.05 < wait < 0.16
