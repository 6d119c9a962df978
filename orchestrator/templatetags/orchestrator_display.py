"""Template filters over ``orchestrator.admin.display``, so templates show instants and
durations exactly as the Python-built columns do (one formatting, not two).

``{% load orchestrator_display %}`` then ``{{ run.started|instant }}``,
``{{ run.duration|duration }}``, ``{{ worker.uptime|duration }}``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils.safestring import SafeString

from orchestrator.admin import display

register = template.Library()


@register.filter
def instant(value: datetime | str | None) -> SafeString | str:
    """Absolute with seconds and zone, plus relative, in a ``<time>`` element."""
    return display.instant_html(value)


@register.filter
def duration(value: timedelta | float | None) -> SafeString | str:
    """A human duration ("491 ms", "2 min 5 s") whose title keeps the exact seconds."""
    return display.duration_html(value)


@register.filter
def engine(value: str) -> SafeString:
    """The engine's coloured badge, as in the Jobs and Runs lists."""
    return display.engine_badge(value)


@register.filter
def status(value: str | None) -> SafeString | str:
    """A run or task state's coloured badge, as in the Runs list."""
    return display.status_badge(value)
