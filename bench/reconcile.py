"""Benchmark the reconciler: 10,000 jobs (half pg_cron, half Celery beat).

Prints, for the same manifest in the same run:
- apply from empty (bulk, one transaction) against the naive way: one engine call and one
  transaction per job (``cron.schedule_in_database`` / ``PeriodicTask.objects.create`` with
  ``get_or_create`` for its crontab, as django-celery-beat's docs show), plus its registry row;
- a no-op plan (manifest already applied): load + classify + plan, and plan alone;
- a one-job change: plan + apply.

Targets: apply from empty under 15 s and at least 5x faster than naive; no-op plan and one-job
change under 1.5 s. Runs on its own service profile (``bench``) so it never touches your data:

    ORCHESTRATOR_PROFILE=bench python3 scripts/services.py start --profile bench --quiet
    ORCHESTRATOR_PROFILE=bench .venv/bin/python bench/reconcile.py [--jobs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ORCHESTRATOR_PROFILE", "bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_celery_beat.models import CrontabSchedule, PeriodicTask  # noqa: E402

from orchestrator import desired, reconcile  # noqa: E402
from orchestrator.engines.base import run_payload  # noqa: E402
from orchestrator.models import ManagedJob  # noqa: E402
from orchestrator.specs import spec_hash, to_dict  # noqa: E402


def manifest(count: int, marker: str = "") -> str:
    lines = ["version: 1", "jobs:"]
    for index in range(count):
        minute = index % 60
        lines += [f"  job-{index:05d}:", f'    schedule: "{minute} */2 * * *"']
        if index % 2:
            lines.append(f"    sql: SELECT {index}{marker}")
        else:
            lines += ["    task: orchestrator.ping", f"    kwargs: {{token: t{index}}}"]
    return "\n".join(lines) + "\n"


def clear() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT orchestrator_cron.unschedule(jobid) FROM cron.job")
        cursor.execute("DELETE FROM django_celery_beat_periodictask")
        cursor.execute("DELETE FROM django_celery_beat_crontabschedule")
        cursor.execute("DELETE FROM orchestrator_managedjob")


def timed(label: str, func, results: dict[str, float]):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = func()
    results[label] = time.perf_counter() - start
    print(f"{label:<44} {results[label]:8.3f} s", flush=True)
    return value


def naive_apply(placed: list) -> None:  # type: ignore[type-arg]
    """One engine call and one transaction per job: what a script over the stock APIs does."""
    database = connection.settings_dict["NAME"]
    for job in placed:
        with transaction.atomic():
            if job.engine == "pg_cron":
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT cron.schedule_in_database(%s, %s, %s, %s, NULL, true)",
                        [job.spec.name, job.schedule.cron, job.spec.body.sql, database],
                    )
                    engine_id = str(cursor.fetchone()[0])
            else:
                minute, hour, dom, month, dow = str(job.schedule.cron).split(" ")
                crontab, _ = CrontabSchedule.objects.get_or_create(
                    minute=minute, hour=hour, day_of_month=dom, month_of_year=month,
                    day_of_week=dow, timezone=job.schedule.timezone,
                )  # fmt: skip
                task = PeriodicTask.objects.create(
                    name=job.spec.name,
                    task="orchestrator.run_job",
                    crontab=crontab,
                    kwargs=json.dumps(run_payload(job.spec)),
                )
                engine_id = str(task.pk)
            ManagedJob.objects.create(
                name=job.spec.name, engine=job.engine, engine_id=engine_id,
                spec_hash=spec_hash(job.spec), definition=to_dict(job.spec),
                reasons=list(job.reasons), applied_at=timezone.now(),
            )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    results: dict[str, float] = {}
    folder = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    path = folder / "jobs.yaml"
    path.write_text(manifest(options.jobs))
    print(f"{options.jobs} jobs, PostgreSQL {connection.pg_version}, profile "
          f"{os.environ['ORCHESTRATOR_PROFILE']}")  # fmt: skip

    clear()
    placed = timed("load + validate + classify", lambda: desired.place(desired.load(path)), results)
    engines = {job.engine for job in placed}
    assert engines == {"pg_cron", "celery"}, engines
    timed("naive apply from empty (1 txn per job)", lambda: naive_apply(placed), results)
    clear()
    outcome = timed("apply from empty (bulk, 1 txn)", lambda: reconcile.apply(placed), results)
    assert outcome.summary()["create"] == options.jobs
    plan = timed(
        "no-op plan (load + classify + plan)",
        lambda: reconcile.plan(desired.place(desired.load(path))),
        results,
    )
    assert not plan.pending()
    timed("no-op plan (plan only)", lambda: reconcile.plan(placed), results)

    lines = path.read_text().replace("SELECT 1\n", "SELECT 1 + 0\n", 1)
    path.write_text(lines)

    def one_change() -> None:
        changed = desired.place(desired.load(path))
        outcome = reconcile.apply(changed)
        assert outcome.summary()["update"] == 1, outcome.summary()

    timed("one-job change (load + plan + apply)", one_change, results)
    clear()
    ratio = (
        results["naive apply from empty (1 txn per job)"]
        / results["apply from empty (bulk, 1 txn)"]
    )
    print(f"{'apply from empty: bulk vs naive':<44} {ratio:8.1f} x faster")


if __name__ == "__main__":
    main()
