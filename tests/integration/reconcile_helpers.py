"""Helpers for the reconciler tests: manifests as text, and byte-exact engine snapshots."""

from __future__ import annotations

import textwrap
from pathlib import Path

from django.db import connection

from orchestrator import desired
from orchestrator.plan import Placed


def placed_from(text: str, path: str = "jobs.yaml") -> list[Placed]:
    return desired.place(desired.load_text(textwrap.dedent(text), path=path))


def write_manifest(tmp_path: Path, text: str) -> Path:
    target = tmp_path / "jobs.yaml"
    target.write_text(textwrap.dedent(text))
    return target


SNAPSHOT_QUERIES = (
    "SELECT jobid, schedule, command, nodename, nodeport, database, username, active, jobname"
    " FROM cron.job ORDER BY jobid",
    "SELECT * FROM django_celery_beat_periodictask ORDER BY id",
    "SELECT * FROM django_celery_beat_crontabschedule ORDER BY id",
    "SELECT * FROM django_celery_beat_intervalschedule ORDER BY id",
    "SELECT * FROM django_celery_beat_clockedschedule ORDER BY id",
    "SELECT * FROM django_celery_beat_periodictasks",
    "SELECT * FROM orchestrator_managedjob ORDER BY id",
)


def snapshot() -> list[list[tuple]]:
    """Every row of every table an apply writes, as the server returns them."""
    with connection.cursor() as cursor:
        result = []
        for sql in SNAPSHOT_QUERIES:
            cursor.execute(sql)
            result.append([tuple(row) for row in cursor.fetchall()])
        return result


def clear_engines() -> None:
    """Remove every pg_cron job and periodic task this role owns (tests start from empty)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT orchestrator_cron.unschedule(jobid) FROM cron.job")
        cursor.execute("DELETE FROM django_celery_beat_periodictask")
        cursor.execute("DELETE FROM orchestrator_managedjob")


def apply_and_run(text: str, queue: str | None = None) -> str:
    """Apply a one-job manifest, then start a run of it now on ``queue``; return the task id.

    Runs read their definition from the registry, so a job must be applied before it runs.
    """
    from orchestrator import reconcile
    from orchestrator.engines import backends
    from orchestrator.models import ManagedJob

    [job] = placed_from(text)
    reconcile.apply([job])
    definition = ManagedJob.objects.get(name=job.spec.name).definition
    return backends()[job.engine].run_now(definition, queue)
