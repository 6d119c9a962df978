"""``jobs history``, ``jobs run --wait``, missed-run counts and ``explain --next`` on the real
services: one number for missed runs in every view, counted only when the job was meant to
run, with each engine's own reading of its schedule (DST days included)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.missed import Missed
from orchestrator.models import JobRun, ManagedJob
from orchestrator.status import job_status
from tests.integration.cli_helpers import apply, jobs
from tests.integration.reconcile_helpers import clear_engines, write_manifest


@pytest.fixture(autouse=True)
def empty_engines() -> Iterator[None]:
    """Each test starts from empty engines and leaves none behind (pg_cron would keep running
    a test's jobs after the test)."""
    clear_engines()
    yield
    clear_engines()


def applied_ago(name: str, minutes: int) -> None:
    """As if the job had been applied ``minutes`` ago (a test cannot wait half an hour)."""
    ManagedJob.objects.filter(name=name).update(
        applied_at=timezone.now() - timedelta(minutes=minutes)
    )


# --------------------------------------------------------------------------- history, run --wait


@pytest.mark.django_db(transaction=True)
def test_run_wait__exits_with_the_outcome_and_history_lists_it(
    tmp_path: Path, celery_worker
) -> None:
    """`jobs run NAME --wait` follows the run on the real worker: exit 0 and `succeeded` for a
    good job, exit 1 and the database's error for a failing one; `jobs list` shows each one's
    last run and its status. `jobs history` then lists
    both newest first with started, finished, duration, status, attempt, engine and error,
    and filters by name and status."""
    apply(
        tmp_path,
        """
        version: 1
        jobs:
          good-job:
            schedule: "@daily"
            task: orchestrator.ping
          bad-job:
            schedule: "@daily"
            target: celery
            sql: SELECT 1 / 0
        """,
    )
    status, out, _ = jobs("run", "good-job", "--wait", "--timeout", "60", "--format", "json")
    assert status == 0
    good = json.loads(out)
    assert good["status"] == "succeeded"
    assert good["error"] == ""
    status, out, err = jobs("run", "bad-job", "--wait", "--timeout", "60")
    assert status == 1, err
    assert out.splitlines()[-1].startswith("bad-job: failed_final after")
    assert "division by zero" in out

    listed = {row["name"]: row for row in json.loads(jobs("list", "--format", "json")[1])}
    assert listed["good-job"]["last_run"]["status"] == "succeeded"
    assert listed["bad-job"]["last_run"]["status"] == "failed_final"
    status, out, _ = jobs("history", "--format", "json")
    assert status == 0
    rows = json.loads(out)
    assert [row["job"] for row in rows[:2]] == ["bad-job", "good-job"]
    bad = rows[0]
    assert bad["status"] == "failed_final"
    assert bad["engine"] == "celery"
    assert bad["attempt"] == 1
    assert "division by zero" in bad["error"]
    assert bad["started"] <= bad["finished"]
    assert bad["duration_seconds"] >= 0
    only = json.loads(jobs("history", "good-job", "--format", "json")[1])
    assert {row["job"] for row in only} == {"good-job"}
    failed = json.loads(jobs("history", "--status", "failed_final", "--format", "json")[1])
    assert "bad-job" in {row["job"] for row in failed}
    assert {row["status"] for row in failed} == {"failed_final"}
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert json.loads(jobs("history", "--since", future, "--format", "json")[1]) == []
    status, out, _ = jobs("history", "--limit", "1")
    assert status == 0
    assert out.splitlines()[-1] == "1 runs"
    assert jobs("history", "--since", "yesterday")[0] == 1


# --------------------------------------------------------------------------- missed runs


def missed_everywhere(name: str) -> set[int]:
    """The missed count `jobs list`, /metrics, the admin list and the admin page show."""
    listed = {row["name"]: row for row in json.loads(jobs("list", "--format", "json")[1])}
    numbers = {listed[name]["missed_24h"]}
    text = Client().get("/metrics").content.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "orchestrator_job_missed_runs" and sample.labels["job"] == name:
                assert sample.labels["window"] == "24h"
                numbers.add(int(sample.value))
    user = User.objects.filter(username="missed-admin").first() or User.objects.create_superuser(
        "missed-admin", "m@example.com", "pw-missed-admin"
    )
    client = Client()
    client.force_login(user)
    page = client.get(reverse("admin:orchestrator_managedjob_changelist")).content.decode()
    row = re.search(rf'class="orch-name">{re.escape(name)}</span>.*?</tr>', page, flags=re.S)
    assert row is not None
    # the list's state column says "N missed" under the state, and nothing when none are
    assert '<td class="field-state_col">' in row.group(0)
    cell = re.search(r'class="orch-missed"[^>]*>(\d+) missed<', row.group(0))
    numbers.add(int(cell.group(1)) if cell else 0)
    pk = ManagedJob.objects.get(name=name).pk
    detail = client.get(reverse("admin:orchestrator_managedjob_change", args=[pk])).content
    found = re.search(r'class="orch-missed">(\d+)', detail.decode())
    assert found is not None
    numbers.add(int(found.group(1)))
    return numbers


def settle_minute() -> None:
    """Start after second 5 and before second 45, so one minute's counts are compared."""
    while not 5 <= datetime.now(UTC).second < 45:
        time.sleep(0.5)


@pytest.mark.django_db
def test_missed__one_number_everywhere_and_none_while_paused(tmp_path: Path) -> None:
    """An every-minute Celery job applied 30 minutes ago that never ran has ~28 missed runs:
    the same number in `jobs list`, /metrics (window="24h"), the admin's list and its page.
    Paused by the CLI it owes nothing (0 everywhere); resumed, it owes only from the resume."""
    apply(
        tmp_path,
        """
        version: 1
        jobs:
          silent:
            schedule: "* * * * *"
            task: orchestrator.ping
        """,
    )
    applied_ago("silent", 30)
    settle_minute()
    numbers = missed_everywhere("silent")
    assert len(numbers) == 1, numbers
    assert 27 <= numbers.pop() <= 30
    jobs("pause", "silent")
    assert missed_everywhere("silent") == {0}
    jobs("resume", "silent")
    assert missed_everywhere("silent") == {0}  # the paused half hour is not owed


def missed_at(name: str, now: datetime) -> Missed:
    found = job_status(name, now=now)
    assert found is not None
    assert found.missed is not None
    return found.missed


def scheduled_run(name: str, engine: str, slot: datetime, run_id: str) -> JobRun:
    return JobRun(
        job=name, engine=engine, engine_run_id=run_id, status="succeeded",
        scheduled_for=slot, started=slot, finished=slot + timedelta(seconds=1),
    )  # fmt: skip


@pytest.mark.django_db
def test_missed__retired_and_expired_jobs_owe_nothing_after_they_end(tmp_path: Path) -> None:
    """`max_runs: 2` with runs at its 11th and 12th slot of 30: 10 missed before, none after
    it retired. `expires` 5 minutes after apply: seen 30 minutes later, only the ~5 slots
    before the expiry are owed."""
    expires = (timezone.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    apply(
        tmp_path,
        f"""
        version: 1
        jobs:
          twice:
            schedule: "* * * * *"
            task: orchestrator.ping
            max_runs: 2
          ending:
            schedule: "* * * * *"
            task: orchestrator.ping
            expires: "{expires.isoformat()}"
        """,
    )
    applied = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    ManagedJob.objects.filter(name="twice").update(applied_at=applied)
    JobRun.objects.bulk_create(
        [
            scheduled_run("twice", "celery", applied + timedelta(minutes=11), "t1"),
            scheduled_run("twice", "celery", applied + timedelta(minutes=12), "t2"),
        ]
    )
    twice = job_status("twice")
    assert twice is not None
    assert twice.state == "retired"
    assert twice.missed is not None
    assert twice.missed.missed == 10
    assert twice.next_run is None

    later = timezone.now() + timedelta(minutes=30)
    ending = job_status("ending", now=later)
    assert ending is not None
    assert ending.state == "expired"
    assert ending.missed is not None
    assert 4 <= ending.missed.missed <= 5
    assert max(ending.missed.instants) <= expires


@pytest.mark.django_db
def test_missed__counted_with_celerys_reading_on_dst_days(tmp_path: Path) -> None:
    """A Celery job at 02:30 New York time owes the run Celery really makes on 2027-03-14
    (03:30 EDT, not croniter's 03:00), and a job at 01:30 owes one run on 2027-11-07, not two."""
    apply(
        tmp_path,
        """
        version: 1
        defaults:
          timezone: America/New_York
        jobs:
          spring:
            schedule: "30 2 * * *"
            task: orchestrator.ping
          autumn:
            schedule: "30 1 * * *"
            task: orchestrator.ping
        """,
    )
    spring_day = datetime(2027, 3, 14, 20, tzinfo=UTC)
    autumn_day = datetime(2027, 11, 7, 20, tzinfo=UTC)
    ManagedJob.objects.filter(name="spring").update(applied_at=spring_day - timedelta(hours=32))
    ManagedJob.objects.filter(name="autumn").update(applied_at=autumn_day - timedelta(hours=32))
    spring = missed_at("spring", spring_day)
    assert list(spring.instants) == [datetime(2027, 3, 14, 7, 30, tzinfo=UTC)]
    autumn = missed_at("autumn", autumn_day)
    assert list(autumn.instants) == [datetime(2027, 11, 7, 5, 30, tzinfo=UTC)]
    JobRun.objects.create(
        job="spring", engine="celery", engine_run_id="s1", status="succeeded",
        scheduled_for=datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
    )  # fmt: skip
    assert missed_at("spring", spring_day).missed == 0


@pytest.mark.django_db
def test_missed__pg_cron_job_counted_in_gmt(tmp_path: Path) -> None:
    """A pg_cron job '0 * * * *' applied 5 hours before a chosen instant owes the 5 hours on
    the GMT clock; each recorded pg_cron run fills its slot."""
    apply(
        tmp_path,
        """
        version: 1
        jobs:
          hourly-sql:
            schedule: "0 * * * *"
            target: pg_cron
            sql: SELECT 1
        """,
    )
    now = datetime(2027, 7, 1, 12, 10, tzinfo=UTC)
    ManagedJob.objects.filter(name="hourly-sql").update(applied_at=now - timedelta(hours=5))
    JobRun.objects.create(
        job="hourly-sql", engine="pg_cron", engine_run_id="gmt-test-run", status="succeeded",
        scheduled_for=datetime(2027, 7, 1, 9, 0, tzinfo=UTC),
    )  # fmt: skip
    found = missed_at("hourly-sql", now)
    assert found.expected == 5
    assert sorted(instant.hour for instant in found.instants) == [8, 10, 11, 12]


# --------------------------------------------------------------------------- explain --next


@pytest.mark.django_db
def test_explain__next_runs_are_celerys_on_dst_days(tmp_path: Path) -> None:
    """`explain --next` lists what Celery will run: 03:30 EDT on the spring-forward day, and
    01:30 once on the fall-back day; a pg_cron job's next runs are on the GMT clock."""
    path = str(
        write_manifest(
            tmp_path,
            """
            version: 1
            jobs:
              ny-spring:
                schedule: "30 2 * * *"
                timezone: America/New_York
                task: orchestrator.ping
              ny-autumn:
                schedule: "30 1 * * *"
                timezone: America/New_York
                task: orchestrator.ping
              gmt-sql:
                schedule: "0 23 * * *"
                sql: SELECT 1
            """,
        )
    )

    def next_runs(name: str, after: str, count: int = 2) -> list[str]:
        status, out, err = jobs(
            "explain", name, "--manifest", path, "--format", "json",
            "--next", str(count), "--after", after,
        )  # fmt: skip
        assert status == 0, err
        return json.loads(out)["next_runs"]

    assert next_runs("ny-spring", "2027-03-13T12:00:00+00:00") == [
        "2027-03-14T03:30:00-04:00",
        "2027-03-15T02:30:00-04:00",
    ]
    assert next_runs("ny-autumn", "2027-11-06T12:00:00+00:00") == [
        "2027-11-07T01:30:00-04:00",
        "2027-11-08T01:30:00-05:00",
    ]
    assert next_runs("gmt-sql", "2027-03-13T12:00:00+00:00") == [
        "2027-03-13T23:00:00+00:00",
        "2027-03-14T23:00:00+00:00",
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM cron.job")
        assert cursor.fetchone()[0] == 0  # explain changes nothing
