"""catch_up after a stopped beat, and ``jobs backfill`` of a window, on the real services: the
project's beat (DueScheduler) publishing to Redis, the session's real worker running the runs,
and run history read back from PostgreSQL.

A beat that was stopped is a beat whose tasks' ``last_run_at`` lies several slots in the past
when it starts: that is set directly (the state a stopped beat leaves), rather than waited for.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from orchestrator import reconcile
from orchestrator.engines.celery.beat import lock_key
from orchestrator.engines.celery.due_scheduler import DueScheduler
from orchestrator.engines.celery.models import BeatDue
from orchestrator.models import BackfillSlot, JobRun, RunStatus
from orchestrator.schedules import jitter_offset
from tests.integration.cli_helpers import jobs
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

EVERY = 10  # seconds: the jobs' period


@pytest.fixture(autouse=True)
def empty_engines() -> Iterator[None]:
    clear_engines()
    JobRun.objects.all().delete()
    BackfillSlot.objects.all().delete()
    yield
    clear_engines()


def apply(text: str) -> None:
    reconcile.apply(placed_from(text))


def floor_slot(moment: datetime) -> datetime:
    """The latest 10 s multiple since the epoch at or before ``moment``."""
    seconds = int(moment.timestamp()) // EVERY * EVERY
    return datetime.fromtimestamp(seconds, tz=UTC)


def run_beat(ticks: int = 20) -> datetime:
    """Start the project's beat on its own lock, let it do what is due now, stop it; returns
    when it started."""
    beat = DueScheduler(app=_app(), lock_key=lock_key("tests:catch-up"))
    started = datetime.now(UTC)
    try:
        for _ in range(ticks):
            if beat.tick() > 0:
                break
    finally:
        beat.close()
    return started


def _app() -> Any:
    from project.celery import app

    return app


def slots_of(name: str, **filters: Any) -> list[datetime]:
    return sorted(
        JobRun.objects.filter(job=name, attempt=1, **filters).values_list(
            "scheduled_for", flat=True
        )
    )


def wait_succeeded(names: list[str], count: int, timeout: float = 40) -> None:
    """Until ``count`` runs of these jobs have succeeded on the worker."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = JobRun.objects.filter(job__in=names, status=RunStatus.SUCCEEDED).count()
        if done >= count:
            return
        time.sleep(0.2)
    raise AssertionError(
        f"only {done} of {count} runs succeeded: "
        f"{list(JobRun.objects.filter(job__in=names).values_list('job', 'status', 'message'))}"
    )


CATCH_UP = """
version: 1
defaults: {target: celery}
jobs:
  cu-none: {schedule: every 10s, sql: SELECT 1, catch_up: none}
  cu-one: {schedule: every 10s, sql: SELECT 1, catch_up: one}
  cu-all: {schedule: every 10s, sql: SELECT 1, catch_up: all, catch_up_limit: 3}
"""


def test_catch_up__after_a_stopped_beat_none_one_all(celery_worker: Any) -> None:
    """Beat stopped for six slots: ``none`` sends none of the missed slots (only the current
    one, if it is still on time), ``one`` sends the latest slot once, ``all`` sends the latest
    3 (its limit), each message carrying its own slot; the worker runs each, and every task's
    next due instant is the following clock-aligned slot."""
    apply(CATCH_UP)
    stopped_at = floor_slot(datetime.now(UTC)) - timedelta(seconds=6 * EVERY)
    PeriodicTask.objects.filter(name__startswith="cu-").update(last_run_at=stopped_at)

    started = run_beat()

    latest = floor_slot(started)
    step = timedelta(seconds=EVERY)
    on_time = (started - latest).total_seconds() <= EVERY / 2
    assert slots_of("cu-none") == ([latest] if on_time else [])
    assert slots_of("cu-one") == [latest]
    assert slots_of("cu-all") == [latest - 2 * step, latest - step, latest]
    assert not JobRun.objects.filter(manual=True).exists()
    wait_succeeded(["cu-none", "cu-one", "cu-all"], 4 + on_time)
    ids = PeriodicTask.objects.filter(name__startswith="cu-").values_list("id", flat=True)
    for due in BeatDue.objects.filter(task_id__in=list(ids)).values_list("due_at", flat=True):
        assert due == latest + step


BACKFILL = """
version: 1
jobs:
  filler: {schedule: every 10s, target: celery, sql: SELECT 1, catch_up: none}
"""


def test_backfill__window_runs_each_slot_once_idempotent_and_bounded(celery_worker: Any) -> None:
    """A backfill of a 60 s window runs its 6 slots once each, as backfill runs carrying their
    slots; the same backfill again runs none; two racing backfills of a wider window run each
    new slot exactly once between them; a window of more than 100 slots is refused without
    --limit or --yes, and --limit N runs the first N."""
    apply(BACKFILL)
    end = floor_slot(datetime.now(UTC)) - timedelta(seconds=3 * EVERY)
    start = end - timedelta(seconds=5 * EVERY)
    window = ("--from", start.isoformat(), "--to", end.isoformat())

    status, out, err = jobs("backfill", "filler", *window, "--format", "json")
    assert (status, err) == (0, "")
    first = json.loads(out)
    expected = [start + timedelta(seconds=EVERY * k) for k in range(6)]
    assert [slot["slot"] for slot in first["slots"]] == [s.isoformat() for s in expected]
    assert first["summary"] == {"sent": 6, "already run": 0, "taken": 0}
    assert slots_of("filler", backfill=True, manual=False) == expected

    status, out, _ = jobs("backfill", "filler", *window)
    assert status == 0
    assert out.splitlines()[0].endswith(": already run")
    assert "filler: 0 of 6 slots sent, 6 already run" in out

    wider = ("--from", (start - timedelta(seconds=4 * EVERY)).isoformat(), "--to", end.isoformat())
    results: list[dict[str, Any]] = []

    def racing() -> None:
        try:
            results.append(json.loads(jobs("backfill", "filler", *wider, "--format", "json")[1]))
        finally:
            connection.close()

    threads = [threading.Thread(target=racing) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result["summary"]["sent"] for result in results) == 4
    assert len(slots_of("filler", backfill=True)) == 10  # each slot once, no duplicates
    assert len(set(slots_of("filler", backfill=True))) == 10

    huge = ("--from", (end - timedelta(hours=1)).isoformat(), "--to", end.isoformat())
    status, _, err = jobs("backfill", "filler", *huge)
    assert status == 1
    assert "the window holds 361 slots (more than 100); pass --limit N" in err
    status, out, _ = jobs("backfill", "filler", *huge, "--limit", "2", "--format", "json")
    assert json.loads(out)["summary"] == {"sent": 2, "already run": 0, "taken": 0}
    wait_succeeded(["filler"], 12)


PG_BACKFILL = """
version: 1
jobs:
  pg-filler: {schedule: "* * * * *", target: pg_cron, sql: SELECT 1}
"""


def test_backfill__pg_cron_job_runs_its_minutes_on_the_runner(celery_worker: Any) -> None:
    """A pg_cron job's backfill: pg_cron cannot start a past slot, so each minute of the window
    goes to the Celery runner, which runs the job's SQL and records a backfill run carrying that
    minute; the same window again sends none (each slot already run)."""
    apply(PG_BACKFILL)
    assert reconcile.plan(placed_from(PG_BACKFILL)).changes[0].applied.engine == "pg_cron"
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    start = end - timedelta(minutes=2)
    window = ("--from", start.isoformat(), "--to", end.isoformat())

    status, out, err = jobs("backfill", "pg-filler", *window, "--format", "json")
    assert (status, err) == (0, "")
    expected = [start + timedelta(minutes=k) for k in range(3)]
    assert [slot["slot"] for slot in json.loads(out)["slots"]] == [s.isoformat() for s in expected]
    wait_succeeded(["pg-filler"], 3)
    assert slots_of("pg-filler", backfill=True, status=RunStatus.SUCCEEDED) == expected

    status, out, _ = jobs("backfill", "pg-filler", *window, "--format", "json")
    assert status == 0
    assert json.loads(out)["summary"] == {"sent": 0, "already run": 3, "taken": 0}


def test_backfill__refuses_the_future_and_unknown_jobs() -> None:
    """A window reaching into the future and a job that is not managed: one sentence, exit 1,
    nothing sent."""
    apply(BACKFILL)
    now = datetime.now(UTC)
    status, _, err = jobs(
        "backfill", "filler", "--from", now.isoformat(), "--to",
        (now + timedelta(minutes=1)).isoformat(),
    )  # fmt: skip
    assert status == 1
    assert "is in the future; a backfill runs past slots only" in err
    status, _, err = jobs("backfill", "nobody", "--from", now.isoformat(), "--to", now.isoformat())
    assert status == 1
    assert "no managed job is named 'nobody'" in err
    assert not BackfillSlot.objects.exists()


SHAPES = """
version: 1
defaults: {target: celery}
jobs:
  month-end: {schedule: '0 0 L * *', sql: SELECT 1}
  spread: {schedule: every 10s, sql: SELECT 1, jitter: 9s}
"""


def test_beat__croniter_extension_and_jitter_due_times(tmp_path: Path) -> None:
    """Our beat computes an ``L`` schedule with croniter (due at the next month-end, not at
    the crontab superset's next midnight) and delays a jittered job by its name's offset
    from a clock-aligned slot; the plan is clean after apply (the rows are what we render)."""
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(SHAPES)
    status, out, err = jobs("apply", "--manifest", str(manifest), "--yes")
    assert status == 0, out + err
    run_beat()
    due = {
        name: BeatDue.objects.get(task_id=task_id).due_at
        for name, task_id in PeriodicTask.objects.filter(
            name__in=["month-end", "spread"]
        ).values_list("name", "id")
    }
    now = datetime.now(UTC)
    month_end = (now.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    expected = month_end.replace(hour=0, minute=0, second=0, microsecond=0)
    if expected <= now:  # today is the last day, after midnight: next month's
        following = (expected + timedelta(days=32)).replace(day=1)
        expected = (following.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(
            days=1
        )
    assert due["month-end"] == expected
    offset = jitter_offset("spread", 9)
    assert int((due["spread"] - timedelta(seconds=offset)).timestamp()) % EVERY == 0
    status, out, _ = jobs("plan", "--manifest", str(manifest), "--check")
    assert status == 0, out


def test_admin_job_page__says_what_happens_around_the_slots() -> None:
    """The job page shows the catch-up policy and the job's jitter offset next to its
    schedule, and the unset policy as the engine's own."""
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from orchestrator.models import ManagedJob

    apply(CATCH_UP.replace("cu-all: {", "cu-all: {jitter: 4s, "))
    admin = get_user_model().objects.create_superuser("around-admin", "a@example.com", "x")
    client = Client()
    client.force_login(admin)
    page = client.get(
        reverse(
            "admin:orchestrator_managedjob_change", args=[ManagedJob.objects.get(name="cu-all").pk]
        )
    ).content.decode()
    offset = jitter_offset("cu-all", 4)
    assert (
        "catch_up: all (each missed slot, the latest 3 at most); jitter up to 4 s (this job "
        f"starts {offset} s after each slot)"
    ) in page
