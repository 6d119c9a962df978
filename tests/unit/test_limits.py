"""What the stores can hold: the pure limits behind validate's refusals (orchestrator.limits)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.limits import (
    LATEST,
    Clock,
    LimitError,
    canonical_instant,
    number_problem,
    past_problem,
    text_problem,
)

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "when",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # year 0 in UTC
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
        datetime(9999, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_canonical_instant__outside_the_range_refused(when: datetime) -> None:
    """Instants that overflow a conversion, or come near Python's ends, are refused."""
    with pytest.raises(LimitError, match="outside the instants every engine can hold"):
        canonical_instant(when)


def test_canonical_instant__any_offset_becomes_utc() -> None:
    """The same instant written with any offset is one UTC value with one spelling."""
    plus_one = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    utc = canonical_instant(plus_one)
    assert utc.isoformat() == "2030-01-01T11:00:00+00:00"
    last = LATEST - timedelta(microseconds=1)
    assert canonical_instant(last.astimezone(timezone(timedelta(hours=-14)))) == last


@pytest.mark.parametrize(
    ("value", "problem"),
    [("a\x00b", "NUL character"), ("\ud800", "unpaired surrogate (\\ud800)"), ("ok\x01", None)],
)
def test_text_problem__what_postgresql_text_cannot_hold(value: str, problem: str | None) -> None:
    """NUL and lone surrogates are refused; other control characters are text PostgreSQL keeps."""
    found = text_problem(value)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (2**63 - 1, False), (-(2**63), False), (2**63, True), (-(2**63) - 1, True),
        (1e15 + 0.5, False), (1e16, True), (-1.5e300, True), (float("nan"), True),
        (True, False),
    ],
)  # fmt: skip
def test_number_problem__what_json_keeps(value: float, refused: bool) -> None:
    """64-bit integers and floats below 1e16 come back from jsonb unchanged; nothing else does."""
    assert (number_problem(value) is not None) is refused


def test_past_problem__future_and_applied_instants_pass() -> None:
    """A future instant passes; a past one passes only when the registry applied that instant."""
    past = NOW - timedelta(days=1)
    fresh = Clock(now=NOW)
    assert past_problem("job", "at", NOW + timedelta(seconds=1), fresh) is None
    assert "is in the past" in (past_problem("job", "at", past, fresh) or "")
    assert "is in the past" in (past_problem("job", "at", NOW, fresh) or "")  # now is not future
    applied = Clock(now=NOW, applied=lambda job, field: past if job == "job" else None)
    assert past_problem("job", "expires", past, applied) is None
    assert past_problem("other", "at", past, applied) is not None
    assert past_problem("job", "at", past - timedelta(seconds=1), applied) is not None
