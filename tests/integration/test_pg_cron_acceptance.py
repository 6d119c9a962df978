"""Our reading of cron expressions against the live pg_cron 1.4: what ``cron.schedule`` accepts.

Each expression is handed to the server's own parser through ``cron.schedule`` inside a
savepoint of the test's transaction, which rolls back: nothing is left in ``cron.job``. Our port
of pg_cron 1.4's parser (``pg_cron_reading``) must accept exactly what the server accepts, and
every expression the classifier sends to pg_cron must be accepted. Where we keep an expression
away from pg_cron although the server accepts it, our model shows pg_cron would read it
differently (a day field starting with '*', a descending range).
"""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from orchestrator.cron_readings import croniter_reading, normalise
from orchestrator.engines.pg_cron.capabilities import read_capabilities
from orchestrator.engines.pg_cron.fit import pg_cron_fit
from orchestrator.engines.pg_cron.reading import pg_cron_reading
from orchestrator.schedules import ScheduleError, parse_schedule
from orchestrator.specs import Cron, Every

pytestmark = pytest.mark.django_db

SCHEDULE = "SELECT cron.schedule(%s, %s, %s)"


def server_accepts(schedule: str) -> bool:
    """Whether the live pg_cron's ``cron.schedule`` takes ``schedule`` (rolled back either way)."""
    refused: DatabaseError | None = None
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(SCHEDULE, ["orchestrator-acceptance-probe", schedule, "SELECT 1"])
            cursor.fetchone()
            transaction.set_rollback(True)
    except DatabaseError as error:
        refused = error
    if refused is None:
        return True
    assert "invalid schedule" in str(refused)
    return False


ACCEPTED_AND_OURS = [
    "0 23 * * *",
    "*/15 * * * *",
    "0 9-17 * * mon-fri",
    "0 9-17/2 * jan-jun/2 MON-FRI",
    "0 0 * * 7",
    "0 0 * * 5-7",
    "0 0 1 * mon",
    "5,35 */2 1,15 * sun",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@yearly",
    "@annually",
    "@midnight",
    "0 0 29 2 *",
]
ACCEPTED_BUT_READ_DIFFERENTLY = [
    "0 0 */2 * 1",  # '*' starts a day field: Vixie requires both days, croniter either
    "0 0 1,15 * */2",  # the same, from the day-of-week side
    "0 22-2 * * *",  # descending range: pg_cron fires never, croniter wraps
]


@pytest.mark.parametrize("text", ACCEPTED_AND_OURS)
def test_pg_cron__accepts_what_we_send_it(text: str) -> None:
    """Expressions the classifier would send to pg_cron are accepted by the live server."""
    trigger = parse_schedule(text)
    assert isinstance(trigger, Cron)
    capabilities = read_capabilities(connection)
    fit = pg_cron_fit(trigger, "UTC", capabilities)
    assert fit.schedule is not None, fit.reasons
    assert fit.schedule.cron is not None
    assert server_accepts(fit.schedule.cron)


@pytest.mark.parametrize("text", ACCEPTED_BUT_READ_DIFFERENTLY)
def test_pg_cron__accepted_but_read_differently_stays_away(text: str) -> None:
    """The server takes these, and our model of it reads them unlike croniter: not a candidate."""
    expr = normalise(text)
    assert server_accepts(expr)
    engine = pg_cron_reading(expr)
    assert engine.reading is not None
    assert engine.reading != croniter_reading(expr)
    trigger = parse_schedule(text)
    assert isinstance(trigger, Cron)
    assert pg_cron_fit(trigger, "UTC", read_capabilities(connection)).schedule is None


@pytest.mark.parametrize("text", ["10/5 * * * *", "59/15 * * * *", "0 0 1/3 * *"])
def test_pg_cron__refuses_what_we_keep_away(text: str) -> None:
    """A step without a range: our model refuses it, and so does the server."""
    expr = normalise(text)
    assert pg_cron_reading(expr).refusal is not None
    assert not server_accepts(expr)


@pytest.mark.parametrize("text", ["30 seconds", "0 0 L * *", "@reboots", "0 0 $ * *", "@HOURLY"])
def test_pg_cron__refuses_what_our_grammar_refuses(text: str) -> None:
    """Seconds (1.5+), croniter extensions, '$' (1.6+) and macros not in lower case (which is
    why expressions are normalised before pg_cron gets them): pg_cron 1.4 refuses them."""
    assert not server_accepts(text)


@pytest.mark.parametrize("text", ["5;7 * * * *", "0 0 * * mon-fri-sat"])
def test_pg_cron__lenient_reading_is_refused_by_our_grammar(text: str) -> None:
    """Vixie's parser stops at the first character it does not expect and ignores the rest of
    the field, so pg_cron 1.4 accepts such text; our grammar refuses it rather than let two
    engines read it differently."""
    assert server_accepts(text)
    with pytest.raises(ScheduleError):
        parse_schedule(text)


@pytest.mark.parametrize("text", ["0 0 * * 1#2", "0 0 L * *", "0 0 15W * *"])
def test_pg_cron__croniter_extensions_never_reach_it(text: str) -> None:
    """pg_cron 1.4 takes '1#2' as plain Monday (it stops reading the field at '#'); we read
    L, W and # as croniter does, so the fit keeps such a job off pg_cron with the reason."""
    if text == "0 0 * * 1#2":
        assert server_accepts(text)
    trigger = parse_schedule(text)
    assert isinstance(trigger, Cron)
    fit = pg_cron_fit(trigger, "UTC", read_capabilities(connection))
    assert fit.schedule is None
    assert any("does not read croniter's day extensions" in reason for reason in fit.reasons)


@pytest.mark.parametrize("seconds", [60, 300, 900, 1200, 3600, 7200, 6 * 3600, 86400])
def test_pg_cron__aligned_intervals_are_accepted(seconds: int) -> None:
    """'every N' that pg_cron can run becomes a cron expression the server accepts."""
    fit = pg_cron_fit(Every(seconds=seconds), "Europe/Berlin", read_capabilities(connection))
    assert fit.schedule is not None
    assert fit.schedule.cron is not None
    assert server_accepts(fit.schedule.cron)


def test_pg_cron__model_agrees_on_random_fields() -> None:
    """Over a spread of field shapes, our port accepts exactly what the server accepts."""
    checked = 0
    for minute in ["*", "5", "0-30", "*/7", "10-50/20", "1,2,3", "50-10", "jan", "7/5"]:
        for dow in ["*", "mon-fri", "7", "0-7", "*/2", "1/2"]:
            expr = f"{minute} 3 * * {dow}"
            try:
                ours = pg_cron_reading(normalise(expr)).reading is not None
            except ValueError:  # outside the shared grammar ('jan' in a minute field)
                continue
            assert ours == server_accepts(expr), expr
            checked += 1
    assert checked >= 30
