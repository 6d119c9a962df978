"""Schedules: parsing triggers, next runs from croniter, and croniter's reading of cron.

What each engine can honour is in test_engine_fit.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.cron_readings import Reading, croniter_reading
from orchestrator.schedules import (
    ScheduleError,
    every_as_cron,
    next_runs,
    parse_at,
    parse_duration,
    parse_instant,
    parse_schedule,
)
from orchestrator.specs import Cron, Every, Startup

AFTER = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0 23 * * *", Cron(expr="0 23 * * *", source="0 23 * * *")),
        ("  0   23 * *  * ", Cron(expr="0 23 * * *", source="0   23 * *  *")),
        ("@hourly", Cron(expr="@hourly", source="@hourly")),
        ("@DAILY", Cron(expr="@daily", source="@DAILY")),
        (
            "*/15 9-17 * * MON-FRI",
            Cron(expr="*/15 9-17 * * mon-fri", source="*/15 9-17 * * MON-FRI"),
        ),
        ("0 0 1 jan,jul *", Cron(expr="0 0 1 jan,jul *", source="0 0 1 jan,jul *")),
        ("every 30s", Every(seconds=30)),
        ("every 5m", Every(seconds=300)),
        ("every 2h", Every(seconds=7200)),
        ("Every 10 m", Every(seconds=600)),
    ],
)
def test_parse_schedule__valid(text: str, expected: Cron | Every) -> None:
    """Cron text is normalised (spaces, case) while keeping the source; 'every' is seconds."""
    parsed = parse_schedule(text)
    assert parsed == expected
    if isinstance(expected, Cron):
        assert isinstance(parsed, Cron)
        assert (parsed.expr, parsed.source) == (expected.expr, expected.source)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0 0 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"),
        ("60 * * * *", "minute: 60 is out of range 0-59"),
        ("0 24 * * *", "hour: 24 is out of range 0-23"),
        ("0 0 * * 8", "day-of-week: 8 is out of range 0-7"),
        (
            "0 0 ? * *",
            "day-of-month: '?' uses a croniter extension (?, H, or L, W, # outside the day "
            "fields) that no engine reads; L, W and # are read in day-of-month and day-of-week",
        ),
        (
            "0 L * * *",
            "hour: 'l' uses a croniter extension (?, H, or L, W, # outside the day fields) that "
            "no engine reads; L, W and # are read in day-of-month and day-of-week",
        ),
        (
            "0 0 * * 1#6",
            "croniter cannot read '0 0 * * 1#6': [0 0 * * 1#6] is not acceptable. "
            "Invalid day_of_week value: '6'",
        ),
        (
            "5-5 * * * *",
            "minute: croniter reads the range '5-5' as the whole field and cron as 5 alone; "
            "write '5'",
        ),
        ("*/0 * * * *", "minute: the step in '*/0' must be at least 1"),
        (
            "0 0 * * sunday",
            "day-of-week: 'sunday' is not valid here (numbers or names "
            "sun/mon/tue/wed/thu/fri/sat)",
        ),
        (
            "0 0 * jan-x *",
            "month: 'x' is not valid here (numbers or names "
            "jan/feb/mar/apr/may/jun/jul/aug/sep/oct/nov/dec)",
        ),
        ("0 0 31 2 *", "'0 0 31 2 *' never fires: none of its months has such a day"),
        ("every 0s", "'every 0s': the interval must be between 1s and 366 days"),
        (
            "every 5 minutes",
            "cannot read 'every 5 minutes': write 'every 30s', 'every 5m' or 'every 2h'",
        ),
        ("", "the schedule is empty"),
    ],
)
def test_parse_schedule__refused(text: str, message: str) -> None:
    """Anything outside the grammar both engines share is refused with the field and why."""
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text)
    assert str(caught.value) == message


def test_parse_schedule__unknown_macro_points_to_startup() -> None:
    """'@reboot' is refused, and the message names 'on: startup' as the way to say it."""
    with pytest.raises(ScheduleError, match="for a run at start-up use 'on: startup'"):
        parse_schedule("@reboot")


@pytest.mark.parametrize(
    ("seconds", "expr"),
    [
        (60, "* * * * *"),
        (300, "*/5 * * * *"),
        (20 * 60, "*/20 * * * *"),
        (3600, "0 * * * *"),
        (7200, "0 */2 * * *"),
        (8 * 3600, "0 */8 * * *"),
        (86400, "0 0 * * *"),
        (30, None),
        (90, None),
        (7 * 60, None),
        (45 * 60, None),
        (90 * 60, None),
        (5 * 3600, None),
        (2 * 86400, None),
    ],
)
def test_every_as_cron__only_when_the_instants_are_identical(
    seconds: int, expr: str | None
) -> None:
    """An interval becomes cron only when it divides an hour (minutes) or a day (hours)."""
    assert every_as_cron(seconds) == expr


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(30, 30), ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), (" 5 M ", 300)],
)
def test_parse_duration__units(value: int | str, seconds: int) -> None:
    """Durations are integers (seconds) or a number with s/m/h/d."""
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", [0, -5, "0s", "5x", "15 minutes", True])
def test_parse_duration__refused(value: int | str) -> None:
    """Zero, negatives, unknown units and booleans are not durations."""
    with pytest.raises(ScheduleError):
        parse_duration(value)


def test_parse_instant__offset_required() -> None:
    """A naive date-time is ambiguous, so it is refused with the fix spelled out."""
    with pytest.raises(ScheduleError) as caught:
        parse_instant("2025-06-01T03:00:00")
    assert str(caught.value) == (
        "'2025-06-01T03:00:00' has no UTC offset; write it with one, e.g. 2025-06-01T03:00:00+00:00"
    )


def test_parse_at__z_and_offsets() -> None:
    """'Z' and numeric offsets both give aware instants."""
    assert parse_at("2025-06-01T03:00:00Z").when == datetime(2025, 6, 1, 3, tzinfo=UTC)
    assert parse_at("2025-06-01T05:00:00+02:00").when == datetime(2025, 6, 1, 3, tzinfo=UTC)


# --------------------------------------------------------------------------- next runs


def iso(runs: list[datetime]) -> list[str]:
    return [run.isoformat() for run in runs]


def test_next_runs__cron_in_utc() -> None:
    """A cron expression's next runs, aware, with the offset written out."""
    runs = next_runs(parse_schedule("0 23 * * *"), "UTC", 2, AFTER)
    assert iso(runs) == ["2025-01-01T23:00:00+00:00", "2025-01-02T23:00:00+00:00"]


def test_next_runs__cron_in_a_zone_across_spring_forward() -> None:
    """In the job's zone: 02:30 does not exist on 30 March in Berlin; croniter runs at 03:00."""
    runs = next_runs(
        parse_schedule("30 2 * * *"), "Europe/Berlin", 3, datetime(2025, 3, 28, 12, tzinfo=UTC)
    )
    assert iso(runs) == [
        "2025-03-29T02:30:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:30:00+02:00",
    ]


def test_next_runs__aligned_interval_is_utc_cron_shown_in_zone() -> None:
    """'every 5m' fires on UTC's 5-minute marks, shown in the job's zone."""
    runs = next_runs(Every(seconds=300), "Europe/Berlin", 2, datetime(2025, 1, 1, 0, 2, tzinfo=UTC))
    assert iso(runs) == ["2025-01-01T01:05:00+01:00", "2025-01-01T01:10:00+01:00"]


def test_next_runs__unaligned_interval_aligned_to_the_clock() -> None:
    """'every 7m' has no cron form; its runs are still the multiples of 420 s since the Unix
    epoch (one meaning for ``every``), not counted from the given instant."""
    runs = next_runs(Every(seconds=420), "UTC", 2, datetime(2025, 1, 1, 0, 0, 30, tzinfo=UTC))
    assert iso(runs) == ["2025-01-01T00:05:00+00:00", "2025-01-01T00:12:00+00:00"]
    assert all(int(run.timestamp()) % 420 == 0 for run in runs)


def test_next_runs__one_time_and_startup() -> None:
    """'at' runs once if still ahead, converted to the zone; 'on: startup' has no clock time."""
    at = parse_at("2025-06-01T03:00:00+00:00")
    assert iso(next_runs(at, "Asia/Tokyo", 5, AFTER)) == ["2025-06-01T12:00:00+09:00"]
    assert next_runs(at, "UTC", 5, datetime(2025, 7, 1, tzinfo=UTC)) == []
    assert next_runs(Startup(), "UTC", 5, AFTER) == []


def test_next_runs__naive_after_is_utc() -> None:
    """A naive 'after' is read as UTC rather than refused."""
    runs = next_runs(parse_schedule("@hourly"), "UTC", 1, datetime(2025, 1, 1, 12, 30))
    assert iso(runs) == ["2025-01-01T13:00:00+00:00"]


# --------------------------------------------------------------------------- readings


def _field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    part = st.one_of(
        st.just("*"),
        number.map(str),
        st.tuples(number, number).map(lambda pair: f"{pair[0]}-{pair[1]}"),
        st.integers(1, high).map(lambda step: f"*/{step}"),
        st.tuples(number, st.integers(1, 9)).map(lambda pair: f"{pair[0]}/{pair[1]}"),
    )
    return st.lists(part, min_size=1, max_size=3).map(",".join)


def brute_force_runs(reading: Reading, after: datetime, n: int) -> list[datetime]:
    """Walk day by day through the calendar, keeping the minutes the reading says fire."""
    runs: list[datetime] = []
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(366 * 30):
        dow = (day.weekday() + 1) % 7
        if day.month in reading.months and (day.day, dow) in reading.days:
            for hour in sorted(reading.hours):
                for minute in sorted(reading.minutes):
                    moment = day.replace(hour=hour, minute=minute)
                    if moment > after:
                        runs.append(moment)
                        if len(runs) == n:
                            return runs
        day += timedelta(days=1)
    return runs


@settings(max_examples=300, deadline=None, database=None)
@given(
    st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12), _field(0, 7)).map(
        " ".join
    ),
    st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
def test_croniter_reading__is_what_croniter_iterates(text: str, after: datetime) -> None:
    """The reading every engine is compared with fires exactly where croniter iterates."""
    try:
        expr = parse_schedule(text)
    except ScheduleError:
        return
    assert isinstance(expr, Cron)
    expected = brute_force_runs(croniter_reading(expr.expr), after, 8)
    assert next_runs(expr, "UTC", 8, after) == expected
