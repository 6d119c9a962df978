"""Health tasks: a round trip through the broker to a worker and back.

``fleet ping`` and the integration tests use ``ping`` to prove that a message really travels
through Redis, a worker runs it, and its result comes back through the result backend.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="orchestrator.ping")
def ping(token: str = "") -> dict[str, object]:
    """Answer with the token, the worker's host and pid, and the time it ran."""
    answer = {
        "token": token,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "at": datetime.now(UTC).isoformat(),
    }
    logger.info("ping answered", extra={"token": token})
    return answer
