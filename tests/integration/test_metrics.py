"""``/metrics`` on the real services: counters fed by run writes (never recounted from the pruned
history), the duration histogram, per-job gauges from the status model, the pending plan, and
the engines' own series (workers up, beat leader, pg_cron's launcher)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.db import connection
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.engines.celery.beat import LeaderLock
from orchestrator.engines.celery.lost_runs import sweep_lost
from orchestrator.engines.celery.metrics import WORKERS_KEY
from orchestrator.models import JobRun, ManagedJob, RunCounter
from tests.integration.cli_helpers import jobs
from tests.integration.reconcile_helpers import clear_engines, write_manifest

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, tuple], float]


def scrape(client: Client | None = None, **headers: str) -> Samples:
    response = (client or Client()).get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def series(samples: Samples, name: str, **labels: str) -> dict[tuple, float]:
    """The samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return {key: value for (n, key), value in samples.items() if n == name and wanted <= set(key)}


def _job(name: str, engine: str) -> ManagedJob:
    return ManagedJob.objects.create(
        name=name, engine=engine, engine_id=f"m-{name}", spec_hash="0" * 64,
        definition={"name": name, "trigger": {"kind": "cron", "expr": "* * * * *"},
                    "body": {"kind": "sql", "sql": "SELECT 1"}, "timezone": "UTC"},
        applied_at=timezone.now() - timedelta(minutes=10),
    )  # fmt: skip


def _run(job: str, run_id: str, status: str, seconds: float | None, **extra) -> JobRun:
    finished = timezone.now() - timedelta(minutes=1)
    return JobRun(
        job=job, engine=extra.pop("engine", "pg_cron"), engine_run_id=run_id, status=status,
        started=finished - timedelta(seconds=seconds or 0), finished=finished,
        duration=None if seconds is None else timedelta(seconds=seconds),
        scheduled_for=finished - timedelta(seconds=seconds or 0), **extra,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def quick_ping(settings) -> None:
    """Scrapes wait for the workers' ping; only the workers' test needs their answers."""
    settings.ORCHESTRATOR_METRICS_PING_MS = 50


@pytest.fixture
def fresh() -> None:
    """Counters and history of this test's transaction only (rolled back after it)."""
    ManagedJob.objects.all().delete()
    JobRun.objects.all().delete()
    RunCounter.objects.all().delete()


def test_metrics__runs_durations_last_success_failure_missed_and_queue_depth(
    settings, fresh
) -> None:
    """Counts by job/engine/status, the duration histogram, the last success and failure times,
    missed runs (an every-minute job with no runs for 10 minutes, labelled with its window),
    jobs by live state and the default queue's LLEN."""
    _job("metrics-cron", "pg_cron")
    JobRun.objects.bulk_create(
        [_run("metrics-cron", str(i), status, 2) for i, status in enumerate(["succeeded"] * 2)]
        + [_run("metrics-cron", "9", "failed", 2)]
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("default")
    client.rpush("default", "m1", "m2")
    try:
        samples = scrape()
    finally:
        client.delete("default")
        client.close()
    labels = (("engine", "pg_cron"), ("job", "metrics-cron"))
    assert samples[("orchestrator_job_runs_total", (*labels, ("status", "succeeded")))] == 2
    assert samples[("orchestrator_job_runs_total", (*labels, ("status", "failed")))] == 1
    assert samples[("orchestrator_job_run_duration_seconds_count", labels)] == 3
    assert samples[("orchestrator_job_run_duration_seconds_sum", labels)] == pytest.approx(6)
    finished = JobRun.objects.filter(job="metrics-cron").first().finished.timestamp()
    for name in ("last_success", "last_failure"):
        when = samples[(f"orchestrator_job_{name}_timestamp_seconds", labels)]
        assert when == pytest.approx(finished, abs=1)
    missed = ("orchestrator_job_missed_runs", (*labels, ("window", "24h")))
    assert samples[missed] >= 7
    assert samples[("orchestrator_queue_depth", (("queue", "default"),))] == 2
    # the registry row has no cron.job behind it: the live state is drift, never "active"
    assert samples[("orchestrator_jobs", (("engine", "pg_cron"), ("state", "drift")))] == 1
    assert samples[("orchestrator_job_drift", labels)] == 1
    assert samples[("orchestrator_job_paused", labels)] == 0
    assert ("orchestrator_pg_cron_scheduler_up", ()) in samples


def test_metrics__counters_never_decrease_across_a_prune(fresh) -> None:
    """Runs recorded, then the upkeep's prune deletes every one of them: no counter or
    histogram sample goes down, and the next run adds exactly one."""
    JobRun.objects.bulk_create(
        [_run("pruned", f"p{i}", status, i) for i, status in enumerate(["succeeded"] * 3)]
        + [_run("pruned", "pf", "failed", 30), _run("pruned", "pl", "lost", None)]
    )
    before = scrape()
    with connection.cursor() as cursor:
        cursor.execute("SELECT orchestrator_prune_run_history(0)")
        assert cursor.fetchone()[0] == 5
    assert not JobRun.objects.filter(job="pruned").exists()
    after = scrape()
    counted = {
        key: value
        for key, value in before.items()
        if key[0].startswith(("orchestrator_job_runs_total", "orchestrator_job_run_duration"))
        and ("job", "pruned") in key[1]
    }
    assert len(counted) > 10  # 3 statuses: a count each, and their histograms
    for key, value in counted.items():
        assert after[key] >= value, key
    assert after[("orchestrator_job_runs_total", (("engine", "pg_cron"), ("job", "pruned"),
                                                  ("status", "succeeded")))] == 3  # fmt: skip
    JobRun.objects.create(**_fields(_run("pruned", "p9", "succeeded", 1)))
    again = scrape()
    key = ("orchestrator_job_runs_total", (("engine", "pg_cron"), ("job", "pruned"),
                                           ("status", "succeeded")))  # fmt: skip
    assert again[key] == 4


def _fields(run: JobRun) -> dict:
    return {f.name: getattr(run, f.name) for f in JobRun._meta.fields if f.name != "id"}


def test_metrics__histogram_buckets_cumulative_and_consistent(fresh) -> None:
    """Buckets are cumulative (never smaller at a larger ``le``), ``+Inf`` equals ``_count``,
    ``_sum`` is the sum of the durations, and each duration lands in the first bucket whose
    bound is not below it (``le`` is inclusive), over every status that did work (a failure's
    time included, a skipped run's not). Runs without a duration are counted as runs, not as
    observations."""
    durations = [0.05, 1, 2, 700]
    JobRun.objects.bulk_create(
        [_run("timed", f"t{i}", "succeeded", seconds) for i, seconds in enumerate(durations)]
        + [_run("timed", "untimed", "succeeded", None), _run("timed", "f", "failed", 2)]
        + [_run("timed", "s", "skipped", 0.01)]
    )
    samples = scrape()
    labels = (("engine", "pg_cron"), ("job", "timed"))
    buckets = {
        dict(key)["le"]: value
        for key, value in series(samples, "orchestrator_job_run_duration_seconds_bucket").items()
        if set(labels) <= set(key)
    }
    bounds = sorted(buckets, key=float)
    assert bounds[-1] == "+Inf"
    assert len(bounds) > 5
    counts = [buckets[bound] for bound in bounds]
    assert counts == sorted(counts)
    assert (buckets["0.1"], buckets["1"], buckets["5"], buckets["300"], buckets["900"]) == (
        1, 2, 4, 4, 5,
    )  # fmt: skip
    assert buckets["+Inf"] == samples[("orchestrator_job_run_duration_seconds_count", labels)] == 5
    assert samples[("orchestrator_job_run_duration_seconds_sum", labels)] == pytest.approx(705.05)
    ok = (*labels, ("status", "succeeded"))
    assert samples[("orchestrator_job_runs_total", ok)] == 5
    assert samples[("orchestrator_job_runs_total", (*labels, ("status", "skipped")))] == 1
    # every histogram in the scrape is cumulative and ends at its count
    for (name, key), value in samples.items():
        if name == "orchestrator_job_run_duration_seconds_count":
            mine = {
                dict(k)["le"]: v
                for k, v in series(samples, "orchestrator_job_run_duration_seconds_bucket").items()
                if set(key) <= set(k)
            }
            ordered = [mine[b] for b in sorted(mine, key=float)]
            assert ordered == sorted(ordered)
            assert ordered[-1] == value


def _count(job: str, status: str, engine: str = "celery") -> int:
    row = RunCounter.objects.filter(job=job, engine=engine, status=status).first()
    return 0 if row is None else row.runs


def test_metrics__every_write_path_counts_a_finish_once(fresh) -> None:
    """A run counts once when it reaches a finished status, however it gets there: a Celery
    row going queued -> running -> succeeded (re-saving it counts nothing more), the lost-run
    sweep's bulk UPDATE, and a status the counters have never seen (the coming "failed for
    good"), with no schema change. (pg_cron's importer: tests/integration/test_history.py.)"""
    run = JobRun.objects.create(
        job="paths", engine="celery", engine_run_id="c1", status="queued", scheduled_for=None
    )
    assert _count("paths", "queued") == 0
    run.status, run.started = "running", timezone.now()
    run.save()
    assert _count("paths", "running") == 0
    run.status, run.finished, run.duration = "succeeded", timezone.now(), timedelta(seconds=3)
    run.save()
    run.message = "output"
    run.save()
    assert _count("paths", "succeeded") == 1

    JobRun.objects.create(
        job="paths", engine="celery", engine_run_id="c2", status="running",
        started=timezone.now() - timedelta(days=2),
    )  # fmt: skip
    assert sweep_lost(limit_seconds=60) >= 1
    assert _count("paths", "lost") == 1

    with connection.cursor() as cursor:  # rolled back with the test
        cursor.execute("ALTER TABLE orchestrator_jobrun DROP CONSTRAINT job_run_status_known")
    JobRun.objects.filter(engine_run_id="c1").update(status="failed for good")
    assert _count("paths", "failed for good") == 1
    samples = scrape()
    labels = (("engine", "celery"), ("job", "paths"))
    assert samples[("orchestrator_job_runs_total", (*labels, ("status", "failed for good")))] == 1
    assert ("orchestrator_job_last_failure_timestamp_seconds", labels) in samples


@pytest.fixture
def empty_engines() -> Iterator[None]:
    """No pg_cron job or periodic task of another test, and none left behind (pg_cron would
    run them after the test)."""
    clear_engines()
    yield
    clear_engines()


def test_metrics__job_gauges_and_pending_plan_on_real_engines(
    settings, tmp_path: Path, empty_engines, fresh
) -> None:
    """Applied to pg_cron and django-celery-beat: an active job has a next run in the future
    and its running run's start as last run; a paused one is paused, with neither. A hand edit
    in pg_cron shows as drift, a job added to the manifest as a pending create (the drift as a
    pending drift), and a manifest that does not validate as ``manifest_valid 0``."""

    text = """
        version: 1
        jobs:
          gauge-sql:
            schedule: "0 3 * * *"
            target: pg_cron
            sql: SELECT 1
          gauge-task:
            schedule: "@hourly"
            task: orchestrator.ping
        """
    path = write_manifest(tmp_path, text)
    settings.ORCHESTRATOR_MANIFEST = str(path)
    assert jobs("apply", "--manifest", str(path), "--yes")[0] == 0
    assert jobs("pause", "gauge-task")[0] == 0
    ran = JobRun.objects.create(**_fields(_run("gauge-sql", "g1", "running", None)))
    samples = scrape()
    sql = (("engine", "pg_cron"), ("job", "gauge-sql"))
    task = (("engine", "celery"), ("job", "gauge-task"))
    upcoming = samples[("orchestrator_job_next_run_timestamp_seconds", sql)]
    assert time.time() < upcoming <= time.time() + 86400
    assert ("orchestrator_job_next_run_timestamp_seconds", task) not in samples
    last = samples[("orchestrator_job_last_run_timestamp_seconds", sql)]
    assert last == pytest.approx(ran.started.timestamp(), abs=0.01)
    assert ("orchestrator_job_last_run_timestamp_seconds", task) not in samples
    assert samples[("orchestrator_job_paused", task)] == 1
    assert samples[("orchestrator_job_paused", sql)] == 0
    assert samples[("orchestrator_job_drift", sql)] == 0
    assert samples[("orchestrator_plan_pending_changes", (("action", "create"),))] == 0
    assert samples[("orchestrator_manifest_valid", ())] == 1

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT orchestrator_cron.alter_job(%s, '5 3 * * *', NULL, NULL, NULL)",
            [int(ManagedJob.objects.get(name="gauge-sql").engine_id)],
        )
    path.write_text(path.read_text() + "  gauge-new:\n    schedule: '@daily'\n    sql: SELECT 2\n")
    samples = scrape()
    assert samples[("orchestrator_job_drift", sql)] == 1
    assert samples[("orchestrator_plan_pending_changes", (("action", "create"),))] == 1
    assert samples[("orchestrator_plan_pending_changes", (("action", "drift"),))] == 1

    path.write_text("version: 1\njobs:\n  Bad Name: {}\n")
    samples = scrape()
    assert samples[("orchestrator_manifest_valid", ())] == 0


def test_metrics__workers_beat_leader_and_pg_cron_launcher_on_real_services(
    settings, celery_worker
) -> None:
    """The real worker answers its ping (up 1); a worker that answered before and does not now
    is 0; the beat leader's lock held by a LeaderLock (beat's own) reads 1, released 0; the
    profile's pg_cron launcher is up."""
    settings.ORCHESTRATOR_METRICS_PING_MS = 1000  # a loaded machine answers late
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.hset(WORKERS_KEY, "gone@nowhere", time.time() - 60)
    client.hset(WORKERS_KEY, "forgotten@nowhere", time.time() - 30 * 86400)
    lock = LeaderLock()
    try:
        assert lock.try_acquire(), "another beat holds the leader lock"
        samples = scrape()
        assert samples[("orchestrator_beat_leader_present", ())] == 1
        lock.release()
        settings.ORCHESTRATOR_METRICS_PING_MS = 50
        after = scrape()
    finally:
        lock.release()
        client.hdel(WORKERS_KEY, "gone@nowhere", "forgotten@nowhere")
        client.close()
    assert samples[("orchestrator_worker_up", (("worker", celery_worker.hostname),))] == 1
    assert samples[("orchestrator_worker_up", (("worker", "gone@nowhere"),))] == 0
    assert ("orchestrator_worker_up", (("worker", "forgotten@nowhere"),)) not in samples
    assert after[("orchestrator_beat_leader_present", ())] == 0
    assert samples[("orchestrator_pg_cron_launcher_up", ())] == 1
    since = samples[("orchestrator_pg_cron_launcher_start_timestamp_seconds", ())]
    assert since < time.time()


def test_metrics__bearer_token_when_configured(settings) -> None:
    """With ORCHESTRATOR_METRICS_TOKEN set, a scrape without the token is 401, with it 200."""
    settings.ORCHESTRATOR_METRICS_TOKEN = "s3cret-token"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(Client(), HTTP_AUTHORIZATION="Bearer s3cret-token")
