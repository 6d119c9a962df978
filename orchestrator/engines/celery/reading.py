"""How Celery's ``crontab`` (as django-celery-beat stores it) reads a cron expression.

Celery's ``crontab`` requires *both* day fields to match, always (its docstring and
``remaining_delta``), wraps descending ranges, and rejects ``7`` as a weekday; django-celery-beat's
validators refuse some spellings Celery's own parser takes. ``celery_fields`` spells each field so
that Celery reads it exactly like croniter; ``celery_reading`` is the ``Reading`` it then fires at.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from celery.schedules import crontab, crontab_parser
from croniter import croniter
from django.core.exceptions import ValidationError
from django_celery_beat import validators as beat_validators

from orchestrator.cron_readings import CACHE_SIZE, FULL, Reading, days_matching, fields_of


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


@lru_cache(maxsize=CACHE_SIZE)
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


@lru_cache(maxsize=CACHE_SIZE)
def celery_reading(expr: str) -> Reading:
    """What Celery's ``crontab`` fires at, given ``celery_fields``: both day fields must match."""
    fields = celery_fields(expr)
    schedule = fields.crontab()
    dows = frozenset(schedule.day_of_week)
    days = days_matching(frozenset(schedule.day_of_month), dows, either=False)
    return Reading(
        frozenset(schedule.minute),
        frozenset(schedule.hour),
        frozenset(schedule.month_of_year),
        days,
    )


def _croniter_field_sets(expr: str) -> list[frozenset[int]]:
    expanded, _ = croniter.expand(expr)
    return [
        FULL[index] if values[0] == "*" else frozenset(int(value) for value in values)
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
    if values == FULL[index]:
        return "*"
    return ",".join(str(value) for value in sorted(values))
