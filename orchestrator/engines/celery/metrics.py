"""The Celery engine's own Prometheus series: queues, workers and the beat leader.

- ``orchestrator_queue_depth{queue}``: messages waiting (``LLEN`` over kombu's priority lists,
  through ``Fleet.queue_depths``) in the default queue and every queue a managed job names;
- ``orchestrator_beat_leader_present``: 1 while a beat process holds the leader's advisory
  lock (``beat.leader_count``), the lock without which no periodic task is sent;
- ``orchestrator_worker_up{worker}``: 1 for each worker that answered a ping now, 0 for one
  that answered within ``ORCHESTRATOR_METRICS_WORKER_MEMORY`` seconds and not now. A ping
  names no worker, so the ones that answered before are remembered in Redis
  (``orchestrator:metrics:workers``, hostname -> last answer); a worker stopped for good is
  forgotten after that time. No sample at all when the broker cannot be reached.

The ping is a broadcast that waits its whole timeout (it cannot know how many workers will
answer), so ``CeleryFamilies`` starts it in a thread when ``/metrics`` asks for the families
and waits for it only when they are read, after the scrape's database work.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily, Metric

from orchestrator.engines.celery.beat import leader_count
from orchestrator.engines.celery.fleet import Fleet
from orchestrator.errors import OrchestratorError
from orchestrator.models import ManagedJob

logger = logging.getLogger(__name__)

#: hostname -> Unix time of its last answer to a /metrics ping
WORKERS_KEY = "orchestrator:metrics:workers"


def _app():
    from project.celery import app  # the project's Celery app, configured from settings

    return app


def queue_depths() -> Metric:
    depth = GaugeMetricFamily(
        "orchestrator_queue_depth", "Messages waiting in each Celery queue", labels=["queue"]
    )
    app = _app()
    names = {str(app.conf.task_default_queue)}
    for queue in ManagedJob.objects.values_list("definition__queue", flat=True).distinct():
        if isinstance(queue, str) and queue:
            names.add(queue)
    try:
        depths = Fleet(app).queue_depths(names)
    except OrchestratorError as error:
        logger.warning("queue depths unavailable", extra={"error": str(error)})
        return depth
    for queue in depths["queues"]:
        depth.add_metric([queue["name"]], queue["depth"])
    return depth


def beat_leader() -> Metric:
    present = GaugeMetricFamily(
        "orchestrator_beat_leader_present",
        "1 while a celery beat holds the leader lock and sends periodic tasks, else 0",
    )
    try:
        present.add_metric([], 1 if leader_count() else 0)
    except DatabaseError as error:
        logger.warning("cannot read beat's leader lock", extra={"error": str(error)})
    return present


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def remembered_workers(fleet: Fleet, answered: list[str], now: float) -> dict[str, bool]:
    """Every worker to report, up or not: those that answered now, and those that answered
    within the memory window (recorded in Redis here; older ones are forgotten)."""
    memory = int(settings.ORCHESTRATOR_METRICS_WORKER_MEMORY)
    client = fleet.redis()
    key = f"{fleet.key_prefix}{WORKERS_KEY}"
    try:
        if answered:
            client.hset(key, mapping=dict.fromkeys(answered, now))
        seen = {_text(name): float(when) for name, when in client.hgetall(key).items()}
        stale = [name for name, when in seen.items() if when < now - memory]
        if stale:
            client.hdel(key, *stale)
    except redis.RedisError as error:
        logger.warning("cannot remember workers", extra={"error": str(error)})
        return dict.fromkeys(answered, True)
    finally:
        client.close()
    up = {name: False for name, when in seen.items() if when >= now - memory}
    up.update(dict.fromkeys(answered, True))
    return up


class CeleryFamilies:
    """The engine's families; the workers' ping starts at construction, in a thread."""

    def __init__(self) -> None:
        self.fleet = Fleet(_app(), timeout=settings.ORCHESTRATOR_METRICS_PING_MS / 1000)
        self.answered: list[str] | None = None
        self.thread = threading.Thread(target=self._ping, name="metrics-ping", daemon=True)
        self.thread.start()

    def _ping(self) -> None:
        try:
            self.answered = self.fleet.ping()
        # Any failure (broker down, a kombu or socket error) ends this thread and nothing
        # else: the scrape then reports no worker sample rather than failing whole.
        except Exception as error:  # noqa: BLE001
            logger.warning("metrics: workers not pinged", extra={"error": str(error)})

    def workers_up(self) -> Metric:
        up = GaugeMetricFamily(
            "orchestrator_worker_up",
            "1 when the Celery worker answered a ping now, 0 when it answered before and not now",
            labels=["worker"],
        )
        self.thread.join(self.fleet.timeout + 5)
        if self.answered is None:
            return up
        for worker, answering in sorted(
            remembered_workers(self.fleet, self.answered, time.time()).items()
        ):
            up.add_metric([worker], 1 if answering else 0)
        return up

    def __iter__(self) -> Iterator[Metric]:
        yield queue_depths()
        yield beat_leader()
        yield self.workers_up()
