"""``on: startup`` jobs: run once per release when the application's workers start.

Neither engine has such a trigger (pg_cron's ``@reboot`` means the database server's start), so
the orchestrator provides it: when a Celery worker is ready, it claims each startup job for the
current release by inserting a ``StartupRun`` row with ``ON CONFLICT DO NOTHING``. Only the
worker whose insert lands starts the run, so ten workers starting together run it once. A new
release (``ORCHESTRATOR_RELEASE``) or a changed definition (its spec hash) runs it again.
"""

from __future__ import annotations

import logging
import socket

from django.conf import settings
from django.db import connection, transaction

from orchestrator.engines import backends
from orchestrator.engines.base import STARTUP_PREFIX
from orchestrator.models import ManagedJob, StartupRun

logger = logging.getLogger(__name__)

CLAIM = (
    f"INSERT INTO {StartupRun._meta.db_table} (job, release, claimed_by, claimed_at) "  # noqa: S608 - table name from the model
    "VALUES (%s, %s, %s, now()) ON CONFLICT (job, release) DO NOTHING RETURNING id"
)


def release() -> str:
    """The application release startup jobs run once for (``ORCHESTRATOR_RELEASE``)."""
    return str(settings.ORCHESTRATOR_RELEASE)


def run_startup_jobs(claimant: str | None = None) -> list[str]:
    """Claim and start every startup job not yet run for this release; return their names."""
    claimant = claimant or socket.gethostname()
    started: list[str] = []
    jobs = ManagedJob.objects.filter(engine_id__startswith=STARTUP_PREFIX, paused=False)
    for job in jobs:
        if not job.definition.get("enabled", True):
            continue
        key = f"{job.spec_hash[:32]}:{release()}"[:64]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(CLAIM, [job.name, key, claimant])
            if cursor.fetchone() is None:
                continue  # another worker claimed it first
        # Sent after the claim commits: a worker picking the run up must see the claim (and
        # the run's history row) rather than wait on our open transaction.
        queue = job.definition.get("queue")
        run_id = backends()[job.engine].run_now(
            job.definition, queue if isinstance(queue, str) else None
        )
        started.append(job.name)
        logger.info("startup job started", extra={"job": job.name, "run_id": run_id})
    return started


def on_worker_ready(sender: object = None, **kwargs: object) -> None:
    """Celery's ``worker_ready`` signal handler (connected in ``OrchestratorConfig.ready``)."""
    hostname = getattr(sender, "hostname", None)
    run_startup_jobs(str(hostname) if hostname else None)
