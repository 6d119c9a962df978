"""Reading the run history of both engines: ``jobs history`` and ``jobs run --wait``.

The history is ``JobRun``: Celery runs are written by the runner's signals as they happen;
pg_cron runs by its importer, which the built-in upkeep calls on a schedule. A reader that
wants the latest runs imports first (``import_engine_runs``, through each backend's
``import_runs``): importers are idempotent and read only rows past their watermark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import DatabaseError, transaction

from orchestrator.engines import backends
from orchestrator.errors import OrchestratorError
from orchestrator.models import FINISHED_STATUSES, JobRun, RunStatus

logger = logging.getLogger(__name__)

#: outcomes after which a followed run changes no more; ``retried`` is followed by another attempt
FINAL = frozenset(status for status in FINISHED_STATUSES if status != RunStatus.RETRIED)
#: how often ``follow`` re-reads the history
POLL_SECONDS = 0.5


class RunNotFinished(OrchestratorError):
    """A followed run did not finish within the time allowed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RunRow:
    """One run as ``jobs history`` prints it."""

    job: str
    engine: str
    run_id: str
    attempt: int
    status: str
    manual: bool
    started: datetime | None
    backfill: bool = False
    scheduled_for: datetime | None = None
    finished: datetime | None
    duration: timedelta | None
    message: str
    kwargs: dict[str, object] | None = None

    @classmethod
    def of(cls, run: JobRun) -> RunRow:
        return cls(
            job=run.job,
            engine=run.engine,
            run_id=run.engine_run_id,
            attempt=run.attempt,
            status=run.status,
            manual=run.manual,
            backfill=run.backfill,
            scheduled_for=run.scheduled_for,
            started=run.started,
            finished=run.finished,
            duration=run.duration,
            message=run.message,
            kwargs=run.kwargs if isinstance(run.kwargs, dict) else None,
        )

    @property
    def error(self) -> str:
        """The error message of a run that did not succeed (a success's output is not one)."""
        return "" if self.status in (RunStatus.SUCCEEDED, RunStatus.SKIPPED) else self.message

    def as_json(self) -> dict[str, object]:
        return {
            "job": self.job,
            "engine": self.engine,
            "run_id": self.run_id,
            "attempt": self.attempt,
            "status": self.status,
            "manual": self.manual,
            "backfill": self.backfill,
            "scheduled_for": None if self.scheduled_for is None else self.scheduled_for.isoformat(),
            "started": None if self.started is None else self.started.isoformat(),
            "finished": None if self.finished is None else self.finished.isoformat(),
            "duration_seconds": None
            if self.duration is None
            else round(self.duration.total_seconds(), 3),
            "error": self.error,
            "kwargs": self.kwargs,
        }


def import_engine_runs() -> int:
    """Bring each engine's newest runs into the history (``Backend.import_runs``: pg_cron's
    run log; Celery records its runs as they happen). An engine that cannot import now is
    logged and skipped: a reader still sees what was imported before."""
    imported = 0
    for engine, backend in backends().items():
        try:
            with transaction.atomic():
                imported += backend.import_runs()
        except DatabaseError as error:
            logger.warning("run import failed", extra={"engine": engine, "error": str(error)})
    return imported


def history(
    name: str | None = None,
    *,
    status: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[RunRow]:
    """Runs of both engines, newest first (a run not started yet, ``queued``, comes first)."""
    runs = JobRun.objects.all()
    if name:
        runs = runs.filter(job=name)
    if status:
        runs = runs.filter(status=status)
    if since is not None:
        runs = runs.filter(started__gte=since)
    return [RunRow.of(run) for run in runs.order_by("-started", "-id")[:limit]]


def follow(
    run_id: str,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RunRow:
    """Wait for run ``run_id`` (a Celery task id) to reach its outcome: its newest attempt
    succeeded, failed, was skipped or lost. Raises ``RunNotFinished`` after ``timeout`` s."""
    deadline = clock() + timeout
    while True:
        latest = (
            JobRun.objects.filter(engine_run_id=run_id)
            .order_by("-attempt", "-delivery", "-id")
            .first()
        )
        if latest is not None and latest.status in FINAL:
            return RunRow.of(latest)
        if clock() >= deadline:
            where = latest.status if latest is not None else "not recorded yet"
            raise RunNotFinished(
                f"run {run_id} did not finish within {timeout:g} s (now: {where}); "
                f"`jobs history` shows it when it does"
            )
        sleep(POLL_SECONDS)
