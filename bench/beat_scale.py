"""Benchmark beat at scale: stock django-celery-beat ``DatabaseScheduler`` against ``DueScheduler``.

Judged as a user sees it, with a real ``celery beat`` process and the messages it puts in Redis
(read straight from the queue's Redis list, so no worker's latency is counted):

- **start**: from launching ``celery beat`` to the first due message (an every-second probe task
  that is due at launch), interpreter and Django start-up included;
- **CPU**: beat's CPU time (``/proc/PID/stat``) over a window while the probe is due every second
  among N idle tasks, as % of one core;
- **delay**: for each probe message, its arrival in Redis minus the instant it was due, p50/p99
  (DueScheduler stamps the slot in the ``scheduled_at`` header; stock sends no slot, so its due
  instant is the previous arrival plus the period, which is how its interval schedule counts);
- **save-to-message**: a new one-off clocked task due now is saved through the ORM (as the admin
  does); the time until its message is in Redis, beat's sleep included (median of ``--saves``);
- **peak RSS** of the beat process (``VmHWM``).

Populations, bulk-inserted with ``INSERT ... SELECT generate_series`` (never the ORM one by one):
``crontab``: N crontab tasks over 500 distinct crontabs, each firing twice a day at hours at least 3
h ahead (none due during the run; an hour *list* because stock 2.9 skips reading crontabs whose hour
is one number more than 2 h away, see bench/README.md); ``mixed``: 60% such crontabs, 30% intervals
of 2-8 hours, 10% one-off clocked tasks days ahead. The two schedulers alternate on the same rows.
The first DueScheduler start after a bulk load computes every due time once; it is reported on its
own line ("prime"), and the due table is vacuumed after it (as autovacuum would). At 1M tasks only
DueScheduler runs (``--million``): stock would need about 10 GiB and minutes per reload.

    ORCHESTRATOR_PROFILE=beatbench python3 scripts/services.py start --profile beatbench --quiet
    ORCHESTRATOR_PROFILE=beatbench .venv/bin/python manage.py bootstrap --no-admin
    ORCHESTRATOR_PROFILE=beatbench .venv/bin/python bench/beat_scale.py [--million]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("ORCHESTRATOR_PROFILE", "beatbench")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django_celery_beat.models import ClockedSchedule, PeriodicTask  # noqa: E402

SCHEDULERS = {
    "stock": "django_celery_beat.schedulers:DatabaseScheduler",
    "due": "orchestrator.engines.celery.due_scheduler:DueScheduler",
}
PREFIX = "bench-beat-"
PROBE, SAVED, IDLE = "bench-beat-probe", "bench-beat-save", "bench-beat-idle"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOGS = ROOT / ".data" / os.environ["ORCHESTRATOR_PROFILE"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


# ---------------------------------------------------------------------- population


def sql(statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def clear() -> None:
    sql("DELETE FROM django_celery_beat_periodictask WHERE name LIKE %s", [PREFIX + "%"])
    sql("DELETE FROM django_celery_beat_crontabschedule WHERE day_of_month = '1-31'")
    sql("DELETE FROM django_celery_beat_clockedschedule WHERE clocked_time > now() + '12 hours'")
    sql("VACUUM ANALYZE django_celery_beat_periodictask")


def populate(kind: str, count: int) -> float:
    """Insert ``count`` idle tasks plus the probe; returns the seconds the insert took."""
    started = time.perf_counter()
    hour = datetime.now(UTC).hour
    # 500 crontabs: minute m, hours {h, h+6} with h 3..11 hours ahead; '1-31' marks them ours.
    crontabs = [
        row[0]
        for row in sql(
            "INSERT INTO django_celery_beat_crontabschedule"
            " (minute, hour, day_of_week, day_of_month, month_of_year, timezone)"
            " SELECT (g %% 60)::text, ((%(h)s + 3 + g / 60) %% 24)::text || ','"
            " || ((%(h)s + 9 + g / 60) %% 24)::text, '*', '1-31', '*', 'UTC'"
            " FROM generate_series(0, 499) AS g RETURNING id",
            {"h": hour},
        )
    ]
    intervals = [interval_id(hours, "hours") for hours in range(2, 9)]
    clocked = [
        row[0]
        for row in sql(
            "INSERT INTO django_celery_beat_clockedschedule (clocked_time)"
            " SELECT now() + make_interval(days => g) FROM generate_series(1, 500) AS g"
            " RETURNING id"
        )
    ]
    share = {"crontab": (10, 10), "mixed": (6, 9)}[kind]  # of 10: crontab below a, interval below b
    sql(
        "INSERT INTO django_celery_beat_periodictask (name, task, crontab_id, interval_id,"
        " clocked_id, args, kwargs, queue, headers, one_off, enabled, last_run_at,"
        " total_run_count, date_changed, description)"
        " SELECT %(prefix)s || g, 'bench.noop',"
        "  CASE WHEN g %% 10 < %(a)s THEN (%(crontabs)s::int[])[1 + g %% 500] END,"
        "  CASE WHEN g %% 10 >= %(a)s AND g %% 10 < %(b)s THEN (%(intervals)s::int[])[1 + g %% 7]"
        "  END,"
        "  CASE WHEN g %% 10 >= %(b)s THEN (%(clocked)s::int[])[1 + g %% 500] END,"
        "  '[]', '{}', %(queue)s, '{}', g %% 10 >= %(b)s, true, now(), 0, now(), ''"
        " FROM generate_series(1, %(count)s) AS g",
        {
            "prefix": PREFIX,
            "a": share[0],
            "b": share[1],
            "crontabs": crontabs,
            "intervals": intervals,
            "clocked": clocked,
            "queue": IDLE,
            "count": count,
        },
    )
    sql(
        "INSERT INTO django_celery_beat_periodictask (name, task, interval_id, args, kwargs, queue,"
        " headers, one_off, enabled, last_run_at, total_run_count, date_changed, description)"
        " VALUES (%s, 'bench.noop', %s, '[]', '{}', %s, '{}', false, true, now(), 0, now(), '')",
        [PROBE, interval_id(1, "seconds"), PROBE],
    )
    sql("VACUUM ANALYZE django_celery_beat_periodictask")
    sql("VACUUM ANALYZE celery_engine_beatdue")
    return time.perf_counter() - started


def interval_id(every: int, period: str) -> int:
    query = "SELECT id FROM django_celery_beat_intervalschedule WHERE every = %s AND period = %s"
    found = sql(query, [every, period])
    if found:
        return found[0][0]
    return sql(
        "INSERT INTO django_celery_beat_intervalschedule (every, period) VALUES (%s, %s)"
        " RETURNING id",
        [every, period],
    )[0][0]


# ---------------------------------------------------------------------- beat process


class Beat:
    """A real ``celery beat`` with the given scheduler, output in .data/<profile>/."""

    def __init__(self, scheduler: str, label: str) -> None:
        self.log = LOGS / f"beat-scale-{label}.log"
        self.handle = self.log.open("w")
        self.launched = time.time()
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "project", "beat", "--loglevel=WARNING",
                "--pidfile=", f"--scheduler={scheduler}",
                f"--schedule={LOGS / f'beat-scale-{label}.schedule'}",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.handle.close()


class Queues:
    """The Redis lists beat sends to: arrival time (wall clock) and headers of each message."""

    def __init__(self) -> None:
        self.redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def drain(self) -> None:
        self.redis.delete(PROBE, SAVED, IDLE)

    def next(self, queue: str, timeout: float) -> tuple[float, dict[str, Any]] | None:
        deadline = time.monotonic() + timeout
        found = None
        # Short waits: redis-py gives up on a long blocking read.
        while found is None and time.monotonic() < deadline:
            found = self.redis.blpop([queue], timeout=1)
        if found is None:
            return None
        arrived = time.time()
        return arrived, json.loads(found[1])["headers"]


# ---------------------------------------------------------------------- one run


def measure(
    scheduler: str, label: str, queues: Queues, window: float, saves: int
) -> dict[str, Any]:
    PeriodicTask.objects.filter(name=PROBE).update(
        last_run_at=datetime.now(UTC) - timedelta(seconds=10)
    )
    queues.drain()
    beat = Beat(SCHEDULERS[scheduler], label)
    try:
        first = queues.next(PROBE, timeout=600)
        if first is None:
            raise SystemExit(f"no message from beat within 600 s; see {beat.log}")
        start_s = first[0] - beat.launched

        time.sleep(2)  # let start-up work (stock's first full read is over by now) settle
        queues.redis.delete(PROBE)
        cpu_before, wall_before = beat.cpu_seconds(), time.monotonic()
        arrivals: list[tuple[float, dict[str, Any]]] = []
        while time.monotonic() - wall_before < window:
            got = queues.next(PROBE, timeout=max(1.0, window - (time.monotonic() - wall_before)))
            if got is not None:
                arrivals.append(got)
        cpu = (beat.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before) * 100

        delays = []
        for index, (arrived, headers) in enumerate(arrivals):
            if headers.get("scheduled_at"):
                due = datetime.fromisoformat(headers["scheduled_at"]).timestamp()
            elif index > 0:
                due = arrivals[index - 1][0] + 1.0
            else:
                continue
            delays.append(arrived - due)

        save_times = []
        for number in range(saves):
            clock = ClockedSchedule.objects.create(clocked_time=datetime.now(UTC))
            name = f"{PREFIX}saved-{label}-{number}"
            saved_at = time.time()
            task = PeriodicTask.objects.create(
                name=name, task="bench.noop", clocked=clock, one_off=True, queue=SAVED
            )
            got = queues.next(SAVED, timeout=120)
            save_times.append(got[0] - saved_at if got else float("inf"))
            task.delete()
            clock.delete()
            time.sleep(1)
        rss = beat.peak_rss_mib()
    finally:
        beat.stop()
        time.sleep(5)  # let the machine settle (a stock beat at 100k frees a GiB on exit)
    return {
        "start_s": start_s,
        "cpu_pct": cpu,
        "delay_p50_ms": percentile(delays, 0.5) * 1000 if delays else float("nan"),
        "delay_p99_ms": percentile(delays, 0.99) * 1000 if delays else float("nan"),
        "probe_runs": len(arrivals),
        "save_s": statistics.median(save_times),
        "rss_mib": rss,
    }


def show(population: str, count: int, label: str, figures: dict[str, Any]) -> None:
    print(
        f"{population:>7} {count:>9,} {label:>5}: start {figures['start_s']:7.2f} s | "
        f"CPU {figures['cpu_pct']:6.2f}% | delay p50 {figures['delay_p50_ms']:8.1f} ms "
        f"p99 {figures['delay_p99_ms']:8.1f} ms ({figures['probe_runs']} runs) | "
        f"save-to-message {figures['save_s']:6.2f} s | peak RSS {figures['rss_mib']:7.1f} MiB",
        flush=True,
    )


def ratio(stock: dict[str, Any], due: dict[str, Any]) -> None:
    parts = []
    for key, name in (("start_s", "start"), ("cpu_pct", "CPU"), ("save_s", "save-to-message"),
                      ("rss_mib", "RSS"), ("delay_p99_ms", "delay p99")):  # fmt: skip
        if due[key] > 0:
            parts.append(f"{name} {stock[key] / due[key]:.1f}x")
    print(f"{'':>23}stock / due: " + ", ".join(parts), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="crontab population sizes")
    parser.add_argument("--mixed", type=int, default=100_000, help="mixed size (0: none)")
    parser.add_argument("--million", action="store_true", help="also 1,000,000 tasks, ours only")
    parser.add_argument("--window", type=float, default=20.0, help="seconds of CPU/delay window")
    parser.add_argument("--saves", type=int, default=3, help="save-to-message repetitions")
    parser.add_argument("--rounds", type=int, default=1, help="alternations per population")
    parser.add_argument("--schedulers", default="stock,due", help="which to run: stock,due")
    options = parser.parse_args(argv)

    queues = Queues()
    labels = tuple(label for label in options.schedulers.split(",") if label in SCHEDULERS)
    plan = [("crontab", int(size), labels) for size in options.sizes.split(",") if size]
    if options.mixed:
        plan.append(("mixed", options.mixed, labels))
    if options.million:
        plan.append(("crontab", 1_000_000, ("due",)))
    print(f"cores: {os.cpu_count()} (shared with other engineers' test suites); window "
          f"{options.window:g} s, {options.saves} saves per run", flush=True)  # fmt: skip
    try:
        for population, count, labels in plan:
            clear()
            inserted = populate(population, count)
            print(f"{population} {count:,}: bulk insert {inserted:.1f} s", flush=True)
            prime = measure("due", f"{population}-{count}-prime", queues, 5.0, 1)
            print(f"{population:>7} {count:>9,} prime: first DueScheduler start after the bulk "
                  f"load (computes {count:,} due times) {prime['start_s']:.2f} s, peak RSS "
                  f"{prime['rss_mib']:.1f} MiB", flush=True)  # fmt: skip
            # The prime rewrote every due row; autovacuum would clean up the dead versions within a
            # minute or so of a real bulk load. Do it now so that starts are measured in that state.
            sql("VACUUM ANALYZE celery_engine_beatdue")
            results: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
            for number in range(options.rounds):
                for label in labels:
                    figures = measure(label, f"{population}-{count}-{label}-{number}", queues,
                                      options.window, options.saves)  # fmt: skip
                    results[label].append(figures)
                    show(population, count, label, figures)
            if options.rounds > 1:
                for label in labels:
                    median = {key: statistics.median(r[key] for r in results[label])
                              for key in results[label][0]}  # fmt: skip
                    show(population, count, f"med {label}", median)
            if len(labels) == 2:
                pick = {label: {key: statistics.median(r[key] for r in results[label])
                                for key in results[label][0]} for label in labels}  # fmt: skip
                ratio(pick["stock"], pick["due"])
    finally:
        clear()
        queues.drain()
    return 0


if __name__ == "__main__":
    sys.exit(main())
