"""What the stores can hold: the limits every manifest value is checked against at validate.

"Validate means it runs": a value ``jobs validate`` accepts must survive every store it passes
through on its way to a run, unchanged. The stores are PostgreSQL (``text`` columns, ``jsonb``
definitions, ``timestamptz``), Python's ``datetime`` (Django, Celery beat and the admin convert
instants between zones), Celery's JSON messages and pg_cron's ``cron.job``. Each limit below is
the narrowest of them, with the reason said in the message, so the manifest is refused at
validate with a located error instead of failing at apply (or later, in beat) with a traceback.

* Text: PostgreSQL's ``text`` and ``jsonb`` cannot hold NUL (``\\0``), and UTF-8 cannot encode a
  lone surrogate (``\\ud800``); either one fails the apply with ``DataError``.
* Integers in ``args``/``kwargs``: 64-bit signed, what JSON readers outside Python (and a SQL job
  casting to ``bigint``) hold exactly.
* Floats: finite, and below 1e16 in magnitude: PostgreSQL's ``jsonb`` stores numbers as exact
  decimals and prints 1.5e300 as a 301-digit integer, which reads back as a different value.
* Instants (``at``, ``expires``): between 1970 and the start of year 9999 UTC. Python's datetime
  ends at 9999-12-31 and starts at year 1; an instant near either end overflows when Django or
  Celery converts it into another zone (``0001-01-01T00:00:00+14:00`` is in year 0 in UTC). The
  margin of a year leaves room for any zone and for the engines' date arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

#: Integers a JSON value may hold: signed 64-bit.
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**63 - 1
#: Floats at or beyond this magnitude do not survive PostgreSQL's jsonb (see the docstring).
MAX_FLOAT = 1e16
#: The range of instants (``at``, ``expires``), as UTC; the end is exclusive.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)


class LimitError(ValueError):
    """A value no store on the way to a run can hold; the message says which and why."""


def text_problem(value: str) -> str | None:
    """Why PostgreSQL cannot store ``value`` as text, or ``None`` when it can."""
    if "\x00" in value:
        return "contains a NUL character (\\0), which PostgreSQL text cannot hold; remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(value[error.start])
        return f"contains an unpaired surrogate (\\u{code:04x}), which is not text; remove it"
    return None


def number_problem(value: int | float) -> str | None:
    """Why a JSON number would not come back unchanged from every store, or ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if MIN_INTEGER <= value <= MAX_INTEGER:
            return None
        return (
            "is beyond 64 bits (±9223372036854775807), more than JSON readers and a bigint "
            "hold exactly; quote it to pass it as a string"
        )
    if value != value or value in (float("inf"), float("-inf")):
        return "is not a finite number, which JSON cannot carry; quote it"
    if abs(value) >= MAX_FLOAT:
        return (
            "is a number of 1e16 or more, which PostgreSQL's JSON stores as an exact integer "
            "and reads back changed; write it as an integer or quote it"
        )
    return None


def canonical_instant(when: datetime) -> datetime:
    """``when`` as UTC, within ``EARLIEST``..``LATEST``; ``LimitError`` otherwise.

    UTC is the one spelling every store gives back (Django reads ``timestamptz`` as UTC), so an
    instant written with any offset compares equal, as text too, after a round trip: an ``at``
    written as ``...+01:00`` plans clean once applied.
    """
    offset = when.utcoffset()
    if offset is None:
        raise LimitError("has no UTC offset")
    try:
        utc = when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00: year 0 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise LimitError(
            f"is outside the instants every engine can hold ({EARLIEST:%Y-%m-%d} to "
            f"{LATEST:%Y-%m-%d} UTC, exclusive)"
        )
    return utc


#: Looks up the instant a field (``at`` or ``expires``) of a job had when last applied.
AppliedInstant = Callable[[str, str], "datetime | None"]


def _never_applied(job: str, field: str) -> datetime | None:
    return None


@dataclass(frozen=True, slots=True)
class Clock:
    """What "in the past" is measured against, injected so validation is deterministic to test.

    ``applied`` answers, for a job and field, the instant the registry recorded at its last
    apply. A one-time job that already fired (or a job that already expired) still lists its
    past instant in the manifest; refusing it would block every later plan of the whole
    manifest, so a past instant is accepted when it is exactly the one already applied: the job
    is then simply done (or expired), and the plan shows no change for it.
    """

    now: datetime | None = None
    applied: AppliedInstant = field(default=_never_applied)

    def current(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


def past_problem(job: str, field: str, when: datetime, clock: Clock) -> str | None:
    """Why ``when`` (an ``at`` or ``expires`` of ``job``) is refused as past, or ``None``."""
    now = clock.current()
    if when > now:
        return None
    applied = clock.applied(job, field)
    if applied is not None and applied == when:
        return None
    stamp = f"{when.isoformat()} is in the past (now {now.replace(microsecond=0).isoformat()})"
    if field == "at":
        return (
            f"{stamp}; a one-time job must be in the future, or apply would run it at once. "
            "A job that already ran at this instant stays accepted; to run it again, give "
            "it a new time"
        )
    return (
        f"{stamp}; the job would never run. Set a future expiry, or remove the job "
        "(a job that already expired at this instant stays accepted)"
    )
