"""``/metrics``: the history of both engines in Prometheus' text format, read from the
database and Redis at scrape time."""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.models import JobRun, ManagedJob

pytestmark = pytest.mark.django_db


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _job(name: str, engine: str) -> ManagedJob:
    return ManagedJob.objects.create(
        name=name, engine=engine, engine_id=f"m-{name}", spec_hash="0" * 64,
        definition={"name": name, "trigger": {"kind": "cron", "expr": "* * * * *"},
                    "body": {"kind": "sql", "sql": "SELECT 1"}, "timezone": "UTC"},
        applied_at=timezone.now() - timedelta(minutes=10),
    )  # fmt: skip


def test_metrics__runs_durations_last_success_missed_and_queue_depth(settings) -> None:
    """Counts by job/engine/status, the duration summary, the last success time, missed runs
    (an every-minute job with no runs for 10 minutes, labelled with its window), jobs by live
    state and the default queue's LLEN."""
    ManagedJob.objects.all().delete()
    JobRun.objects.all().delete()
    _job("metrics-cron", "pg_cron")
    finished = timezone.now() - timedelta(minutes=1)
    JobRun.objects.bulk_create(
        [
            JobRun(job="metrics-cron", engine="pg_cron", engine_run_id=str(i), status=status,
                   started=finished - timedelta(seconds=2), finished=finished,
                   duration=timedelta(seconds=2), scheduled_for=finished - timedelta(seconds=2))
            for i, status in enumerate(["succeeded", "succeeded", "failed"])
        ]
    )  # fmt: skip
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.delete("default")
    client.rpush("default", "m1", "m2")
    try:
        samples = scrape(Client())
    finally:
        client.delete("default")
        client.close()
    labels = (("engine", "pg_cron"), ("job", "metrics-cron"))
    assert samples[("orchestrator_job_runs_total", (*labels, ("status", "succeeded")))] == 2
    assert samples[("orchestrator_job_runs_total", (*labels, ("status", "failed")))] == 1
    assert samples[("orchestrator_job_run_duration_seconds_count", labels)] == 3
    assert samples[("orchestrator_job_run_duration_seconds_sum", labels)] == pytest.approx(6)
    last = samples[("orchestrator_job_last_success_timestamp_seconds", labels)]
    assert last == pytest.approx(finished.timestamp(), abs=1)
    missed = ("orchestrator_job_missed_runs", (*labels, ("window", "24h")))
    assert samples[missed] >= 7
    assert samples[("orchestrator_queue_depth", (("queue", "default"),))] == 2
    # the registry row has no cron.job behind it: the live state is drift, never "active"
    assert samples[("orchestrator_jobs", (("engine", "pg_cron"), ("state", "drift")))] == 1
    assert ("orchestrator_pg_cron_scheduler_up", ()) in samples


def test_metrics__bearer_token_when_configured(settings) -> None:
    """With ORCHESTRATOR_METRICS_TOKEN set, a scrape without the token is 401, with it 200."""
    settings.ORCHESTRATOR_METRICS_TOKEN = "s3cret-token"
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert scrape(Client(), HTTP_AUTHORIZATION="Bearer s3cret-token")
