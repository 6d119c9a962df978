"""Redis stopped for 30 s across a minute boundary: pg_cron keeps running with no gap, a beat
slot claimed while the broker is down is sent late or recorded missed, and app jobs resume.

One outage shows both properties (each used to have its own, a minute-aligned wait apiece):

- pg_cron runs inside PostgreSQL and never touches Redis, so its ``* * * * *`` job must fire at
  every minute boundary, including the one that falls inside the outage and the one after it.
  The every-10s Celery job (a plain periodic task) loses the slots whose dispatch fell in the
  outage (beat's catch-up policy collapses missed slots into the next one) and must run again
  within 30 s of Redis' return.
- The managed minutely Celery job's slot at that boundary is claimed during the outage: beat
  keeps it and sends it when Redis is back (history: that slot ran, late). The managed every-5s
  job's slots during the outage pass one by one before the broker can take them: each is
  recorded in run history as ``missed`` with the reason and the broker's error; none is lost
  silently, and the job resumes.

The outage starts at second ~50, so the boundary falls ~10 s into it and Redis is back ~20 s
after it, well within the claimed slot's deadline (the next slot).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.faults.processes import Beat, Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

OUTAGE_SECONDS = 30
#: second of the minute at which Redis stops
OUTAGE_AT = 50
CRON_JOB = "fault-redis-outage-minutely"
MANAGED = """
version: 1
jobs:
  outage-minutely:
    schedule: "* * * * *"
    target: celery
    queue: faults-outage
    sql: SELECT 1
  outage-every5:
    schedule: every 5s
    target: celery
    queue: faults-outage
    sql: SELECT 2
"""


@pytest.fixture
def outage_jobs(ledger: Any) -> Iterator[datetime]:
    """Two managed Celery jobs on the outage queue (one every minute, one every 5 s), a plain
    every-10s periodic task recording its slots in the ledger, and a pg_cron job writing
    ``cron@<minute>`` every minute; yields when the pg_cron job was scheduled."""
    from orchestrator import reconcile
    from orchestrator.models import JobRun
    from tests.integration.reconcile_helpers import clear_engines, placed_from

    clear_engines()  # first: it removes every periodic task and pg_cron job
    reconcile.apply(placed_from(MANAGED))
    interval, _ = IntervalSchedule.objects.get_or_create(every=10, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="fault-outage",
        task="tests.faults.jobs.record_slot",
        interval=interval,
        kwargs=json.dumps({"job": "outage"}),
        queue="faults-outage",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT cron.schedule(%s, '* * * * *', %s)",
            [
                CRON_JOB,
                "INSERT INTO fault_effects (key, started_at) "
                "VALUES ('cron@' || to_char(date_trunc('minute', now()) AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD HH24:MI'), now()) ON CONFLICT DO NOTHING",
            ],
        )
    yield datetime.now(UTC)
    with connection.cursor() as cursor:
        cursor.execute("SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = %s", [CRON_JOB])
    PeriodicTask.objects.filter(name="fault-outage").delete()
    clear_engines()
    JobRun.objects.filter(job__startswith="outage-").delete()


def test_redis_outage__pg_cron_runs_on_claimed_slots_are_sent_or_recorded_missed(
    outage_jobs: datetime, ledger: Any, redis_server: Any, celery_app: Any
) -> None:
    """See the module docstring: both behaviours, checked on one outage."""
    from orchestrator.models import JobRun

    worker = Worker(queues="faults-outage", concurrency=1)
    beat = Beat("outage")
    try:
        worker.wait_ready(celery_app)
        now = datetime.now(UTC)
        wait = (OUTAGE_AT - now.second) % 60 or 60
        if wait < 10:  # too close: beat and the worker would barely have started
            wait += 60
        time.sleep(wait - now.microsecond / 1e6)
        assert ledger.effects("outage@"), "the app job never ran before the outage"

        down_at = datetime.now(UTC)
        boundary = (down_at + timedelta(minutes=1)).replace(second=0, microsecond=0)
        redis_server.stop()
        time.sleep(OUTAGE_SECONDS)
        redis_server.start()
        back_at = datetime.now(UTC)

        deadline = time.monotonic() + 45
        resumed: list[Any] = []
        ran = None
        while (not resumed or ran is None) and time.monotonic() < deadline:
            resumed = [row for row in ledger.effects("outage@") if row[2] > back_at]
            ran = JobRun.objects.filter(
                job="outage-minutely", scheduled_for=boundary, status="succeeded"
            ).first()
            time.sleep(0.5)
        # The minute boundary after the outage, plus pg_cron's start-up latency.
        boundary_after = (back_at + timedelta(minutes=1)).replace(second=0, microsecond=0)
        while datetime.now(UTC) < boundary_after + timedelta(seconds=5):
            time.sleep(0.5)
    finally:
        beat.stop()
        worker.stop()

    # The plain every-10s app job resumed soon after Redis came back.
    assert resumed, f"no app job ran within 45 s of Redis' return; see {worker.log}, {beat.log}"
    assert resumed[0][2] - back_at <= timedelta(seconds=30), resumed[0]

    # pg_cron ran at every minute boundary, the one inside the outage included.
    ran_minutes = {key.removeprefix("cron@") for key, _slot, _at in ledger.effects("cron@")}
    boundaries = []
    minute = (outage_jobs + timedelta(minutes=1)).replace(second=0, microsecond=0)
    while minute <= boundary_after:
        boundaries.append(minute)
        minute += timedelta(minutes=1)
    inside = [b for b in boundaries if down_at < b < back_at]
    assert inside, "no minute boundary fell inside the outage"
    expected = {b.strftime("%Y-%m-%d %H:%M") for b in boundaries}
    assert expected <= ran_minutes, (
        f"pg_cron missed {sorted(expected - ran_minutes)}; ran {sorted(ran_minutes)}"
    )

    # The minutely slot claimed during the outage was kept and sent once Redis was back.
    assert ran is not None, f"the claimed slot {boundary} never ran; see {beat.log}"
    assert ran.started > back_at
    assert "sent late" in Path(beat.log).read_text()

    # The every-5s slots that passed during the outage are in run history as missed, with why.
    missed = list(
        JobRun.objects.filter(job="outage-every5", status="missed").order_by("scheduled_for")
    )
    assert missed, f"no slot of the every-5s job was recorded missed; see {beat.log}"
    # A slot's instant may fall up to one period before the outage when its send fell in it.
    earliest = down_at - timedelta(seconds=5)
    assert all(earliest <= run.scheduled_for <= back_at for run in missed), missed
    assert all("never sent" in run.message for run in missed)
    assert all(
        "before the slot passed" in run.message or "superseded by the next slot" in run.message
        for run in missed
    )
    assert all("Connection refused" in run.message for run in missed)
    assert JobRun.objects.filter(
        job="outage-every5", status="succeeded", started__gt=back_at
    ).exists(), "the every-5s job did not resume after the outage"
