"""pg_cron's own Prometheus series: is its launcher process alive?

pg_cron's runs are counted with everyone's (``orchestrator_runcounter``); what only this engine
has is the launcher, the background worker that starts every pg_cron job. When it is gone,
nothing in ``cron.job`` runs, however healthy the database looks.

- ``orchestrator_pg_cron_launcher_up``: 1 while a ``pg_cron launcher`` backend exists, 0 when
  none does. No sample when this role cannot see other roles' backends (grant it
  ``pg_read_all_stats``), since "cannot see" is not "stopped";
- ``orchestrator_pg_cron_launcher_start_timestamp_seconds``: when the running launcher started
  (a restart shows as a jump).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db import DatabaseError
from prometheus_client.core import GaugeMetricFamily, Metric

from orchestrator.engines.pg_cron.heartbeat import read_launcher

logger = logging.getLogger(__name__)


def launcher_families() -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "orchestrator_pg_cron_launcher_up",
        "1 while pg_cron's launcher process runs, 0 when it does not (absent: not visible)",
    )
    since = GaugeMetricFamily(
        "orchestrator_pg_cron_launcher_start_timestamp_seconds",
        "When the running pg_cron launcher process started (Unix time)",
    )
    try:
        launcher = read_launcher()
    except DatabaseError as error:
        logger.warning("cannot read pg_cron's launcher", extra={"error": str(error)})
        yield from (up, since)
        return
    if launcher.alive is not None:
        up.add_metric([], 1 if launcher.alive else 0)
    if launcher.since is not None:
        since.add_metric([], launcher.since.timestamp())
    yield from (up, since)
