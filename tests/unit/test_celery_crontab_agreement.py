"""Our reading of cron expressions against what Celery's crontab really fires.

For every expression the classifier hands to Celery, Celery's own scheduling code (the
``TzAwareCrontab`` django-celery-beat's scheduler builds, and its ``remaining_estimate``) must
fire at exactly croniter's next instants. For expressions we call incompatible, the divergence
is shown: Celery's instants differ from croniter's.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from django_celery_beat.tzcrontab import TzAwareCrontab
from hypothesis import event, given, settings
from hypothesis import strategies as st

from orchestrator.engines.celery.fit import celery_fit
from orchestrator.engines.celery.reading import celery_fields
from orchestrator.schedules import parse_schedule
from orchestrator.specs import Cron

RUNS = 24


def croniter_runs(expr: str, zone: str, after: datetime, n: int = RUNS) -> list[datetime]:
    iterator = croniter(expr, after.astimezone(ZoneInfo(zone)))
    return [iterator.get_next(datetime).astimezone(UTC) for _ in range(n)]


def celery_runs(fields_cron: str, zone: str, after: datetime, n: int = RUNS) -> list[datetime]:
    """Celery's next fire times: each one is 'last run' plus Celery's remaining estimate."""
    minute, hour, day_of_month, month_of_year, day_of_week = fields_cron.split(" ")
    schedule = TzAwareCrontab(
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        tz=ZoneInfo(zone),
    )
    runs = []
    current = after
    for _ in range(n):
        schedule.nowfun = lambda moment=current: moment  # Celery's "now" is the last run
        current = current + schedule.remaining_estimate(current)
        runs.append(current.astimezone(UTC))
    return runs


def celery_schedule(text: str, zone: str) -> str:
    trigger = parse_schedule(text)
    assert isinstance(trigger, Cron)
    fit = celery_fit(trigger, zone)
    assert fit.schedule is not None, fit.reasons
    assert fit.schedule.cron is not None
    return fit.schedule.cron


COMPATIBLE = [
    ("0 23 * * *", "UTC"),
    ("*/15 * * * *", "UTC"),
    ("@hourly", "UTC"),
    ("@weekly", "UTC"),
    ("@monthly", "UTC"),
    ("@yearly", "UTC"),
    ("0 9-17 * * mon-fri", "UTC"),
    ("0 0 * * 7", "UTC"),
    ("0 0 * * 5-7", "UTC"),
    ("10/5 * * * *", "UTC"),
    ("0 22-2 * * *", "UTC"),
    ("30 4 1,15 * *", "UTC"),
    ("0 0 * jan-jun/2 *", "UTC"),
    ("0 12 */3 * *", "UTC"),
    ("0 0 29 2 *", "UTC"),
    ("5,35 */2 * * sun", "UTC"),
    ("0 0 * * 1-5/2", "UTC"),
    ("0 0 1-31 * *", "UTC"),
    ("0 9 * * mon-fri", "Europe/Berlin"),
    ("45 23 * * *", "America/New_York"),
    ("0 */6 * * *", "Asia/Kolkata"),
]
STARTS = [
    datetime(2025, 1, 1, tzinfo=UTC),
    datetime(2025, 3, 27, 13, 7, 30, tzinfo=UTC),  # spans Europe's spring-forward
    datetime(2025, 10, 30, 23, 59, tzinfo=UTC),  # spans America's fall-back
]


@pytest.mark.parametrize("start", STARTS, ids=["new-year", "march", "november"])
@pytest.mark.parametrize(("text", "zone"), COMPATIBLE, ids=[f"{t} {z}" for t, z in COMPATIBLE])
def test_agreement__compatible_expressions(text: str, zone: str, start: datetime) -> None:
    """What we hand Celery fires at exactly croniter's next instants."""
    expr = parse_schedule(text)
    assert isinstance(expr, Cron)
    fields = celery_schedule(text, zone)
    assert celery_runs(fields, zone, start) == croniter_runs(expr.expr, zone, start)


@pytest.mark.parametrize("text", ["0 0 1 * mon", "0 0 */2 * 1", "0 12 1-7 * fri", "30 6 13 * 5"])
def test_agreement__either_day_rule_diverges(text: str) -> None:
    """Where we refuse Celery (both day fields restricted), Celery really fires elsewhere."""
    trigger = parse_schedule(text)
    assert isinstance(trigger, Cron)
    assert celery_fit(trigger, "UTC").schedule is None
    fields = celery_fields(trigger.expr).as_cron()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    ours, celerys = croniter_runs(trigger.expr, "UTC", start), celery_runs(fields, "UTC", start)
    assert ours != celerys
    assert set(celerys) < set(ours) or celerys[-1] > ours[-1]  # Celery fires on fewer days


def test_agreement__a_pair_celery_refuses_is_not_handed_to_it() -> None:
    """'* * 30 2 0' fires on February's Sundays (either day matches), but Celery's crontab
    refuses day 30 in February outright: the fit says so instead of raising."""
    trigger = parse_schedule("* * 30 2 0")
    assert isinstance(trigger, Cron)
    fit = celery_fit(trigger, "UTC")
    assert fit.schedule is None
    assert "Celery's crontab refuses '* * 30 2 0'" in fit.reasons[0]
    assert "never occurs" in fit.reasons[0]


def test_agreement__raw_fields_celery_misreads_are_spelled_out() -> None:
    """Celery's parser refuses '7' for Sunday; handing it croniter's values instead works."""
    with pytest.raises(ValueError, match="Invalid end range"):
        TzAwareCrontab(day_of_week="5-7")
    assert celery_fields("0 0 * * 5-7").day_of_week == "0,5,6"


def test_agreement__clock_change_hours_diverge_as_noted() -> None:
    """Inside Berlin's skipped/repeated hour Celery and croniter differ, which the fit notes."""
    trigger = parse_schedule("30 2 * * *")
    assert isinstance(trigger, Cron)
    fit = celery_fit(trigger, "Europe/Berlin")
    assert fit.schedule is not None
    assert fit.reasons
    assert "changes its clocks" in fit.reasons[0]
    start = datetime(2025, 3, 28, tzinfo=UTC)
    ours = croniter_runs(trigger.expr, "Europe/Berlin", start, 3)
    celerys = celery_runs(fit.schedule.cron or "", "Europe/Berlin", start, 3)
    assert [run.isoformat() for run in ours] == [
        "2025-03-28T01:30:00+00:00",
        "2025-03-29T01:30:00+00:00",
        "2025-03-30T01:00:00+00:00",  # croniter: the end of the gap, 03:00 CEST
    ]
    assert celerys[2].isoformat() == "2025-03-30T01:30:00+00:00"  # Celery: 03:30 CEST


# --------------------------------------------------------------------------- property


def field(low: int, high: int) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    part = st.one_of(
        st.just("*"),
        number.map(str),
        st.tuples(number, number).map(lambda pair: f"{min(pair)}-{max(pair)}"),
        st.tuples(st.just("*"), st.integers(1, high)).map(lambda pair: f"*/{pair[1]}"),
        st.tuples(number, number, st.integers(1, 10)).map(
            lambda t: f"{t[0]}-{t[1]}/{t[2]}" if t[0] != t[1] else f"{t[0]}"
        ),
    )
    return st.lists(part, min_size=1, max_size=3).map(",".join)


expressions = st.tuples(field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 7)).map(
    " ".join
)
zones = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"])
starts = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None, database=None)
@given(expressions, zones, starts)
def test_agreement__generated_expressions(text: str, zone: str, start: datetime) -> None:
    """Any expression we accept and hand to Celery fires like croniter, away from clock changes.

    Expressions refused at parsing (an equal range, a day that never comes) and those we do not
    hand to Celery are skipped; near a clock change the fit carries a note instead.
    """
    try:
        trigger = parse_schedule(text)
    except ValueError:
        return
    assert isinstance(trigger, Cron)
    fit = celery_fit(trigger, zone)
    if fit.schedule is None or fit.schedule.cron is None or fit.reasons:
        return
    event("compared")
    ours = croniter_runs(trigger.expr, zone, start, 12)
    assert celery_runs(fit.schedule.cron, zone, start, 12) == ours
