"""``engine_times``: the instants each engine really uses, checked against the engines' own code.

Celery's are checked with Celery itself: at each instant we list, django-celery-beat's
``TzAwareCrontab.is_due`` (what beat asks every tick) must say "due" for the previous run, and
one second earlier "not due". pg_cron's are checked against its documented reading: schedules
in GMT, and Vixie cron's day rule (a day field starting with ``*`` makes both day fields
required to match).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from orchestrator.engines.celery import clock as celery_clock
from orchestrator.engines.pg_cron import clock as pg_cron_clock
from orchestrator.schedules import next_runs, parse_schedule
from orchestrator.specs import At, Every, Trigger

NEW_YORK = "America/New_York"
CLOCKS = {"celery": celery_clock, "pg_cron": pg_cron_clock}


def engine_runs(
    engine: str,
    trigger: Trigger,
    zone: str,
    n: int,
    after: datetime,
    last_run: datetime | None = None,
) -> list[datetime]:
    """The engine's next ``n`` runs, shown in ``zone`` (as ``engine_times.next_runs`` does)."""
    runs = CLOCKS[engine].runs(trigger, zone, after, last_run)
    return [next(runs).astimezone(ZoneInfo(zone)) for _ in range(n)]


def iso(instants: list[datetime]) -> list[str]:
    return [instant.isoformat() for instant in instants]


def assert_celery_agrees(expr: str, zone: str, after: datetime, runs: list[datetime]) -> None:
    """Each listed run is exactly when beat's ``is_due`` turns true after the previous one."""
    last = after
    for run in (run.astimezone(UTC) for run in runs):  # UTC: aware arithmetic is wall-clock
        schedule = celery_clock.celery_crontab(expr, zone)
        schedule.nowfun = lambda moment=run - timedelta(seconds=1): moment
        assert not schedule.is_due(last).is_due, (last, run)
        schedule.nowfun = lambda moment=run: moment
        assert schedule.is_due(last).is_due, (last, run)
        assert schedule.remaining_estimate(last) == timedelta(0)
        last = run


def test_celery__spring_forward_gap_runs_late_by_the_change() -> None:
    """2:30 does not exist in New York on 2027-03-14: Celery runs at 03:30 EDT, 30 minutes
    after croniter's 03:00, and the listed instants are those beat's is_due agrees with."""
    trigger = parse_schedule("30 2 * * *")
    after = datetime(2027, 3, 13, 12, tzinfo=UTC)
    runs = engine_runs("celery", trigger, NEW_YORK, 3, after)
    assert iso(runs) == [
        "2027-03-14T03:30:00-04:00",
        "2027-03-15T02:30:00-04:00",
        "2027-03-16T02:30:00-04:00",
    ]
    assert iso(next_runs(trigger, NEW_YORK, 1, after)) == ["2027-03-14T03:00:00-04:00"]
    assert_celery_agrees("30 2 * * *", NEW_YORK, after, runs)


def test_celery__fall_back_repeated_hour_runs_once() -> None:
    """1:30 happens twice in New York on 2027-11-07: Celery runs once (EDT), croniter twice."""
    trigger = parse_schedule("30 1 * * *")
    after = datetime(2027, 11, 6, 12, tzinfo=UTC)
    runs = engine_runs("celery", trigger, NEW_YORK, 2, after)
    assert iso(runs) == ["2027-11-07T01:30:00-04:00", "2027-11-08T01:30:00-05:00"]
    assert iso(next_runs(trigger, NEW_YORK, 2, after)) == [
        "2027-11-07T01:30:00-04:00",
        "2027-11-07T01:30:00-05:00",
    ]
    assert_celery_agrees("30 1 * * *", NEW_YORK, after, runs)


@pytest.mark.parametrize(
    ("expr", "after"),
    [
        ("*/20 * * * *", datetime(2027, 3, 14, 5, 0, tzinfo=UTC)),
        ("*/20 * * * *", datetime(2027, 11, 7, 4, 0, tzinfo=UTC)),
        ("0 9 * * 1-5", datetime(2027, 3, 12, 0, 0, tzinfo=UTC)),
        ("15 2 1 * *", datetime(2027, 1, 15, tzinfo=UTC)),
    ],
)
def test_celery__instants_are_the_ones_is_due_fires_at(expr: str, after: datetime) -> None:
    """Over DST days, weekdays and month days, every instant listed is one beat fires at."""
    runs = engine_runs("celery", parse_schedule(expr), NEW_YORK, 12, after)
    assert runs == sorted(set(runs))
    assert_celery_agrees(expr, NEW_YORK, after, runs)


def test_pg_cron__reads_schedules_in_gmt_whatever_the_zone_shown() -> None:
    """pg_cron 1.4 runs '0 23 * * *' at 23:00 GMT; the instants are shown in the job's zone."""
    after = datetime(2027, 3, 13, tzinfo=UTC)
    runs = engine_runs("pg_cron", parse_schedule("0 23 * * *"), NEW_YORK, 2, after)
    assert [run.astimezone(UTC).hour for run in runs] == [23, 23]
    assert iso(runs) == ["2027-03-13T18:00:00-05:00", "2027-03-14T19:00:00-04:00"]


def test_pg_cron__vixie_day_rule_with_a_starred_day_field() -> None:
    """Vixie cron (pg_cron) requires both day fields when one starts with '*': '0 12 */2 * 1'
    runs on Mondays with an odd day of the month only; croniter runs on either."""
    trigger = parse_schedule("0 12 */2 * 1")
    after = datetime(2027, 1, 1, tzinfo=UTC)
    runs = engine_runs("pg_cron", trigger, "UTC", 4, after)
    assert all(run.isoweekday() == 1 and run.day % 2 == 1 for run in runs)
    assert iso(runs)[:2] == ["2027-01-11T12:00:00+00:00", "2027-01-25T12:00:00+00:00"]
    either = croniter("0 12 */2 * 1", after).get_next(datetime)
    assert either < runs[0]


def test_pg_cron__instants_between_match_croniter_in_utc_where_they_agree() -> None:
    """For an expression both read alike, pg_cron's instants are croniter's in UTC."""
    trigger = parse_schedule("*/7 3-5 * * *")
    start = datetime(2027, 6, 1, tzinfo=UTC)
    end = start + timedelta(days=2)
    found = []
    for instant in pg_cron_clock.runs(trigger, "Europe/Berlin", start):
        if instant > end:
            break
        found.append(instant)
    iterator = croniter("*/7 3-5 * * *", start)
    expected = []
    while (instant := iterator.get_next(datetime)) <= end:
        expected.append(instant)
    assert found == expected


def test_intervals_and_one_time__aligned_to_the_clock() -> None:
    """An interval no cron expression matches runs at the multiples of its length since the
    Unix epoch, whatever the engine's last run (``every`` has one meaning); an `at` job has
    one instant, none once it is past."""
    after = datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC)
    last = datetime(2027, 1, 1, 0, 0, 10, tzinfo=UTC)
    runs = engine_runs("celery", Every(seconds=420), "UTC", 2, after, last_run=last)
    # 2027-01-01T00:00Z is 1798761600 s after the epoch: 420 s multiples fall at :02:00, :09:00
    assert iso(runs) == ["2027-01-01T00:02:00+00:00", "2027-01-01T00:09:00+00:00"]
    assert all(int(run.timestamp()) % 420 == 0 for run in runs)
    when = datetime(2027, 1, 2, 9, tzinfo=ZoneInfo("Europe/Paris"))
    assert list(celery_clock.runs(At(when=when), "UTC", after)) == [when]
    assert list(celery_clock.runs(At(when=when), "UTC", when)) == []
