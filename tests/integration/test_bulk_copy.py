"""``copy_insert`` writes the rows ``bulk_create`` would write: every column alike (JSON,
timestamps, foreign keys, NULLs, booleans), each object given its primary key, and
django-celery-beat's due-time trigger fired for the new periodic tasks."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from orchestrator.bulk_copy import blank, copy_insert
from orchestrator.models import ManagedJob

pytestmark = pytest.mark.django_db


def managed(name: str) -> ManagedJob:
    return ManagedJob(
        name=name,
        engine="celery",
        engine_id=f"id-{name}",
        spec_hash="h" * 64,
        definition={"kwargs": {"quote": 'a "b" \\ c', "n": [1, 2.5, None]}},
        reasons=["Not pg_cron: it's a task.", "é ∑ \t tab"],
        paused=True,
        applied_at=datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        # another zone's offset reaches PostgreSQL as it is (COPY skips the field's checks)
        resumed_at=datetime(2030, 1, 2, 8, 34, 5, tzinfo=ZoneInfo("Asia/Kolkata")),
    )


def task(name: str, crontab: CrontabSchedule) -> PeriodicTask:
    return PeriodicTask(
        name=name,
        task="orchestrator.run_job",
        kwargs='{"job": "x"}',
        headers="{}",
        queue=None,
        crontab=crontab,
        one_off=False,
        expires=None,
        description="line one\nline two",
        enabled=True,
        date_changed=timezone.now(),
    )


def test_copy_insert__rows_equal_bulk_create_and_pks_set() -> None:
    """Registry rows and periodic tasks inserted by COPY read back field for field as those
    inserted by bulk_create (ids, names and auto timestamps aside), and each object has the
    pk of its row."""
    copied, stock = [managed("copy-a"), managed("copy-b")], [managed("stock-a")]
    copy_insert(ManagedJob, copied)
    ManagedJob.objects.bulk_create(stock)
    assert all(row.pk is not None and not row._state.adding for row in copied)
    ignore = {"id", "name", "engine_id", "created_at"}

    def fields(row: ManagedJob) -> dict[str, object]:
        fresh = ManagedJob.objects.get(pk=row.pk)
        assert fresh.name == row.name
        return {k: v for k, v in model_to_dict(fresh).items() if k not in ignore}

    assert fields(copied[0]) == fields(stock[0]) == fields(copied[1])
    fresh = ManagedJob.objects.get(pk=copied[0].pk)
    assert fresh.resumed_at == datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert fresh.created_at is not None
    assert fresh.orphaned_at is None

    crontab = CrontabSchedule.objects.create(minute="5", hour="*", timezone="UTC")
    tasks = [task("copy-task", crontab)]
    copy_insert(PeriodicTask, tasks)
    PeriodicTask.objects.bulk_create([task("stock-task", crontab)])
    read = {t.name: model_to_dict(t) for t in PeriodicTask.objects.filter(crontab=crontab)}
    assert read["copy-task"]["id"] == tasks[0].pk
    for row in read.values():
        row.pop("id"), row.pop("name")
    assert read["copy-task"] == read["stock-task"]
    with connection.cursor() as cursor:  # the statement-level trigger marked the copy due
        cursor.execute(
            "SELECT count(*) FROM celery_engine_beatdue WHERE task_id = %s", [tasks[0].pk]
        )
        assert cursor.fetchone()[0] == 1


def test_blank__instances_equal_the_models_own() -> None:
    """``blank(model)()`` gives what ``model()`` gives (every attribute, each field's value), a
    state of its own that says unsaved, and a fresh value for each callable default; COPY
    writes such rows as it writes any other."""
    for model in (ManagedJob, PeriodicTask):
        made, stock = blank(model)(), model()
        assert made.__dict__.keys() == stock.__dict__.keys()
        assert model_to_dict(made) == model_to_dict(stock)
        assert made._state.adding
        assert made._state.db is None
        assert made._state is not blank(model)()._state
    make = blank(ManagedJob)
    first, second = make(), make()
    assert first.reasons == []
    assert first.reasons is not second.reasons, "a default=list must not be shared"
    for index, row in enumerate((first, second)):
        row.name, row.engine, row.engine_id = f"blank-{index}", "celery", f"id-blank-{index}"
        row.spec_hash, row.definition = "h" * 64, {"n": index}
        row.applied_at = timezone.now()
    copy_insert(ManagedJob, [first, second])
    assert ManagedJob.objects.get(pk=second.pk).definition == {"n": 1}
