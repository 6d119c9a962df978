"""``/metrics``: runs, job states, the pending plan and the engines' health for Prometheus.

Read at scrape time, so every gunicorn worker answers the same (no process-local counters,
each holding a different share). Names follow Prometheus' conventions: base units in the name
(``_seconds``, ``_timestamp_seconds``), ``_total`` for counters. Per job, labels are
``job`` and ``engine``.

Runs (``orchestrator_runcounter``, fed by triggers on every run write, never recounted from
the pruned history, so counters only go up):

- ``orchestrator_job_runs_total{job,engine,status}``: runs that reached each finished status;
- ``orchestrator_job_run_duration_seconds{job,engine}``: a histogram (``_bucket``, ``_sum``,
  ``_count``) of the durations of runs that did their work (every finished status but
  ``skipped`` and ``missed``, whose near-zero times would hide real ones). Not by status: a
  histogram is 14 series, and per status it would be 5 times that for every job;
- ``orchestrator_job_last_success_timestamp_seconds`` / ``..._last_failure_...``: when the
  newest run that succeeded / failed finished (Unix time). Failure is any finished status
  but ``succeeded``, ``skipped``, ``retried`` (another attempt follows) and ``missed``
  (counted as missed runs): ``failed``, ``lost`` and any final failure status added later.

Jobs, from the one status model (``orchestrator.status``), so no view disagrees with another:

- ``orchestrator_job_next_run_timestamp_seconds`` (only when the engine will run it),
  ``orchestrator_job_last_run_timestamp_seconds`` (the newest run's start);
- ``orchestrator_job_paused``, ``orchestrator_job_drift`` (1 or 0);
- ``orchestrator_job_missed_runs{job,engine,window="24h"}``; ``orchestrator_jobs{engine,state}``.

The manifest against the engines (the plan ``jobs plan`` shows; its placement is cached):
``orchestrator_plan_pending_changes{action}`` and ``orchestrator_manifest_valid``.

Engines: each backend's ``metric_families`` (queue depths, workers up, beat leader present,
pg_cron's launcher) and ``orchestrator_scheduler_up{engine}`` / ``orchestrator_scheduler_info``
from each backend's ``health()``; ``orchestrator_pg_cron_scheduler_up`` is kept.

When ``settings.ORCHESTRATOR_METRICS_TOKEN`` is set, a scrape must send it as a bearer token.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from orchestrator import missed
from orchestrator.engines import backends
from orchestrator.engines.base import Backend, LiveJob
from orchestrator.errors import OrchestratorError
from orchestrator.models import RunStatus
from orchestrator.status import JobStatus, State, job_statuses

logger = logging.getLogger(__name__)

#: finished statuses that are not a failure of the job (see the module docstring)
NOT_FAILURES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.SKIPPED, RunStatus.RETRIED, RunStatus.MISSED}
)
#: statuses whose durations are not the job's work (not in the duration histogram)
UNTIMED = frozenset({RunStatus.SKIPPED, RunStatus.MISSED})
#: plan actions that change something (``unchanged`` is not pending)
PENDING_ACTIONS = ("create", "update", "drift", "delete")

COUNTERS_SQL = """
SELECT job, engine, status, runs, timed, duration_seconds, duration_le,
       extract(epoch FROM last_finished)
  FROM orchestrator_runcounter
 ORDER BY job, engine, status
"""
BOUNDS_SQL = "SELECT orchestrator_run_duration_bounds()"


class _LiveOnce:
    """A backend whose ``live()`` is read once per scrape: the status model and the plan both
    need every engine's jobs, and reading them twice would double a scrape's cost."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._live: dict[str, LiveJob] | None = None

    def live(self) -> dict[str, LiveJob]:
        if self._live is None:
            self._live = self._backend.live()
        return self._live

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _bound_label(bound: float) -> str:
    return f"{bound:g}"


def run_families() -> Iterator[Metric]:
    """Counters, duration histograms and last success/failure times, from the counters."""
    runs = CounterMetricFamily(
        "orchestrator_job_runs",
        "Runs that reached each finished status (counted as they finish; pruning keeps them)",
        labels=["job", "engine", "status"],
    )
    durations = HistogramMetricFamily(
        "orchestrator_job_run_duration_seconds",
        "Durations of finished runs (not skipped or missed ones)",
        labels=["job", "engine"],
    )
    last_success = GaugeMetricFamily(
        "orchestrator_job_last_success_timestamp_seconds",
        "When the job's newest successful run finished (Unix time)",
        labels=["job", "engine"],
    )
    last_failure = GaugeMetricFamily(
        "orchestrator_job_last_failure_timestamp_seconds",
        "When the job's newest failed or lost run finished (Unix time)",
        labels=["job", "engine"],
    )
    with connection.cursor() as cursor:
        cursor.execute(BOUNDS_SQL)
        (bounds,) = cursor.fetchone()
        cursor.execute(COUNTERS_SQL)
        rows = cursor.fetchall()
    successes: dict[tuple[str, str], float] = {}
    failures: dict[tuple[str, str], float] = {}
    #: (job, engine) -> cumulative counts per bound, then the count (+Inf) and the sum
    histograms: dict[tuple[str, str], list[float]] = {}
    for job, engine, status, count, timed, total, cumulative, finished_at in rows:
        runs.add_metric([job, engine, status], count)
        if status not in UNTIMED:
            # A sum of rows that each only grow: the histogram only grows too.
            into = histograms.setdefault((job, engine), [0.0] * (len(bounds) + 2))
            for index, value in enumerate([*cumulative, timed, total]):
                into[index] += float(value)
        if finished_at is None:
            continue
        if status == RunStatus.SUCCEEDED:
            latest = successes
        elif status in NOT_FAILURES:
            continue
        else:
            latest = failures
        key = (job, engine)
        latest[key] = max(float(finished_at), latest.get(key, 0.0))
    labels = [*(_bound_label(bound) for bound in bounds), "+Inf"]
    for (job, engine), values in sorted(histograms.items()):
        buckets = list(zip(labels, values[:-1], strict=True))
        durations.add_metric([job, engine], buckets, sum_value=values[-1])
    for (job, engine), when in sorted(successes.items()):
        last_success.add_metric([job, engine], when)
    for (job, engine), when in sorted(failures.items()):
        last_failure.add_metric([job, engine], when)
    yield from (runs, durations, last_success, last_failure)


def _timestamp(when: datetime | None) -> float | None:
    return None if when is None else when.timestamp()


def job_families(statuses: list[JobStatus]) -> Iterator[Metric]:
    """Per job: next and last run, paused, drift, missed runs; jobs by state."""
    labels = ["job", "engine"]
    next_run = GaugeMetricFamily(
        "orchestrator_job_next_run_timestamp_seconds",
        "When the engine will next start the job (Unix time); absent when it will not",
        labels=labels,
    )
    last_run = GaugeMetricFamily(
        "orchestrator_job_last_run_timestamp_seconds",
        "When the job's newest recorded run started (Unix time)",
        labels=labels,
    )
    paused = GaugeMetricFamily(
        "orchestrator_job_paused", "1 when an operator paused the job", labels=labels
    )
    drift = GaugeMetricFamily(
        "orchestrator_job_drift",
        "1 when the engine differs from what the orchestrator applied",
        labels=labels,
    )
    missed_runs = GaugeMetricFamily(
        "orchestrator_job_missed_runs",
        f"Scheduled runs missed in the last {missed.WINDOW_LABEL} (window label)",
        labels=["job", "engine", "window"],
    )
    states = GaugeMetricFamily(
        "orchestrator_jobs", "Managed jobs by engine and live state", labels=["engine", "state"]
    )
    counted: dict[tuple[str, str], int] = {}
    for found in sorted(statuses, key=lambda s: s.name):
        key = [found.name, found.job.engine]
        counted[(found.job.engine, found.state.value)] = (
            counted.get((found.job.engine, found.state.value), 0) + 1
        )
        upcoming = _timestamp(found.next_run)
        if upcoming is not None:
            next_run.add_metric(key, upcoming)
        last = found.last_run
        started = None if last is None else _timestamp(last.started or last.finished)
        if started is not None:
            last_run.add_metric(key, started)
        paused.add_metric(key, 1 if found.state == State.PAUSED else 0)
        drift.add_metric(key, 1 if found.state == State.DRIFT else 0)
        if found.missed is not None:
            missed_runs.add_metric([*key, missed.WINDOW_LABEL], found.missed_count)
    for (engine, state), count in sorted(counted.items()):
        states.add_metric([engine, state], count)
    yield from (next_run, last_run, paused, drift, missed_runs, states)


def plan_families(engines: Mapping[str, Backend]) -> Iterator[Metric]:
    """How many changes ``jobs apply --prune`` would make now, by action."""
    from orchestrator import desired, reconcile  # the planner loads only when scraped

    pending = GaugeMetricFamily(
        "orchestrator_plan_pending_changes",
        "Changes the manifest's plan would make (jobs plan), by action",
        labels=["action"],
    )
    valid = GaugeMetricFamily(
        "orchestrator_manifest_valid", "1 when the manifest loads, validates and plans"
    )
    try:
        plan = reconcile.plan(desired.place_file(), backends=engines)
    except OrchestratorError as error:
        logger.warning("metrics: the manifest does not plan", extra={"error": str(error)})
        valid.add_metric([], 0)
        yield from (pending, valid)
        return
    summary = plan.summary()
    for action in PENDING_ACTIONS:
        pending.add_metric([action], summary.get(action, 0))
    valid.add_metric([], 1)
    yield from (pending, valid)


def scheduler_families(engines: Mapping[str, Backend]) -> Iterator[Metric]:
    healths = [backend.health() for backend in engines.values()]
    up = GaugeMetricFamily(
        "orchestrator_scheduler_up",
        "1 when the engine's scheduler runs what is due (or nothing is due), else 0",
        labels=["engine"],
    )
    info = GaugeMetricFamily(
        "orchestrator_scheduler_info", "each engine's scheduler state", labels=["engine", "state"]
    )
    for health in healths:
        up.add_metric([health.engine], 1 if health.healthy else 0)
        info.add_metric([health.engine, health.state], 1)
    yield up
    yield info
    # The pg_cron series by its first name, which dashboards and alerts may already use.
    for health in healths:
        if health.engine == "pg_cron":
            legacy = GaugeMetricFamily(
                "orchestrator_pg_cron_scheduler_up",
                "1 when pg_cron started every job that was due (or none was due), else 0",
            )
            legacy.add_metric([], 1 if health.healthy else 0)
            yield legacy


class OrchestratorCollector:
    """A prometheus_client collector reading everything above at scrape time."""

    def collect(self) -> Iterator[Metric]:
        engines: dict[str, Backend] = {
            name: _LiveOnce(backend)  # a Backend by delegation (``__getattr__``)
            for name, backend in backends().items()
        }
        # Asked first: an engine may start a slow read (Celery's worker ping) that then runs
        # while the database is read below.
        engine_families = [backend.metric_families() for backend in engines.values()]
        yield from run_families()
        yield from job_families(job_statuses(engines=engines))
        yield from plan_families(engines)
        for families in engine_families:
            yield from families
        yield from scheduler_families(engines)


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
    registry.register(OrchestratorCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
