"""Benchmark: load + validate + classify a 10,000-job manifest, against PyYAML's C loader alone.

Run from the repository root: ``.venv/bin/python bench/classify.py [--jobs N] [--rounds R]``.

The manifest is generated into a temporary directory: half SQL jobs (every one with its own
SQL text, so each is parsed by PostgreSQL's parser), half Celery tasks with kwargs, retries and
timeouts; schedules mix cron expressions, macros and intervals, and some jobs ask for other
time zones. Classification uses fixed, offline ``Capabilities`` (pg_cron 1.4 and a small
catalog), so no database is involved.

The anchor is ``yaml.load(text, Loader=yaml.CSafeLoader)`` on the same text, measured in the
same run (also printed with the garbage collector off, which is most of its time at 100,000
jobs). Each measurement runs in a fresh process (cold caches, and a peak RSS that belongs to
it alone); time is the best of the rounds. Peak Python allocations are measured in a separate
round with ``tracemalloc`` (which slows that round down, so it is not a timed one).
"""

from __future__ import annotations

import argparse
import gc
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import clock_changes, cron_readings, schedules, sql_analysis  # noqa: E402
from orchestrator.classifier import classify_all  # noqa: E402
from orchestrator.engines.celery import reading as celery_reading  # noqa: E402
from orchestrator.engines.celery.fit import CeleryFit  # noqa: E402
from orchestrator.engines.pg_cron import reading as pg_cron_reading  # noqa: E402
from orchestrator.engines.pg_cron.capabilities import Capabilities  # noqa: E402
from orchestrator.engines.pg_cron.fit import PgCronFit  # noqa: E402
from orchestrator.manifest import load_manifest  # noqa: E402

#: targets scale with --jobs: 3 s and 250 MB at 10,000 (the first targets), and at 100,000 the
#: issue's: within 1.5x of the C loader and under 1 GB of peak RSS
TARGET_SECONDS = 3.0
TARGET_MEGABYTES = 250.0
TARGET_RATIO = 1.5

TASKS = [f"tasks.bench.task_{n}" for n in range(20)]
ZONES = ["UTC", "UTC", "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"]
CRON = ["{m} {h} * * *", "{m} */2 * * *", "*/15 * * * *", "{m} {h} * * mon-fri", "@hourly",
        "@daily", "{m} {h} 1 * *", "{m} 3 * * 7", "{m} {h} 1,15 * *", "0 9-17 * * 1-5"]  # fmt: skip
EVERY = ["every 5m", "every 30s", "every 2h", "every 7m", "every 1h"]
CATALOG = {
    "now": ("internal", False),
    "refresh_metrics": ("plpgsql", True),
    "learn_patterns": ("plpgsql", True),
    "compute_pagerank": ("sql", True),
}


def sql_job(index: int) -> list[str]:
    kind = index % 5
    if kind == 0:
        days = index % 90 + 1
        sql = f"DELETE FROM events_{index} WHERE created_at < now() - interval '{days} days'"  # noqa: S608 - parsed only
    elif kind == 1:
        sql = f"VACUUM (ANALYZE) events_{index}"
    elif kind == 2:
        sql = f"SELECT refresh_metrics({index}, 'shard_{index % 16}')"
    elif kind == 3:
        select = f"SELECT now()::date, count(*) FROM hits_{index} WHERE seen_at > now()"  # noqa: S608 - parsed only
        sql = f"INSERT INTO rollups_{index % 50} (day, total) {select}"
    else:
        sql = f"SELECT learn_patterns({index}); SELECT compute_pagerank({index % 7})"
    lines = [f'    schedule: "{schedule(index)}"', f"    sql: {sql_scalar(sql)}"]
    if index % 11 == 0:
        lines.append(f"    timezone: {ZONES[index % len(ZONES)]}")
    if index % 13 == 0:
        lines.append("    description: Nightly maintenance of one shard")
    return lines


def sql_scalar(sql: str) -> str:
    return "'" + sql.replace("'", "''") + "'"


def task_job(index: int) -> list[str]:
    lines = [
        f'    schedule: "{schedule(index)}"',
        f"    task: {TASKS[index % len(TASKS)]}",
        f"    kwargs: {{shard: {index % 64}, kind: sync, limit: {index % 1000}}}",
    ]
    if index % 3 == 0:
        lines.append(f"    retries: {{max: {index % 5 + 1}, backoff: 60}}")
    if index % 4 == 0:
        lines.append("    timeout: 15m")
    if index % 7 == 0:
        lines.append(f"    timezone: {ZONES[index % len(ZONES)]}")
    if index % 9 == 0:
        lines.append("    tags: [sync, nightly]")
    return lines


def schedule(index: int) -> str:
    if index % 4 == 3:
        return EVERY[index % len(EVERY)]
    return CRON[index % len(CRON)].format(m=index % 60, h=index % 24)


def generate(jobs: int) -> str:
    lines = ["version: 1", "defaults:", "  timezone: UTC", "  queue: default", "jobs:"]
    for index in range(jobs):
        lines.append(f"  job-{index:05d}:")
        lines.extend(sql_job(index) if index % 2 == 0 else task_job(index))
    return "\n".join(lines) + "\n"


def clear_caches() -> None:
    for cached in (
        sql_analysis.analyse_sql,
        cron_readings.check_syntax,
        cron_readings.croniter_reading,
        pg_cron_reading.pg_cron_reading,
        celery_reading.celery_fields,
        celery_reading.celery_reading,
        schedules.zone,
        clock_changes.clock_changes,
    ):
        cached.cache_clear()


def ours(path: Path, capabilities: Capabilities) -> Counter[str]:
    manifest = load_manifest(path, task_names=TASKS)
    placements, errors = classify_all(manifest.jobs, [PgCronFit(capabilities), CeleryFit()])
    if errors:
        raise SystemExit(f"the generated manifest does not classify: {errors[0]}")
    return Counter(placement.target for placement in placements.values())


def floor(text: str) -> object:
    return yaml.load(text, Loader=yaml.CSafeLoader)


def best_of(rounds: int, run: object) -> float:
    times = []
    for _ in range(rounds):
        clear_caches()
        gc.collect()
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def child(kind: str, path: Path) -> None:
    """One measurement in this fresh process: prints ``seconds maxrss_mib``.

    ``ours``: load + validate + classify; ``floor``: ``yaml.load`` with ``CSafeLoader`` as it
    comes (garbage collector on); ``floor-nogc``: the same with the collector off.
    """
    capabilities = Capabilities.with_pg_cron(functions=CATALOG)
    text = path.read_text()
    gc.collect()
    started = time.perf_counter()
    if kind == "ours":
        ours(path, capabilities)
    elif kind == "floor":
        floor(text)
    else:
        gc.disable()
        floor(text)
        gc.enable()
    seconds = time.perf_counter() - started
    print(f"{seconds} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}")


def in_child(kind: str, path: Path, rounds: int) -> tuple[float, float]:
    """Best time and largest peak RSS (MiB) of ``rounds`` fresh processes running ``kind``."""
    results = []
    for _ in range(rounds):
        done = subprocess.run(
            [sys.executable, __file__, "--child", kind, "--path", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        seconds, rss = done.stdout.split()
        results.append((float(seconds), float(rss)))
    return min(s for s, _ in results), max(r for _, r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=("ours", "floor", "floor-nogc"), help=argparse.SUPPRESS)
    parser.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child, arguments.path)
        return 0
    capabilities = Capabilities.with_pg_cron(functions=CATALOG)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "jobs.yaml"
        text = generate(arguments.jobs)
        path.write_text(text)
        engines = ours(path, capabilities)  # a check that the file is valid
        ours_seconds, ours_rss = in_child("ours", path, arguments.rounds)
        floor_seconds, floor_rss = in_child("floor", path, arguments.rounds)
        nogc_seconds, _ = in_child("floor-nogc", path, arguments.rounds)
        clear_caches()
        gc.collect()
        tracemalloc.start()
        ours(path, capabilities)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    peak_mb = peak / 1024 / 1024
    ratio = ours_seconds / floor_seconds
    size_mb = len(text.encode()) / 1024 / 1024
    print(
        f"manifest: {arguments.jobs} jobs, {size_mb:.1f} MiB "
        f"({engines['pg_cron']} placed on pg_cron, {engines['celery']} on Celery)"
    )
    print(
        f"load + validate + classify: {ours_seconds:.3f} s "
        f"({arguments.jobs / ours_seconds:,.0f} jobs/s), best of {arguments.rounds} fresh "
        f"processes; peak RSS {ours_rss:.0f} MiB"
    )
    print(
        f"anchor, yaml.load(CSafeLoader) alone: {floor_seconds:.3f} s (peak RSS "
        f"{floor_rss:.0f} MiB); with the garbage collector off: {nogc_seconds:.3f} s"
    )
    print(
        f"ratio to the anchor: {ratio:.2f}x (to the anchor with gc off: "
        f"{ours_seconds / nogc_seconds:.2f}x)"
    )
    print(f"peak memory: {peak_mb:.1f} MiB of Python allocations (tracemalloc, separate round)")
    seconds_target = TARGET_SECONDS * max(1.0, arguments.jobs / 10_000)  # linear, no worse
    megabytes_target = TARGET_MEGABYTES if arguments.jobs <= 10_000 else 1024.0
    checks = [
        (f"under {seconds_target:.0f} s", ours_seconds < seconds_target),
        (f"peak RSS under {megabytes_target:.0f} MB", ours_rss < megabytes_target),
        (f"within {TARGET_RATIO:.1f}x of the anchor", ratio <= TARGET_RATIO),
    ]  # fmt: skip
    print("targets: " + ", ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
