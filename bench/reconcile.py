"""Benchmark the reconciler: 10,000 jobs (half pg_cron, half Celery beat).

Prints, for the same manifest in the same run:
- apply from empty (bulk, one transaction) against the same apply writing its rows with
  Django's ``bulk_create`` instead of ``COPY``, and against the naive way: one engine call and one
  transaction per job (``cron.schedule_in_database`` / ``PeriodicTask.objects.create`` with
  ``get_or_create`` for its crontab, as django-celery-beat's docs show), plus its registry row;
- a no-op plan (manifest already applied): load + classify + plan, and plan alone;
- a one-job change: plan + apply;
- from the CLI, as a user runs it (each command a fresh process, medians): ``jobs apply --yes``
  from empty, ``jobs plan --check`` with a cold and a warm placement cache, and ``jobs apply
  --yes`` after a one-job edit (the placement cache keeps the other jobs), each beside the
  anchor of a process that only starts Django.

Targets: apply from empty under 15 s and at least 5x faster than naive; no-op plan and one-job
change under 1.5 s. Runs on its own service profile (``bench``) so it never touches your data:

    ORCHESTRATOR_PROFILE=bench python3 scripts/services.py start --profile bench --quiet
    ORCHESTRATOR_PROFILE=bench .venv/bin/python bench/reconcile.py [--jobs 10000] [--rounds 3]
        [--skip-naive] [--skip-cli] [--skip-stock-insert]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORCHESTRATOR_PROFILE", "bench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_celery_beat.models import CrontabSchedule, PeriodicTask  # noqa: E402

from orchestrator import desired, reconcile  # noqa: E402
from orchestrator.engines.base import run_payload  # noqa: E402
from orchestrator.engines.celery import backend as celery_backend  # noqa: E402
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


def timed(label: str, func, results: dict[str, float]):
    start = time.perf_counter()
    value = func()
    results[label] = time.perf_counter() - start
    print(f"{label:<44} {results[label]:8.3f} s", flush=True)
    return value


def naive_apply(placed: list) -> None:
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


def stock_insert_apply(placed: list) -> None:
    """The same apply with registry rows and periodic tasks written by Django's
    ``bulk_create`` (batches of 2,000), as before ``orchestrator.bulk_copy``."""

    def bulk_create(model, objects) -> None:
        model.objects.bulk_create(objects, batch_size=2000)

    saved = reconcile.copy_insert, celery_backend.copy_insert
    reconcile.copy_insert = celery_backend.copy_insert = bulk_create
    try:
        reconcile.apply(placed)
    finally:
        reconcile.copy_insert, celery_backend.copy_insert = saved


#: (wall seconds, CPU seconds of the process): the CPU time (user + system, from
#: ``getrusage(RUSAGE_CHILDREN)``) moves much less than the wall time when other work shares
#: the machine; the database server's own work is in the wall time only
Timing = tuple[float, float]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli(*args: str, cache: Path) -> Timing:
    """Wall and CPU time of ``manage.py ARGS`` in a fresh process, as a user runs it."""
    env = dict(os.environ, ORCHESTRATOR_CACHE_DIR=str(cache), LOG_LEVEL="WARNING")
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 2):
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return seconds, _children_cpu() - cpu


def startup(cache: Path) -> Timing:
    """The anchor of every CLI figure: a process that only starts Django (``django.setup``)."""
    env = dict(os.environ, ORCHESTRATOR_CACHE_DIR=str(cache))
    code = "import django; django.setup()"
    cpu, started = _children_cpu(), time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=ROOT)
    return time.perf_counter() - started, _children_cpu() - cpu


def median_of(rounds: int, run: Callable[[], Timing]) -> Timing:
    timings = [run() for _ in range(rounds)]
    return (
        statistics.median(wall for wall, _ in timings),
        statistics.median(cpu for _, cpu in timings),
    )


def report(label: str, timing: Timing, anchor: Timing | None = None, target: str = "") -> None:
    (seconds, cpu) = timing
    extra = (
        f"  ({seconds / anchor[0]:.2f}x the anchor; CPU {cpu / anchor[1]:.2f}x)" if anchor else ""
    )
    print(f"{label:<52} {seconds:8.3f} s  CPU {cpu:7.3f} s{extra}"
          f"{'  target ' + target if target else ''}", flush=True)  # fmt: skip


def cli_figures(path: Path, jobs: int, rounds: int) -> None:
    """What a user sees: each command in a fresh process, medians of ``rounds``."""
    cache = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    print(f"-- from the CLI (fresh processes, median of {rounds}; placement cache in {cache})")
    # A user's Python keeps the project's compiled bytecode; a shell with this variable set
    # recompiles every module of the project in every process (anchor included).
    off = os.environ.get("PYTHONDONTWRITEBYTECODE")
    print(f"bytecode cache: {'off (PYTHONDONTWRITEBYTECODE)' if off else 'on'}")
    boot = median_of(rounds, lambda: startup(cache))
    report("anchor: Django start-up alone (django.setup)", boot)
    clear()
    report("jobs apply --yes, from empty", cli("jobs", "apply", "--yes", "--manifest", str(path),
           cache=cache), boot)  # fmt: skip
    shutil.rmtree(cache)
    report("jobs plan --check, no-op, cold cache", cli("jobs", "plan", "--check", "--manifest",
           str(path), cache=cache), boot)  # fmt: skip
    warm = median_of(rounds, lambda: cli("jobs", "plan", "--check", "--manifest", str(path),
                                          cache=cache))  # fmt: skip
    report("jobs plan --check, no-op, warm cache", warm, boot, "< 1 s at 10k, < 5 s at 100k")
    original = path.read_text()
    edited = original.replace("SELECT 1\n", "SELECT 1 + 0\n", 1)
    assert edited != original

    def one_change() -> Timing:
        path.write_text(edited if path.read_text() == original else original)
        return cli("jobs", "apply", "--yes", "--manifest", str(path), cache=cache)

    change = median_of(rounds, one_change)
    report("jobs apply --yes, one job changed (others kept)", change, boot, "< 1.5 s at 10k")
    path.write_text(original)
    shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="CLI rounds (medians)")
    parser.add_argument("--skip-naive", action="store_true", help="(one transaction per job)")
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument(
        "--skip-stock-insert", action="store_true", help="(the apply with bulk_create rows)"
    )
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
    if not options.skip_naive:
        timed("naive apply from empty (1 txn per job)", lambda: naive_apply(placed), results)
    clear()
    if not options.skip_stock_insert:
        timed("apply from empty, rows by bulk_create", lambda: stock_insert_apply(placed), results)
        clear()
    outcome = timed("apply from empty (bulk, 1 txn)", lambda: reconcile.apply(placed), results)
    if not options.skip_stock_insert:
        ratio = (
            results["apply from empty, rows by bulk_create"]
            / results["apply from empty (bulk, 1 txn)"]
        )
        print(f"{'apply from empty: COPY vs bulk_create':<44} {ratio:8.2f} x faster")
    assert outcome.summary()["create"] == len(placed)  # the manifest and the built-in upkeep
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
    path.write_text(manifest(options.jobs))
    if not options.skip_naive:
        ratio = (
            results["naive apply from empty (1 txn per job)"]
            / results["apply from empty (bulk, 1 txn)"]
        )
        print(f"{'apply from empty: bulk vs naive':<44} {ratio:8.1f} x faster")
    if not options.skip_cli:
        cli_figures(path, options.jobs, options.rounds)
    clear()


if __name__ == "__main__":
    main()
