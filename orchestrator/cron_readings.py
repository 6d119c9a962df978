"""What each engine makes of a cron expression, as comparable sets.

A schedule must mean the same instants whichever engine runs it. The reference is croniter's
reading (it computes every "next run" we show); an engine is a candidate only when its own
reading of the expression is identical. A reading is the set of minutes, hours and months an
expression fires in, plus the set of (day-of-month, day-of-week) pairs it fires on; two
readings that are equal fire at exactly the same instants, and comparing the pairs is what
catches the subtle differences in how engines combine the two day fields:

* croniter (and POSIX cron) fire when *either* day field matches if both are restricted;
* pg_cron 1.4 is Vixie cron (``src/entry.c``, ``ShouldRunTask``): a day field whose text starts
  with ``*`` (``*/2``) counts as unrestricted, so both fields must then match; it also rejects a
  step without a range (``10/5``), reads a descending range (``22-2``) as empty, knows month and
  weekday names, ``7`` for Sunday and the ``@`` macros (lower case), and has no seconds;
* Celery's ``crontab`` requires *both* day fields to match, always (its docstring and
  ``remaining_delta``), wraps descending ranges, and rejects ``7`` as a weekday.

Expressions are first held to the grammar both real engines share: numbers, names (month and
weekday fields only), ``*``, ranges, steps and lists. croniter's extensions (``L``, ``#``,
``W``, ``?``, ``H``) have no counterpart in either engine and are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from celery.schedules import crontab, crontab_parser
from croniter import CroniterError, croniter
from django.core.exceptions import ValidationError
from django_celery_beat import validators as beat_validators

FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
#: Every value of each field; day-of-week as 0-6 (pg_cron's 7 is folded onto 0, Sunday).
_FULL = (
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
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: pg_cron 1.4 (``parse_cron_entry``) accepts a schedule shorter than this many characters.
PG_CRON_MAX_LENGTH = 1000

_PART = re.compile(r"^(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?$")
_EXTENSION_MARKS = re.compile(r"[?#]")
_EXTENSION_LETTERS = re.compile(r"[lwh]")
_EXTENSION_MESSAGE = (
    "{field}: {part!r} uses a croniter extension (L, W, #, ?, H) that neither pg_cron nor "
    "Celery's crontab has"
)
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


@lru_cache(maxsize=4096)
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
    for index, text in enumerate(fields):
        for part in text.split(","):
            _check_part(index, part)


def _check_part(index: int, part: str) -> None:
    field = FIELD_NAMES[index]
    match = _PART.match(part)
    if match is None:
        if _EXTENSION_MARKS.search(part):
            raise CronSyntaxError(_EXTENSION_MESSAGE.format(field=field, part=part))
        raise CronSyntaxError(f"{field}: cannot read {part!r}")
    _, first, last, step = match.groups()
    values = [_value(index, token) for token in (first, last) if token is not None]
    if step is not None and int(step) < 1:
        raise CronSyntaxError(f"{field}: the step in {part!r} must be at least 1")
    if len(values) == 2 and values[0] == values[1]:
        raise CronSyntaxError(
            f"{field}: croniter reads the range {part!r} as the whole field and cron as "
            f"{first} alone; write {first!r}"
        )


def _value(index: int, token: str) -> int:
    field = FIELD_NAMES[index]
    low, high = _BOUNDS[index]
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


@lru_cache(maxsize=4096)
def croniter_reading(expr: str) -> Reading:
    """croniter's reading, with its day rule: OR when both day fields are restricted."""
    try:
        expanded, nth = croniter.expand(expr)
    except CroniterError as error:
        raise CronSyntaxError(str(error)) from error
    if nth:  # unreachable after check_syntax, kept so a reading is never silently wrong
        raise CronSyntaxError("nth-weekday syntax is not supported")
    sets = [
        _FULL[index] if values[0] == "*" else frozenset(int(value) for value in values)
        for index, values in enumerate(expanded)
    ]
    either = expanded[2][0] != "*" and expanded[4][0] != "*"
    return Reading(sets[0], sets[1], sets[3], _days(sets[2], sets[4], either=either))


def _days(
    doms: frozenset[int], dows: frozenset[int], *, either: bool
) -> frozenset[tuple[int, int]]:
    if either:
        return frozenset(pair for pair in _ALL_DAYS if pair[0] in doms or pair[1] in dows)
    return frozenset(pair for pair in _ALL_DAYS if pair[0] in doms and pair[1] in dows)


# --------------------------------------------------------------------------- pg_cron 1.4


@dataclass(frozen=True, slots=True)
class EngineReading:
    """An engine's reading, or why the engine refuses the expression; notes explain oddities."""

    reading: Reading | None
    refusal: str | None = None
    notes: tuple[str, ...] = ()


@lru_cache(maxsize=4096)
def pg_cron_reading(expr: str) -> EngineReading:
    """pg_cron 1.4's reading: a port of ``parse_cron_entry``/``get_range`` and ``ShouldRunTask``.

    ``expr`` is a normalised expression that passed ``check_syntax``.
    """
    if len(expr) >= PG_CRON_MAX_LENGTH:
        return EngineReading(
            None, f"pg_cron 1.4 accepts schedules of at most {PG_CRON_MAX_LENGTH - 1} characters"
        )
    fields = fields_of(expr)
    sets: list[frozenset[int]] = []
    notes: list[str] = []
    for index, text in enumerate(fields):
        bits: set[int] = set()
        for part in text.split(","):
            refusal = _vixie_part(index, part, bits, notes)
            if refusal:
                return EngineReading(None, refusal)
        if index == 4 and (0 in bits or 7 in bits):  # "make sundays equivalent"
            bits |= {0, 7}
        sets.append(frozenset(bits))
    # Vixie's DOM_STAR/DOW_STAR: set when the field's text starts with '*'. The macros set the
    # same flags as their expansions here (@weekly flags day-of-month, @monthly and @yearly
    # day-of-week; @daily and @hourly restrict no day), so one rule serves both.
    dom_star, dow_star = fields[2].startswith("*"), fields[4].startswith("*")
    dows = frozenset(day for day in sets[4] if day != 7)
    days = _days(sets[2], dows, either=not (dom_star or dow_star))
    return EngineReading(Reading(sets[0], sets[1], sets[3], days), notes=tuple(notes))


def _vixie_part(index: int, part: str, bits: set[int], notes: list[str]) -> str | None:
    match = _PART.match(part)
    if match is None:  # check_syntax refuses such parts first; never guess a reading
        raise CronSyntaxError(f"{FIELD_NAMES[index]}: cannot read {part!r}")
    star, first, last, step = match.groups()
    low, high = _BOUNDS[index]
    if star:
        start, stop = low, high
    else:
        start = _value(index, first)
        if last is None:
            if step is not None:
                return (
                    f"pg_cron 1.4 refuses a step without a range ({part!r}); "
                    f"write '{first}-{high}/{step}'"
                )
            bits.add(start)
            return None
        stop = _value(index, last)
    if start > stop:
        notes.append(
            f"pg_cron 1.4 reads the descending range {part!r} as empty, where croniter and "
            "Celery wrap it around"
        )
    bits.update(range(start, stop + 1, int(step or 1)))
    return None


# --------------------------------------------------------------------------- Celery crontab


@dataclass(frozen=True, slots=True)
class CeleryFields:
    """Field strings for Celery's ``crontab`` that read exactly like croniter's reading."""

    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str

    def as_cron(self) -> str:
        return " ".join(
            (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        )

    def crontab(self, **kwargs: object) -> crontab:
        return crontab(
            minute=self.minute,
            hour=self.hour,
            day_of_month=self.day_of_month,
            month_of_year=self.month_of_year,
            day_of_week=self.day_of_week,
            **kwargs,
        )


@lru_cache(maxsize=4096)
def celery_fields(expr: str) -> CeleryFields:
    """Each field as written when Celery's parser reads it like croniter, else spelled out.

    Celery's own parser differs from croniter on some spellings (``7`` for Sunday is refused,
    for instance); spelling such a field as the list of values croniter reads makes Celery
    honour it exactly; so does a field django-celery-beat's validators would refuse. The
    day-combination rule cannot be fixed this way: see ``celery_reading``.
    """
    reading_sets = _croniter_field_sets(expr)
    texts = []
    for index, text in enumerate(fields_of(expr)):
        wanted = reading_sets[index]
        kept = _celery_parse(index, text) == wanted and _beat_accepts(index, text)
        texts.append(text if kept else _spell(index, wanted))
    return CeleryFields(*texts)


@lru_cache(maxsize=4096)
def celery_reading(expr: str) -> Reading:
    """What Celery's ``crontab`` fires at, given ``celery_fields``: both day fields must match."""
    fields = celery_fields(expr)
    schedule = fields.crontab()
    dows = frozenset(schedule.day_of_week)
    days = _days(frozenset(schedule.day_of_month), dows, either=False)
    return Reading(
        frozenset(schedule.minute),
        frozenset(schedule.hour),
        frozenset(schedule.month_of_year),
        days,
    )


def _croniter_field_sets(expr: str) -> list[frozenset[int]]:
    expanded, _ = croniter.expand(expr)
    return [
        _FULL[index] if values[0] == "*" else frozenset(int(value) for value in values)
        for index, values in enumerate(expanded)
    ]


_CELERY_SPANS = ((60, 0), (24, 0), (31, 1), (12, 1), (7, 0))


def _celery_parse(index: int, text: str) -> frozenset[int] | None:
    span, low = _CELERY_SPANS[index]
    try:
        return frozenset(crontab_parser(span, low).parse(text))
    except (ValueError, crontab_parser.ParseException):
        return None


_BEAT_VALIDATORS = (
    beat_validators.minute_validator,
    beat_validators.hour_validator,
    beat_validators.day_of_month_validator,
    beat_validators.month_of_year_validator,
    beat_validators.day_of_week_validator,
)


def _beat_accepts(index: int, text: str) -> bool:
    """django-celery-beat validates the fields it stores (it refuses '22-2', which Celery's
    own parser wraps around); a field it would refuse is spelled out instead."""
    try:
        _BEAT_VALIDATORS[index](text)
    except (ValidationError, ValueError):
        return False
    return True


def _spell(index: int, values: frozenset[int]) -> str:
    if values == _FULL[index]:
        return "*"
    return ",".join(str(value) for value in sorted(values))
