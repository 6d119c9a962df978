"""What each engine can honour of a trigger: pg_cron's and Celery's fit, with their reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.clock_changes import clock_changes
from orchestrator.engines.celery.fit import celery_fit
from orchestrator.engines.pg_cron.capabilities import Capabilities
from orchestrator.engines.pg_cron.fit import pg_cron_fit
from orchestrator.schedules import (
    EngineSchedule,
    parse_at,
    parse_schedule,
)
from orchestrator.specs import At, Cron, Every, Startup
from tests.unit.conftest import pg_cron_14

AFTER = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


PG14 = pg_cron_14()
PG15_BERLIN = pg_cron_14(version=(1, 5, 2), cron_timezone="Europe/Berlin")


@pytest.mark.parametrize(
    ("trigger", "zone", "caps", "cron", "reasons"),
    [
        (parse_schedule("0 23 * * *"), "UTC", PG14, "0 23 * * *", ()),
        (parse_schedule("0 23 * * *"), "Etc/UTC", PG14, "0 23 * * *", ()),
        (parse_schedule("@weekly"), "GMT", PG14, "@weekly", ()),
        (parse_schedule("0 0 1 * mon"), "UTC", PG14, "0 0 1 * mon", ()),
        (parse_schedule("0 0 * * 7"), "UTC", PG14, "0 0 * * 7", ()),
        (
            parse_schedule("0 3 * * *"),
            "Europe/Berlin",
            PG14,
            None,
            ("pg_cron 1.4 runs schedules in GMT only; this job asks for Europe/Berlin.",),
        ),
        (
            parse_schedule("10/5 * * * *"),
            "UTC",
            PG14,
            None,
            ("pg_cron 1.4 refuses a step without a range ('10/5'); write '10-59/5'.",),
        ),
        (
            parse_schedule("22-2 * * * *"),
            "UTC",
            PG14,
            None,
            (
                "pg_cron 1.4 reads the descending range '22-2' as empty, where croniter and "
                "Celery wrap it around.",
            ),
        ),
        (
            parse_schedule("0 0 */2 * 1"),
            "UTC",
            PG14,
            None,
            (
                "pg_cron 1.4 (Vixie cron) treats a day field starting with '*' as unrestricted and "
                "then requires both day fields to match, so it reads '0 0 */2 * 1' on different "
                "days than cron and croniter, which fire when either day field matches.",
            ),
        ),
        (
            Every(seconds=30),
            "UTC",
            PG14,
            None,
            (
                "pg_cron 1.4 schedules whole minutes at best; 'every 30s' needs seconds "
                "(pg_cron 1.5 or later).",
            ),
        ),
        (
            Every(seconds=30),
            "UTC",
            PG15_BERLIN,
            None,
            (
                "pg_cron 1.5's '30 seconds' schedule counts from the job's previous start, but "
                "'every 30s' is aligned to the clock (the multiples of 30 s since 00:00 UTC).",
            ),
        ),
        (
            Every(seconds=420),
            "UTC",
            PG14,
            None,
            (
                "'every 7m' does not divide an hour or a day evenly, so no cron expression "
                "fires at "
                "exactly these instants, and pg_cron has only cron schedules.",
            ),
        ),
        (Every(seconds=300), "Europe/Berlin", PG14, "*/5 * * * *", ()),
        (
            parse_at("2025-06-01T03:00:00Z"),
            "UTC",
            PG14,
            None,
            ("pg_cron has no one-time schedules.",),
        ),
        (
            Startup(),
            "UTC",
            PG14,
            None,
            (
                "pg_cron cannot run a job when the application starts (its @reboot means the "
                "database server's start).",
            ),
        ),
        (parse_schedule("0 3 * * *"), "Europe/Berlin", PG15_BERLIN, "0 3 * * *", ()),
        (
            parse_schedule("0 3 * * *"),
            "UTC",
            PG15_BERLIN,
            None,
            (
                "pg_cron 1.5 runs every schedule in cron.timezone (Europe/Berlin); this job asks "
                "for UTC.",
            ),
        ),
    ],
)
def test_pg_cron_fit__table(
    trigger: Cron | Every | At | Startup,
    zone: str,
    caps: Capabilities,
    cron: str | None,
    reasons: tuple[str, ...],
) -> None:
    """pg_cron is a candidate exactly when its reading and zone match; else the reason says why."""
    fit = pg_cron_fit(trigger, zone, caps)
    assert fit.reasons == reasons
    assert (fit.schedule.cron if fit.schedule else None) == cron


@pytest.mark.parametrize(
    ("trigger", "zone", "schedule", "reasons"),
    [
        (parse_schedule("0 0 * * 7"), "UTC", EngineSchedule(kind="cron", cron="0 0 * * 0"), ()),
        (
            parse_schedule("0 0 * * 5-7"),
            "UTC",
            EngineSchedule(kind="cron", cron="0 0 * * 0,5,6"),
            (),
        ),
        (
            parse_schedule("10/5 * * * *"),
            "UTC",
            EngineSchedule(kind="cron", cron="10,15,20,25,30,35,40,45,50,55 * * * *"),
            (),
        ),
        (
            parse_schedule("0 9 * * mon-fri"),
            "Europe/Berlin",
            EngineSchedule(kind="cron", cron="0 9 * * mon-fri", timezone="Europe/Berlin"),
            (),
        ),
        (
            parse_schedule("0 0 1 * mon"),
            "UTC",
            None,
            (
                "Celery's crontab fires only on days matching both day-of-month ('1') and "
                "day-of-week ('mon'), but cron and croniter fire '0 0 1 * mon' when either "
                "matches.",
            ),
        ),
        (
            parse_schedule("0 0 */2 * 1"),
            "UTC",
            None,
            (
                "Celery's crontab fires only on days matching both day-of-month ('*/2') and "
                "day-of-week ('1'), but cron and croniter fire '0 0 */2 * 1' when either matches.",
            ),
        ),
        (
            parse_schedule("30 2 * * *"),
            "Europe/Berlin",
            EngineSchedule(kind="cron", cron="30 2 * * *", timezone="Europe/Berlin"),
            (
                "On the days Europe/Berlin changes its clocks, runs at local times that are "
                "skipped "
                "or repeated (such as 02:30) follow Celery's rule, not croniter's: Celery runs a "
                "skipped time late by the size of the change and a repeated time once, where "
                "croniter runs it at the end of the gap and twice.",
            ),
        ),
        (Every(seconds=7200), "Asia/Tokyo", EngineSchedule(kind="cron", cron="0 */2 * * *"), ()),
        (
            Every(seconds=420),
            "UTC",
            EngineSchedule(kind="interval", seconds=420),
            (
                "Celery's interval schedule would count 'every 7m' from the previous run; our "
                "beat (DueScheduler) keeps it aligned to the clock, at the multiples of 420 s "
                "since 00:00 UTC, as 'every' means on every engine.",
            ),
        ),
        (
            parse_at("2025-06-01T03:00:00Z"),
            "UTC",
            EngineSchedule(kind="clocked", when=datetime(2025, 6, 1, 3, tzinfo=UTC)),
            (),
        ),
        (Startup(), "UTC", EngineSchedule(kind="startup"), ()),
    ],
)
def test_celery_fit__table(
    trigger: Cron | Every | At | Startup,
    zone: str,
    schedule: EngineSchedule | None,
    reasons: tuple[str, ...],
) -> None:
    """Celery honours everything but cron's either-day rule; fields it misreads are spelled out."""
    fit = celery_fit(trigger, zone)
    assert fit.schedule == schedule
    assert fit.reasons == reasons


def test_clock_changes__berlin_and_utc() -> None:
    """Berlin skips and repeats 02:00-02:59 local; UTC never changes its clocks."""
    berlin = clock_changes("Europe/Berlin")
    assert (2, 30) in berlin
    assert (3, 30) not in berlin
    assert (1, 59) not in berlin
    assert clock_changes("UTC") == frozenset()
