"""Template: a Celery task that retries transient failures with exponential backoff.

Copy into ``tasks/<concept>.py``, rename, and list the module in ``tasks/tasks.py``.
"""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure that another attempt may not meet (a timeout, a refused connection)."""


@shared_task(
    name="tasks.example.do_work",
    autoretry_for=(TransientError,),
    retry_backoff=30,
    retry_backoff_max=600,
    max_retries=5,
    soft_time_limit=300,
    time_limit=360,
)
def do_work(item_id: int) -> dict[str, int]:
    """Do one idempotent unit of work; safe to run again after a retry."""
    logger.info("working", extra={"item_id": item_id})
    return {"item_id": item_id}
