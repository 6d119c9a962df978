"""``orchestrator.admin.display``: the one way the admin shows instants and durations.

Pure formatting: no database. The site's time zone comes from Django's settings
(``override_settings``/``timezone.override`` pick another where a case needs one).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template
from django.utils import timezone

from orchestrator.admin.display import (
    absolute_text,
    duration_html,
    duration_text,
    excerpt,
    instant_html,
    output_text,
    relative_text,
)

NOW = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(microseconds=491_314), "491 ms"),
        (0.0, "0 ms"),
        (4.25, "4.2 s"),
        (42.9, "42 s"),
        (60, "1 min"),
        (125, "2 min 5 s"),
        (3600, "1 h"),
        (3600 + 12 * 60 + 59, "1 h 12 min"),
        (86400 * 2 + 3600 * 5 + 7, "2 d 5 h"),
        (86400 * 3, "3 d"),
        (None, "—"),
    ],
)
def test_duration_text__human_units(value: timedelta | float | None, text: str) -> None:
    """A duration reads as a person says it, two units at most, never ``0:00:00.491314``."""
    assert duration_text(value) == text


def test_duration_html__title_keeps_exact_seconds() -> None:
    """The shown duration is rounded, the ``<time>`` element keeps the exact value."""
    html = str(duration_html(timedelta(microseconds=491_314)))
    assert html == (
        '<time class="orch-duration" datetime="PT0.491314S" title="0.491314 s">491 ms</time>'
    )


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (timedelta(minutes=52, seconds=30), "in 52 min"),
        (-timedelta(hours=3, minutes=59), "3 h ago"),
        (timedelta(seconds=59.9), "in 59 s"),
        (-timedelta(milliseconds=300), "just now"),
        (timedelta(hours=47), "in 47 h"),
        (-timedelta(days=9, hours=23), "9 d ago"),
    ],
)
def test_relative_text__largest_whole_unit(offset: timedelta, text: str) -> None:
    """Relative times name the largest whole unit, rounded down, future "in", past "ago"."""
    assert relative_text(NOW + offset, now=NOW) == text


def test_absolute_text__seconds_and_zone_of_the_site() -> None:
    """The absolute form has seconds and the zone's name, in the site's time zone."""
    assert absolute_text(NOW) == "2026-12-01 10:00:00 UTC"
    with timezone.override(ZoneInfo("Europe/Paris")):
        assert absolute_text(NOW) == "2026-12-01 11:00:00 CET"
        assert absolute_text(datetime(2026, 7, 1, 10, tzinfo=UTC)) == "2026-07-01 12:00:00 CEST"


def test_absolute_text__iso_strings_and_naive_values() -> None:
    """Fleet replies carry ISO strings; naive values are read in the site's zone; junk is "—"."""
    assert absolute_text("2026-12-01T10:00:05.5+00:00") == "2026-12-01 10:00:05 UTC"
    assert absolute_text(datetime(2026, 12, 1, 10, 0, 5)) == "2026-12-01 10:00:05 UTC"
    assert absolute_text("not a time") == "—"
    assert absolute_text(None) == "—"


def test_instant_html__time_element_exact_title_absolute_and_relative() -> None:
    """An instant renders in ``<time datetime=ISO title=ISO>`` showing absolute and relative."""
    when = NOW - timedelta(hours=3, microseconds=491_314)
    assert str(instant_html(when, now=NOW)) == (
        '<time class="orch-time" datetime="2026-12-01T06:59:59.508686+00:00" '
        'title="2026-12-01T06:59:59.508686+00:00">2026-12-01 06:59:59 UTC '
        "<small>(3 h ago)</small></time>"
    )
    assert instant_html(None) == "—"


def test_template_filters__same_output_as_python() -> None:
    """The ``orchestrator_display`` filters give templates the very same rendering."""
    template = Template("{% load orchestrator_display %}{{ when|instant }}|{{ took|duration }}")
    when = timezone.now() + timedelta(minutes=52, seconds=30)
    rendered = template.render(Context({"when": when, "took": 125}))
    instant, took = rendered.split("|")
    assert instant == str(instant_html(when))
    assert "(in 52 min)" in instant
    assert took == str(duration_html(125))
    assert ">2 min 5 s</time>" in took


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('{"rows": 3, "name": "x"}', '{\n  "name": "x",\n  "rows": 3\n}'),
        ("{'rows': 3, 'ok': True}", '{\n  "ok": true,\n  "rows": 3\n}'),
        ({"b": [1], "a": None}, '{\n  "a": null,\n  "b": [\n    1\n  ]\n}'),
        ("VACUUM", "VACUUM"),
        ("{not json, not a literal", "{not json, not a literal"),
        ("{__import__('os').getcwd()}", "{__import__('os').getcwd()}"),
        ("", ""),
        (None, ""),
    ],
)
def test_output_text__json_pretty_never_a_dict_repr(value: object, text: str) -> None:
    """Output reads as pretty JSON with sorted keys (old Python-literal rows too), plain text
    stays as written, and nothing that is not a literal is ever evaluated."""
    assert output_text(value) == text


def test_excerpt__first_line_cut_to_the_limit() -> None:
    """The runs list's error column: the error's first non-empty line, at most ``limit``."""
    assert excerpt("\n  ZeroDivisionError: division by zero\nmore") == (
        "ZeroDivisionError: division by zero"
    )
    assert excerpt("x" * 200, limit=10) == "x" * 9 + "…"
    assert excerpt("") == ""
