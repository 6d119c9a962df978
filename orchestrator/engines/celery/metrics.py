"""The Celery engine's own Prometheus series: how many messages wait in each queue.

Read at scrape time from Redis (``LLEN`` of each queue over kombu's priority lists, through
``Fleet.queue_depths``): the default queue and every queue a managed job names.
"""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily, Metric

from orchestrator.engines.celery.fleet import Fleet
from orchestrator.errors import OrchestratorError
from orchestrator.models import ManagedJob

logger = logging.getLogger(__name__)


def queue_depths() -> Metric:
    depth = GaugeMetricFamily(
        "orchestrator_queue_depth", "Messages waiting in each Celery queue", labels=["queue"]
    )
    from project.celery import app  # the project's Celery app, configured from settings

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
