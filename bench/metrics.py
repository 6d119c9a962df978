"""Benchmark ``/metrics``: a scrape over 1,000 applied jobs and 1,000,000 recorded runs.

Prints, each against the stock way of doing it:
- the run series (counters, duration histograms, last success/failure) read from the run
  counters, against recounting them from the history at each scrape (``GROUP BY`` over every
  ``JobRun`` row: what ``/metrics`` did before, and what goes down when history is pruned);
- the cost the counters' triggers add to writing runs: one bulk ``INSERT`` of all the runs,
  2,000 runs written as Celery's signals write them (three statements each), and pg_cron's
  importer over 100,000 new run-log rows (inserted as the cluster's superuser through
  ``runuser -u postgres -- psql``, so that part needs root, and deleted afterwards), each
  with the triggers against the same with them disabled;
- a whole scrape (the view called in-process), with what each part costs: run series, the
  status model, the pending plan, the engines' series (the workers' ping waits
  ``ORCHESTRATOR_METRICS_PING_MS`` in the background) and the schedulers' health.

Everything happens in one transaction that is rolled back. Run it on a service profile of its
own (with ``manage.py bootstrap --no-admin`` done):

    ORCHESTRATOR_PROFILE=metrics .venv/bin/python bench/metrics.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ORCHESTRATOR_PROFILE", "bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("ORCHESTRATOR_UPKEEP", "off")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from orchestrator import desired, metrics, reconcile  # noqa: E402
from orchestrator.engines import backends  # noqa: E402
from orchestrator.status import job_statuses  # noqa: E402

SCHEDULES = ["* * * * *", "*/5 * * * *", "0 * * * *", "30 2 * * *", "0 9 * * 1-5"]

RUNS_SQL = """
INSERT INTO orchestrator_jobrun
       (job, engine, engine_run_id, attempt, delivery, status, manual, scheduled_for, started,
        finished, duration, worker, pid, message, updated_at)
SELECT format('bench-%%s', lpad((g %% %(jobs)s)::text, 5, '0')),
       CASE WHEN g %% %(jobs)s %% 2 = 0 THEN 'pg_cron' ELSE 'celery' END,
       %(prefix)s || g, 1, 1,
       (ARRAY['succeeded','succeeded','succeeded','succeeded','succeeded','succeeded',
              'failed','retried','skipped','lost'])[1 + g %% 10],
       false,
       date_trunc('minute', now() - make_interval(secs => g * 2.5)),
       now() - make_interval(secs => g * 2.5),
       now() - make_interval(secs => g * 2.5) + make_interval(secs => g %% 30),
       make_interval(secs => g %% 30), 'bench@host', 1000 + g %% 500, '', now()
  FROM generate_series(1, %(runs)s) AS g
"""

#: the stock way: what /metrics read before the counters (every row, at every scrape)
RECOUNT_SQL = """
SELECT job, engine, status, count(*),
       coalesce(sum(extract(epoch FROM duration)) FILTER (WHERE duration IS NOT NULL), 0),
       count(duration),
       extract(epoch FROM max(finished) FILTER (WHERE status = 'succeeded'))
  FROM orchestrator_jobrun
 GROUP BY job, engine, status
"""


def manifest(jobs: int) -> str:
    """``jobs`` jobs: even ones SQL (pg_cron), odd ones a task (Celery)."""
    lines = ["version: 1", "jobs:"]
    for index in range(jobs):
        lines.append(f"  bench-{index:05d}:")
        lines.append(f'    schedule: "{SCHEDULES[index % len(SCHEDULES)]}"')
        lines.append("    sql: SELECT 1" if index % 2 == 0 else "    task: orchestrator.ping")
    return "\n".join(lines) + "\n"


def median_ms(action: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def insert_runs(jobs: int, runs: int, prefix: str) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(RUNS_SQL, {"jobs": jobs, "runs": runs, "prefix": prefix})
    return time.perf_counter() - started


def celery_writes(count: int, prefix: str) -> float:
    """Seconds per run for ``count`` runs written as Celery's signals write them: a queued
    row inserted, then updated to running, then to succeeded, each its own statement."""
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for index in range(count):
            run_id = f"{prefix}{index}"
            cursor.execute(
                "INSERT INTO orchestrator_jobrun (job, engine, engine_run_id, attempt, delivery,"
                " status, manual, worker, message, updated_at)"
                " VALUES ('bench-00001', 'celery', %s, 1, 1, 'queued', false, '', '', now())",
                [run_id],
            )
            cursor.execute(
                "UPDATE orchestrator_jobrun SET status = 'running', started = now()"
                " WHERE engine = 'celery' AND engine_run_id = %s",
                [run_id],
            )
            cursor.execute(
                "UPDATE orchestrator_jobrun SET status = 'succeeded', finished = now(),"
                " duration = now() - started WHERE engine = 'celery' AND engine_run_id = %s",
                [run_id],
            )
    return (time.perf_counter() - started) / count


def superuser_psql(sql: str) -> None:
    """Run ``sql`` as the cluster's superuser (only it may write pg_cron's run log)."""
    socket = str(settings.DATABASES["default"]["HOST"])
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1",
         "-h", socket, "-d", str(settings.DATABASES["default"]["NAME"]), "-c", sql],
        check=True,
    )  # fmt: skip


def import_seconds(first_runid: int) -> float:
    """One ``orchestrator_import_cron_runs()`` of every run-log row from ``first_runid``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO orchestrator_cronimportmark (id, open_from, imported) VALUES (1, %s, 0)"
            " ON CONFLICT (id) DO UPDATE SET open_from = EXCLUDED.open_from",
            [first_runid],
        )
        started = time.perf_counter()
        cursor.execute("SELECT orchestrator_import_cron_runs()")
        return time.perf_counter() - started


def bench_import(count: int) -> None:
    """pg_cron's importer (the upkeep job, every minute) over ``count`` new run-log rows, with
    the counters' triggers and without; the rows are deleted afterwards."""
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        print("\nimport: skipped (inserting into cron.job_run_details needs the superuser: root)")
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(runid), 0) + 1 FROM cron.job_run_details")
        (first,) = cursor.fetchone()
    superuser_psql(
        "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command,"  # noqa: S608 - only an int is formatted in
        " status, return_message, start_time, end_time)"
        " SELECT 900000 + (g % 500), nextval('cron.runid_seq'), 1000 + g % 100,"
        " 'orchestrator', 'orchestrator', 'SELECT 1',"
        " CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END, '',"
        " now() - make_interval(mins => g), now() - make_interval(mins => g) + interval '2 s'"
        f" FROM generate_series(1, {int(count)}) AS g"
    )
    try:
        with transaction.atomic():  # once to warm the caches, rolled back
            import_seconds(first)
            transaction.set_rollback(True)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE orchestrator_jobrun DISABLE TRIGGER USER")
            bare = import_seconds(first)
            transaction.set_rollback(True)
        counted = import_seconds(first)
    finally:
        superuser_psql(f"DELETE FROM cron.job_run_details WHERE runid >= {int(first)}")  # noqa: S608 - an int
    print(f"\npg_cron's import of {count:,} new run-log rows (one statement)")
    print(f"  with the counters' triggers: {bare:.2f} s -> {counted:.2f} s ({counted / bare:.2f}x)")


def recount() -> None:
    with connection.cursor() as cursor:
        cursor.execute(RECOUNT_SQL)
        cursor.fetchall()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--imports", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, transaction.atomic():
        path = Path(folder) / "jobs.yaml"
        path.write_text(manifest(options.jobs))
        settings.ORCHESTRATOR_MANIFEST = str(path)
        with connection.cursor() as cursor:
            cursor.execute("SELECT orchestrator_cron.unschedule(jobid) FROM cron.job")
            cursor.execute("DELETE FROM django_celery_beat_periodictask")
            cursor.execute("DELETE FROM orchestrator_managedjob")
            cursor.execute("DELETE FROM orchestrator_jobrun")
            cursor.execute("DELETE FROM orchestrator_runcounter")
        started = time.perf_counter()
        reconcile.apply(desired.place_file(path))
        print(f"applied {options.jobs:,} jobs in {time.perf_counter() - started:.1f} s")

        with transaction.atomic():  # a savepoint: the runs without counters are rolled back
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE orchestrator_jobrun DISABLE TRIGGER USER")
            bare = insert_runs(options.jobs, options.runs, "bare-")
            transaction.set_rollback(True)
        counted = insert_runs(options.jobs, options.runs, "run-")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE orchestrator_jobrun")
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE orchestrator_jobrun DISABLE TRIGGER USER")
            bare_one = celery_writes(options.single, "bare-one-")
            transaction.set_rollback(True)
        counted_one = celery_writes(options.single, "one-")
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*), sum(runs) FROM orchestrator_runcounter")
            rows, total = cursor.fetchone()
        print(f"\n{options.runs:,} runs in one INSERT")
        print(f"  with the counters' triggers: {bare:.2f} s -> {counted:.2f} s "
              f"({counted / bare:.2f}x; {rows:,} counter rows holding {total:,} runs)")  # fmt: skip

        print(f"{options.single:,} runs written one statement at a time (Celery's signals: "
              "insert queued, update running, update succeeded)")  # fmt: skip
        print(f"  with the counters' triggers: {bare_one * 1000:.2f} ms -> "
              f"{counted_one * 1000:.2f} ms per run ({counted_one / bare_one:.2f}x)")  # fmt: skip

        ours = median_ms(lambda: list(metrics.run_families()), options.rounds)
        stock = median_ms(recount, options.rounds)
        print(f"\nrun series ({options.jobs:,} jobs, {options.runs:,} runs), median of "
              f"{options.rounds}")  # fmt: skip
        print(f"  from the counters: {ours:.1f} ms; recounted from the history: {stock:.1f} ms "
              f"({stock / ours:.0f}x)")  # fmt: skip

        engines = {name: metrics._LiveOnce(b) for name, b in backends().items()}
        parts = {
            "status model": lambda: list(metrics.job_families(job_statuses(engines=engines))),
            "pending plan": lambda: list(metrics.plan_families(engines)),
            "pg_cron series": lambda: list(engines["pg_cron"].metric_families()),
            "Celery series (ping waited in full)": lambda: list(
                engines["celery"].metric_families()
            ),
            "schedulers' health": lambda: list(metrics.scheduler_families(engines)),
        }
        list(metrics.plan_families(engines))  # the placement cache's first fill
        for label, action in parts.items():
            for engine in engines.values():
                engine._live = None
            print(f"  {label}: {median_ms(action, options.rounds):.1f} ms")
        client = Client(HTTP_HOST="localhost")
        scrape = median_ms(lambda: client.get("/metrics"), options.rounds)
        size = len(client.get("/metrics").content)
        print(f"\nwhole scrape: {scrape:.1f} ms median of {options.rounds} ({size / 1024:.0f} KiB; "
              f"ping {settings.ORCHESTRATOR_METRICS_PING_MS} ms in the background)")  # fmt: skip
        bench_import(options.imports)  # last: its 500 run-log job ids would join the scrape
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
