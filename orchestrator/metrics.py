"""``/metrics``: the run history of both engines in Prometheus' text format.

Everything is read at scrape time from PostgreSQL (the history is the source of truth; no
process-local counters that each gunicorn worker would hold a different share of), plus queue
depths from Redis (``orchestrator.engines.celery.fleet``: ``LLEN`` of each queue over kombu's
priority lists).

- ``orchestrator_job_runs_total{job,engine,status}``: runs recorded;
- ``orchestrator_job_run_duration_seconds{job,engine}``: a summary (``_sum``/``_count``) of
  finished runs' durations;
- ``orchestrator_job_last_success_timestamp_seconds{job,engine}``;
- ``orchestrator_job_missed_runs{job,engine,window="24h"}``: missed in the window, the number
  every view shows (``orchestrator.status``, ``orchestrator.missed``);
- ``orchestrator_jobs{engine,state}``: jobs by their live state (``orchestrator.status``);
- ``orchestrator_queue_depth{queue}``;
- ``orchestrator_scheduler_up{engine}`` (1 when the engine's scheduler runs what is due: pg_cron
  running or idle, a Celery beat leader present) with ``orchestrator_scheduler_info{engine,state}``,
  read through each backend's ``health()``; ``orchestrator_pg_cron_scheduler_up`` is kept.

When ``settings.ORCHESTRATOR_METRICS_TOKEN`` is set, a scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)

from orchestrator import missed
from orchestrator.engines import backends
from orchestrator.status import job_statuses

logger = logging.getLogger(__name__)

RUNS_SQL = """
SELECT job, engine, status, count(*),
       coalesce(sum(extract(epoch FROM duration)) FILTER (WHERE duration IS NOT NULL), 0),
       count(duration),
       extract(epoch FROM max(finished) FILTER (WHERE status = 'succeeded'))
  FROM orchestrator_jobrun
 GROUP BY job, engine, status
"""


class HistoryCollector:
    """A prometheus_client collector reading the history at scrape time."""

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "orchestrator_job_runs", "Runs recorded, by job, engine and status",
            labels=["job", "engine", "status"],
        )  # fmt: skip
        durations = SummaryMetricFamily(
            "orchestrator_job_run_duration_seconds", "Durations of finished runs",
            labels=["job", "engine"],
        )  # fmt: skip
        last_success = GaugeMetricFamily(
            "orchestrator_job_last_success_timestamp_seconds",
            "When the job's newest successful run finished (Unix time)",
            labels=["job", "engine"],
        )
        with connection.cursor() as cursor:
            cursor.execute(RUNS_SQL)
            rows = cursor.fetchall()
        sums: dict[tuple[str, str], list[float]] = {}
        latest: dict[tuple[str, str], float] = {}
        for job, engine, status, count, total, finished, success_at in rows:
            runs.add_metric([job, engine, status], count)
            pair = sums.setdefault((job, engine), [0, 0.0])
            pair[0] += int(finished)
            pair[1] += float(total)
            if success_at is not None:
                latest[(job, engine)] = max(float(success_at), latest.get((job, engine), 0.0))
        for (job, engine), (count, total) in sorted(sums.items()):
            durations.add_metric([job, engine], count_value=int(count), sum_value=total)
        for (job, engine), when in sorted(latest.items()):
            last_success.add_metric([job, engine], when)
        yield runs
        yield durations
        yield last_success
        yield from self._jobs()
        for backend in backends().values():
            yield from backend.metric_families()
        yield from self._scheduler()

    def _jobs(self) -> Iterator[Metric]:
        statuses = job_statuses()
        states = GaugeMetricFamily(
            "orchestrator_jobs", "Managed jobs by engine and live state", labels=["engine", "state"]
        )
        counted: dict[tuple[str, str], int] = {}
        for found in statuses:
            key = (found.job.engine, found.state.value)
            counted[key] = counted.get(key, 0) + 1
        for (engine, state), count in sorted(counted.items()):
            states.add_metric([engine, state], count)
        yield states
        missed_runs = GaugeMetricFamily(
            "orchestrator_job_missed_runs",
            f"Scheduled runs missed in the last {missed.WINDOW_LABEL} (window label)",
            labels=["job", "engine", "window"],
        )
        for found in sorted(statuses, key=lambda s: s.name):
            if found.missed is not None:
                missed_runs.add_metric(
                    [found.name, found.job.engine, missed.WINDOW_LABEL], found.missed_count
                )
        yield missed_runs

    def _scheduler(self) -> Iterator[Metric]:
        healths = [backend.health() for backend in backends().values()]
        up = GaugeMetricFamily(
            "orchestrator_scheduler_up",
            "1 when the engine's scheduler runs what is due (or nothing is due), else 0",
            labels=["engine"],
        )
        info = GaugeMetricFamily(
            "orchestrator_scheduler_info",
            "each engine's scheduler state",
            labels=["engine", "state"],
        )
        for health in healths:
            up.add_metric([health.engine], 1 if health.healthy else 0)
            info.add_metric([health.engine, health.state], 1)
        yield up
        yield info
        # The pg_cron series by their first names, which dashboards and alerts already use.
        for health in healths:
            if health.engine == "pg_cron":
                legacy = GaugeMetricFamily(
                    "orchestrator_pg_cron_scheduler_up",
                    "1 when pg_cron started every job that was due (or none was due), else 0",
                )
                legacy.add_metric([], 1 if health.healthy else 0)
                yield legacy


def _authorised(request: HttpRequest) -> bool:
    token = settings.ORCHESTRATOR_METRICS_TOKEN or ""
    if not token:
        return True
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        return HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HistoryCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
