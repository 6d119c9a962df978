"""Benchmark the admin and the pg_cron importer: 10,000 jobs, 1,000,000 runs.

Prints, each against the stock way of doing it:
- the Jobs list (first page, 100 rows) and the Runs list (unfiltered, by job, failed only):
  server time (the view called in-process and its response rendered) and query count, against
  stock ``ModelAdmin``s (last run and missed count looked up per row; the exact ``count(*)``
  paginator);
- a job's page (definition, 50 runs, chart, exact missed instants);
- ``orchestrator_import_cron_runs()`` over 100,000 real ``cron.job_run_details`` rows, inserted
  as the cluster's superuser (the ``postgres`` OS user over the socket; needs root), against a
  row-by-row import from Python (the stock way: read, then ``update_or_create`` each).

Targets: list pages under 300 ms with a bounded query count; import under 5 s. Everything is
created inside one transaction that is rolled back (the 100,000 run-log rows, which only the
superuser can insert, are deleted afterwards). Run it on a service profile of its own:

    ORCHESTRATOR_PROFILE=adm .venv/bin/python bench/admin.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ORCHESTRATOR_PROFILE", "bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib import admin  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from orchestrator.admin.jobs import ManagedJobAdmin  # noqa: E402
from orchestrator.admin.runs import JobRunAdmin  # noqa: E402
from orchestrator.models import JobRun, ManagedJob  # noqa: E402
from orchestrator.status import job_statuses  # noqa: E402

SCHEDULES = [
    "* * * * *", "*/5 * * * *", "*/15 * * * *", "0 * * * *", "30 2 * * *", "0 23 * * *",
    "0 0 * * 0", "15 */2 * * *", "0 9 * * 1-5", "0 0 1 * *",
]  # fmt: skip

JOBS_SQL = """
INSERT INTO orchestrator_managedjob
       (name, engine, engine_id, spec_hash, definition, reasons, paused, applied_at, created_at)
SELECT format('bench-%%s', lpad(g::text, 5, '0')),
       CASE WHEN g %% 2 = 0 THEN 'pg_cron' ELSE 'celery' END,
       CASE WHEN g %% 2 = 0 THEN (900000 + g)::text ELSE 'b' || g END,
       md5(g::text),
       jsonb_build_object(
           'name', format('bench-%%s', lpad(g::text, 5, '0')),
           'trigger', jsonb_build_object(
               'kind', 'cron', 'expr', (%(schedules)s::text[])[1 + g %% 10]),
           'body', jsonb_build_object('kind', 'sql', 'sql', 'SELECT 1'),
           'enabled', g %% 97 <> 0, 'timezone', 'UTC', 'queue', 'default',
           'tags', jsonb_build_array('bench', 'team-' || (g %% 10)),
           'description', 'bench job ' || g),
       '["bench"]', g %% 50 = 0, now() - interval '2 days', now()
  FROM generate_series(0, %(jobs)s - 1) AS g
"""

RUNS_SQL = """
INSERT INTO orchestrator_jobrun
       (job, engine, engine_run_id, attempt, delivery, status, manual, scheduled_for, started,
        finished, duration, worker, pid, message, updated_at)
SELECT format('bench-%%s', lpad((g %% %(jobs)s)::text, 5, '0')),
       CASE WHEN g %% 2 = 0 THEN 'pg_cron' ELSE 'celery' END,
       'run-' || g, 1, 1,
       (ARRAY['succeeded','succeeded','succeeded','succeeded','succeeded','succeeded',
              'failed','retried','skipped','lost'])[1 + g %% 10],
       false,
       date_trunc('minute', now() - make_interval(secs => g * 2.5)),
       now() - make_interval(secs => g * 2.5),
       now() - make_interval(secs => g * 2.5) + make_interval(secs => g %% 30),
       make_interval(secs => g %% 30), 'bench@host', 1000 + g %% 500,
       CASE WHEN g %% 10 = 6 THEN 'ERROR: division by zero' ELSE '' END, now()
  FROM generate_series(1, %(runs)s) AS g
"""


class StockJobAdmin(admin.ModelAdmin):
    """The stock way: last run and missed count looked up for each row."""

    list_display = ("name", "engine", "paused", "last_run", "missed_count")
    list_filter = ("engine",)
    search_fields = ("name",)
    list_per_page = 100

    @admin.display(description="last run")
    def last_run(self, obj: ManagedJob) -> str:
        run = JobRun.objects.filter(job=obj.name).order_by("-started").first()
        return f"{run.status} {run.duration}" if run else "never"

    @admin.display(description="missed")
    def missed_count(self, obj: ManagedJob) -> int:
        return job_statuses([obj])[0].missed_count


class StockRunAdmin(admin.ModelAdmin):
    """The stock way: exact ``count(*)`` paginator, default ordering by the model's Meta."""

    list_display = ("job", "engine", "status", "attempt", "started", "duration", "message")
    list_filter = ("engine", "status")
    list_per_page = 100


def timed(view: Callable, request: object, rounds: int) -> tuple[float, int]:
    """Median server time (ms) of calling and rendering the view, and its query count."""
    times, queries = [], 0
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = view(request)
            if hasattr(response, "render"):
                response.render()
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        queries = len(captured.captured_queries)
    return statistics.median(times), queries


def page(factory: RequestFactory, user: User, url: str) -> object:
    request = factory.get(url)
    request.user = user
    request.session = {}
    request._messages = []
    return request


def superuser_psql(sql: str) -> None:
    socket = str(settings.DATABASES["default"]["HOST"])
    subprocess.run(
        ["runuser", "-u", "postgres", "--", "psql", "-q", "-v", "ON_ERROR_STOP=1",
         "-h", socket, "-d", str(settings.DATABASES["default"]["NAME"]), "-c", sql],
        check=True,
    )  # fmt: skip


def bench_lists(jobs: int, runs: int, rounds: int) -> None:
    site = admin.AdminSite(name="bench")
    ours_jobs, stock_jobs = ManagedJobAdmin(ManagedJob, site), StockJobAdmin(ManagedJob, site)
    ours_runs, stock_runs = JobRunAdmin(JobRun, site), StockRunAdmin(JobRun, site)
    factory = RequestFactory()
    user = User.objects.create_superuser("bench-admin", password=None)
    sample = ManagedJob.objects.get(name="bench-00042")
    cases = [
        ("jobs list", "/admin/orchestrator/managedjob/", ours_jobs, stock_jobs),
        ("runs list", "/admin/orchestrator/jobrun/", ours_runs, stock_runs),
        ("runs of one job", "/admin/orchestrator/jobrun/?job=bench-00042", ours_runs, None),
        ("failed runs", "/admin/orchestrator/jobrun/?status__exact=failed", ours_runs, stock_runs),
    ]
    print(f"\n{jobs:,} jobs, {runs:,} runs; median of {rounds} (server time, rendered)")
    print(f"{'page':<22}{'ours ms':>9}{'queries':>9}{'stock ms':>10}{'queries':>9}{'ratio':>8}")
    for label, url, ours, stock in cases:
        stock_url = url.replace("?job=", "?job__exact=")
        ours_ms, ours_q = timed(ours.changelist_view, page(factory, user, url), rounds)
        if stock is None:
            print(f"{label:<22}{ours_ms:>9.1f}{ours_q:>9}")
            continue
        stock_ms, stock_q = timed(stock.changelist_view, page(factory, user, stock_url), rounds)
        ratio = stock_ms / ours_ms
        print(f"{label:<22}{ours_ms:>9.1f}{ours_q:>9}{stock_ms:>10.1f}{stock_q:>9}{ratio:>7.1f}x")
    detail = page(factory, user, f"/admin/orchestrator/managedjob/{sample.pk}/change/")
    detail_ms, detail_q = timed(
        lambda request: ours_jobs.change_view(request, str(sample.pk)), detail, rounds
    )
    print(f"{'job page':<22}{detail_ms:>9.1f}{detail_q:>9}")


def bench_import(count: int) -> None:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        print("\nimport: skipped (inserting into cron.job_run_details needs the superuser: root)")
        return
    superuser_psql(
        "INSERT INTO cron.job_run_details (jobid, runid, job_pid, database, username, command,"  # noqa: S608 - only an int is formatted in
        " status, return_message, start_time, end_time)"
        f" SELECT 900000 + (g % 5000) * 2, nextval('cron.runid_seq'), 1000 + g % 100,"
        " 'orchestrator', 'orchestrator', 'SELECT 1',"
        " CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END,"
        " CASE WHEN g % 10 = 0 THEN 'ERROR: boom' ELSE 'SELECT 1' END,"
        " now() - make_interval(mins => g), now() - make_interval(mins => g) + interval '2 s'"
        f" FROM generate_series(1, {int(count)}) AS g"
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(min(runid), 0) FROM cron.job_run_details")
            cursor.execute(
                "INSERT INTO orchestrator_cronimportmark (id, open_from, imported) "
                "VALUES (1, 0, 0) ON CONFLICT (id) DO UPDATE SET open_from = 0"
            )
            started = time.perf_counter()
            cursor.execute("SELECT orchestrator_import_cron_runs()")
            written = cursor.fetchone()[0]
            first = time.perf_counter() - started
            started = time.perf_counter()
            cursor.execute("SELECT orchestrator_import_cron_runs()")
            again = cursor.fetchone()[0]
            second = time.perf_counter() - started
            cursor.execute(
                "SELECT count(*) FROM orchestrator_jobrun r JOIN orchestrator_managedjob m "
                "ON m.name = r.job WHERE r.engine = 'pg_cron' AND r.engine_run_id ~ '^[0-9]+$'"
            )
            mapped = cursor.fetchone()[0]
            stock_n = 2000
            cursor.execute(
                "SELECT runid, jobid, status, return_message, start_time, end_time "
                "FROM cron.job_run_details ORDER BY runid DESC LIMIT %s",
                [stock_n],
            )
            rows = cursor.fetchall()
        names = dict(ManagedJob.objects.filter(engine="pg_cron").values_list("engine_id", "name"))
        started = time.perf_counter()
        for runid, jobid, status, message, start, end in rows:
            JobRun.objects.update_or_create(
                engine="pg_cron", engine_run_id=f"stock-{runid}", attempt=1, delivery=1,
                defaults={"job": names.get(str(jobid), f"#{jobid}"), "status": status,
                          "message": message, "started": start, "finished": end,
                          "duration": end - start},
            )  # fmt: skip
        stock_each = (time.perf_counter() - started) / stock_n
        stock_total = stock_each * count
        print(
            f"\nimport {count:,} cron.job_run_details rows: {first:.2f} s ({written:,} written, "
            f"{mapped:,} mapped to their job by the registry); again: {second * 1000:.0f} ms "
            f"({again} written)\nstock row-by-row update_or_create: {stock_each * 1000:.2f} ms/row "
            f"(measured on {stock_n:,}) = {stock_total:.1f} s for {count:,}: "
            f"{stock_total / first:.0f}x"
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM cron.job_run_details WHERE jobid >= 900000")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--imports", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with transaction.atomic():
        started = time.perf_counter()
        with connection.cursor() as cursor:
            params = {"jobs": options.jobs, "runs": options.runs, "schedules": SCHEDULES}
            cursor.execute(JOBS_SQL, params)
            cursor.execute(RUNS_SQL, params)
            cursor.execute("ANALYZE orchestrator_managedjob")
            cursor.execute("ANALYZE orchestrator_jobrun")
        print(f"data: {time.perf_counter() - started:.1f} s to create (rolled back at the end)")
        bench_lists(options.jobs, options.runs, options.rounds)
        bench_import(options.imports)
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
