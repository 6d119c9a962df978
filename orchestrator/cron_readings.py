"""What a cron expression means, as comparable sets, and the grammar every engine shares.

A schedule must mean the same instants whichever engine runs it. The reference is croniter's
reading (it computes every "next run" we show); an engine is a candidate only when its own
reading of the expression is identical. A reading is the set of minutes, hours and months an
expression fires in, plus the set of (day-of-month, day-of-week) pairs it fires on; two
readings that are equal fire at exactly the same instants, and comparing the pairs is what
catches the subtle differences in how engines combine the two day fields. Croniter (and POSIX
cron) fire when *either* day field matches if both are restricted; each engine's own reading
lives with the engine (``orchestrator/engines/<engine>/reading.py``).

Expressions are first held to the grammar both real engines share: numbers, names (month and
weekday fields only), ``*``, ranges, steps and lists. croniter's day extensions are accepted and
read exactly as croniter reads them: ``L`` (the last day of the month, or ``L5`` the last Friday),
``W`` (``15W``, the weekday nearest the 15th) and ``#`` (``5#2``, the second Friday). Neither
pg_cron nor Celery's crontab reads them; our beat computes such schedules with croniter itself
(``has_extension``; ``engines/celery/slot_policy``). ``?`` and ``H`` (croniter's hashed values)
are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from croniter import CroniterError, croniter

_FIXED_START = datetime(2001, 1, 1, tzinfo=UTC)

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
#: Every value of each field; day-of-week as 0-6 (pg_cron's 7 is folded onto 0, Sunday).
FULL = (
    frozenset(range(60)),
    frozenset(range(24)),
    frozenset(range(1, 32)),
    frozenset(range(1, 13)),
    frozenset(range(7)),
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_WEEKDAYS = {
    name: number for number, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))
}
_NAMES: tuple[dict[str, int] | None, ...] = (None, None, None, _MONTHS, _WEEKDAYS)

#: The ``@`` macros every engine knows, and the expression each stands for.
#: readings kept per process, by expression (here and in the engines' reading modules). Large
#: enough for every distinct expression of a 100,000-job manifest: validation and placement
#: read each job's expression in separate passes, so a cache smaller than the manifest's
#: distinct expressions misses on every one.
CACHE_SIZE = 65536

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

PART = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?$")
_EXTENSION_MARKS = re.compile(r"[?#]")
_EXTENSION_LETTERS = re.compile(r"[lwh]")
_EXTENSION_MESSAGE = (
    "{field}: {part!r} uses a croniter extension (?, H, or L, W, # outside the day fields) "
    "that no engine reads; L, W and # are read in day-of-month and day-of-week"
)
#: croniter's day extensions: L and W in day-of-month, L and # in day-of-week
_DAY_EXTENSION = re.compile(r"[lw#]")
_DAY_FIELDS = (2, 4)
_ALL_DAYS = tuple((dom, dow) for dom in range(1, 32) for dow in range(7))


class CronSyntaxError(ValueError):
    """An expression outside the grammar pg_cron, Celery and croniter share."""


@dataclass(frozen=True, slots=True)
class Reading:
    """The instants an expression fires at, as sets an engine's reading can be compared with."""

    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    days: frozenset[tuple[int, int]]  # (day of month 1-31, day of week 0-6 with Sunday = 0)

    def differences(self, other: Reading) -> list[str]:
        """Names of the fields in which ``other`` differs from this reading."""
        names = []
        for name, mine, theirs in (
            ("minute", self.minutes, other.minutes),
            ("hour", self.hours, other.hours),
            ("month", self.months, other.months),
            ("day", self.days, other.days),
        ):
            if mine != theirs:
                names.append(name)
        return names

    def ever_fires(self) -> bool:
        """Whether some date matches: a day that exists in one of the months (29 Feb counts)."""
        longest = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30}
        return any(dom <= longest.get(month, 31) for month in self.months for dom, _ in self.days)


def normalise(text: str) -> str:
    """Single spaces between fields; macros and names in lower case (every engine ignores case
    of names, and pg_cron only knows the macros in lower case)."""
    return " ".join(text.split()).lower()


def fields_of(expr: str) -> list[str]:
    """The five fields of a normalised expression, macros expanded."""
    return MACROS.get(expr, expr).split(" ")


@lru_cache(maxsize=CACHE_SIZE)
def check_syntax(expr: str) -> None:
    """Refuse anything outside the shared grammar, saying which field and why.

    Also refused: an equal range such as ``5-5``, which croniter reads as the *whole* field
    (it treats ``Jan-Jan`` as a full cycle) while cron(5), pg_cron and Celery read it as ``5``.
    """
    if expr.startswith("@"):
        if expr not in MACROS:
            known = ", ".join(MACROS)
            raise CronSyntaxError(
                f"unknown macro {expr!r} (known: {known}; for a run at start-up use 'on: startup')"
            )
        return
    fields = expr.split(" ")
    if len(fields) != 5:
        raise CronSyntaxError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    extended = False
    for index, text in enumerate(fields):
        for part in text.split(","):
            if index in _DAY_FIELDS and _DAY_EXTENSION.search(part) and "?" not in part:
                extended = True  # croniter reads it below, or says why not
                continue
            _check_part(index, part)
    if extended:
        _check_extension(expr)


def has_extension(expr: str) -> bool:
    """Whether the (valid, normalised) expression uses croniter's L, W or # day extensions."""
    if expr.startswith("@"):
        return False
    fields = expr.split(" ")
    return len(fields) == 5 and any(_DAY_EXTENSION.search(fields[i]) for i in _DAY_FIELDS)


def _check_extension(expr: str) -> None:
    """croniter's own verdict on an extended expression, and that it ever fires."""
    try:
        croniter.expand(expr)
        croniter(expr, _FIXED_START).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as error:
        raise CronSyntaxError(f"croniter cannot read {expr!r}: {error}") from error


def _check_part(index: int, part: str) -> None:
    field = FIELD_NAMES[index]
    match = PART.match(part)
    if match is None:
        if _EXTENSION_MARKS.search(part):
            raise CronSyntaxError(_EXTENSION_MESSAGE.format(field=field, part=part))
        raise CronSyntaxError(f"{field}: cannot read {part!r}")
    _, first, last, step = match.groups()
    values = [value_of(index, token) for token in (first, last) if token is not None]
    if step is not None and int(step) < 1:
        raise CronSyntaxError(f"{field}: the step in {part!r} must be at least 1")
    if len(values) == 2 and values[0] == values[1]:
        raise CronSyntaxError(
            f"{field}: croniter reads the range {part!r} as the whole field and cron as "
            f"{first} alone; write {first!r}"
        )


def value_of(index: int, token: str) -> int:
    field = FIELD_NAMES[index]
    low, high = BOUNDS[index]
    if token.isdigit():
        number = int(token)
        if not low <= number <= high:
            raise CronSyntaxError(f"{field}: {token} is out of range {low}-{high}")
        return number
    names = _NAMES[index]
    if names is None or token not in names:
        hint = "only numbers" if names is None else "numbers or names " + "/".join(names)
        if names is None and _EXTENSION_LETTERS.search(token):
            raise CronSyntaxError(_EXTENSION_MESSAGE.format(field=field, part=token))
        raise CronSyntaxError(f"{field}: {token!r} is not valid here ({hint})")
    return names[token]


# --------------------------------------------------------------------------- croniter


@lru_cache(maxsize=CACHE_SIZE)
def croniter_reading(expr: str) -> Reading:
    """croniter's reading, with its day rule: OR when both day fields are restricted.

    An expression with a day extension (``has_extension``) has no such reading: which days it
    fires on depends on the month, so callers check ``has_extension`` first."""
    try:
        expanded, nth = croniter.expand(expr)
    except CroniterError as error:
        raise CronSyntaxError(str(error)) from error
    if nth:  # unreachable after check_syntax, kept so a reading is never silently wrong
        raise CronSyntaxError("nth-weekday syntax is not supported")
    sets = [
        FULL[index] if values[0] == "*" else frozenset(int(value) for value in values)
        for index, values in enumerate(expanded)
    ]
    either = expanded[2][0] != "*" and expanded[4][0] != "*"
    return Reading(sets[0], sets[1], sets[3], days_matching(sets[2], sets[4], either=either))


def days_matching(
    doms: frozenset[int], dows: frozenset[int], *, either: bool
) -> frozenset[tuple[int, int]]:
    if either:
        return frozenset(pair for pair in _ALL_DAYS if pair[0] in doms or pair[1] in dows)
    return frozenset(pair for pair in _ALL_DAYS if pair[0] in doms and pair[1] in dows)
