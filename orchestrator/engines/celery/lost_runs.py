"""The lost-run sweeper: closes Celery run rows that nothing else ever will.

A run cannot outlive its hard time limit. A ``running`` row older than that (plus a grace)
belongs to a worker that was killed, or a machine that went away, with no redelivery: the
signal handlers in ``history`` never hear of it again, so this sweep marks it ``lost``. It
runs as the built-in upkeep job ``orchestrator.lost-run-sweep`` (``orchestrator.upkeep``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from celery import shared_task
from django.utils import timezone

logger = logging.getLogger(__name__)

#: seconds past a run's hard time limit after which ``sweep_lost`` calls it lost
SWEEP_GRACE = 300


def sweep_lost(now: datetime | None = None, limit_seconds: int | None = None) -> int:
    """Mark ``running`` Celery rows older than the hard time limit (+ grace) as ``lost``.

    A run cannot outlive its hard time limit: past it, its worker was killed (or the machine
    went away) and, without a redelivery, nothing else will ever close the row.
    """
    from django.conf import settings

    from orchestrator.models import JobRun, RunStatus

    now = now or timezone.now()
    limit = limit_seconds or int(getattr(settings, "CELERY_TASK_TIME_LIMIT", 0) or 6 * 3600)
    cutoff = now - timedelta(seconds=limit + SWEEP_GRACE)
    count = JobRun.objects.filter(
        engine="celery", status=RunStatus.RUNNING, started__lt=cutoff
    ).update(
        status=RunStatus.LOST,
        finished=now,
        message=f"still running past the hard time limit ({limit} s): its worker is gone",
        updated_at=now,
    )
    if count:
        logger.warning("runs marked lost", extra={"count": count})
    return count


@shared_task(name="orchestrator.sweep_lost_runs")
def sweep_lost_runs() -> int:
    """The sweeper as a task, for a manifest job (``task: orchestrator.sweep_lost_runs``)."""
    return sweep_lost()
