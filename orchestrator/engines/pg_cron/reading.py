"""How pg_cron 1.4 reads a cron expression: a port of Vixie cron's parser and day rule.

pg_cron 1.4 is Vixie cron (``src/entry.c``, ``ShouldRunTask``): a day field whose text starts with
``*`` (``*/2``) counts as unrestricted, so both day fields must then match; it rejects a step
without a range (``10/5``), reads a descending range (``22-2``) as empty, knows month and weekday
names, ``7`` for Sunday and the ``@`` macros (lower case), and has no seconds. The result is a
``Reading`` the hall compares with croniter's (``orchestrator.cron_readings``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from orchestrator.cron_readings import (
    BOUNDS,
    CACHE_SIZE,
    FIELD_NAMES,
    PART,
    CronSyntaxError,
    Reading,
    days_matching,
    fields_of,
    value_of,
)

#: pg_cron 1.4 (``parse_cron_entry``) accepts a schedule shorter than this many characters.
PG_CRON_MAX_LENGTH = 1000


@dataclass(frozen=True, slots=True)
class EngineReading:
    """An engine's reading, or why the engine refuses the expression; notes explain oddities."""

    reading: Reading | None
    refusal: str | None = None
    notes: tuple[str, ...] = ()


@lru_cache(maxsize=CACHE_SIZE)
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
    days = days_matching(sets[2], dows, either=not (dom_star or dow_star))
    return EngineReading(Reading(sets[0], sets[1], sets[3], days), notes=tuple(notes))


def _vixie_part(index: int, part: str, bits: set[int], notes: list[str]) -> str | None:
    match = PART.match(part)
    if match is None:  # check_syntax refuses such parts first; never guess a reading
        raise CronSyntaxError(f"{FIELD_NAMES[index]}: cannot read {part!r}")
    star, first, last, step = match.groups()
    low, high = BOUNDS[index]
    if star:
        start, stop = low, high
    else:
        start = value_of(index, first)
        if last is None:
            if step is not None:
                return (
                    f"pg_cron 1.4 refuses a step without a range ({part!r}); "
                    f"write '{first}-{high}/{step}'"
                )
            bits.add(start)
            return None
        stop = value_of(index, last)
    if start > stop:
        notes.append(
            f"pg_cron 1.4 reads the descending range {part!r} as empty, where croniter and "
            "Celery wrap it around"
        )
    bits.update(range(start, stop + 1, int(step or 1)))
    return None
