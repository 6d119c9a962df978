"""Cache cleanup: drop what this worker process keeps in memory between tasks.

The seed's "clear in-memory cache" job: Django's configured caches, the loaded embedding models
and the embedder's memoised token buckets. A worker that has been up for days then sees freshly
loaded models on its next task, and its memory goes back to its baseline. The job clears the
memory of the worker process that runs it (the other processes of a prefork pool keep theirs
until their own run, or until ``--max-tasks-per-child`` recycles them).
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.cache import caches

from tasks import embedders

logger = logging.getLogger(__name__)


def clear() -> dict[str, object]:
    """Clear every cache this process holds; return what was cleared."""
    cleared = []
    for alias in caches:
        caches[alias].clear()
        cleared.append(alias)
    dropped = embedders.clear_cache()
    outcome: dict[str, object] = {"django_caches": cleared, "embedder_entries": dropped}
    logger.info("caches cleared", extra={"outcome": outcome})
    return outcome


@shared_task(name="tasks.cache.clear_caches")
def clear_caches() -> dict[str, object]:
    """The daily cache cleanup job."""
    return clear()
