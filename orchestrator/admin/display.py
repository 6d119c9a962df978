"""How the admin shows things: engine and status badges, instants and durations, schedules in
words, and the small run chart, as escaped HTML and inline SVG (no script, nothing fetched).

Times are shown one way on every page, so an operator never compares "Dec. 1, 2026, 11 a.m."
with "2026-12-01 10:00:00": an instant is its absolute value with seconds and time zone plus
how far it is from now ("in 52 min", "3 h ago"), inside ``<time datetime=...>`` whose title
holds the exact ISO 8601 value; a duration is human ("491 ms", "2 min 5 s"). The templates
reach the same functions through the ``orchestrator_display`` filters.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import lru_cache

from cron_descriptor import FormatException, MissingFieldException, get_description
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from orchestrator.operations import describe_trigger

ENGINE_COLOURS = {"pg_cron": "#336791", "celery": "#37814a"}
STATUS_COLOURS = {
    "queued": "#6c757d",
    "running": "#0d6efd",
    "succeeded": "#198754",
    "failed": "#dc3545",
    "failed_final": "#8b0000",
    "cancelled": "#495057",
    "retried": "#fd7e14",
    "skipped": "#adb5bd",
    "lost": "#6f42c1",
}
#: statuses whose badge says more than their stored value
STATUS_LABELS = {"failed_final": "failed for good"}
_BADGE = (
    '<span class="orch-badge" style="background:{};color:#fff;padding:1px 6px;'
    'border-radius:8px;font-size:11px;white-space:nowrap">{}</span>'
)
MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def engine_badge(engine: str) -> SafeString:
    return format_html(_BADGE, ENGINE_COLOURS.get(engine, "#444"), engine)


def status_badge(status: str | None) -> SafeString | str:
    if not status:
        return "—"
    label = STATUS_LABELS.get(status, status)
    return format_html(_BADGE, STATUS_COLOURS.get(status, "#444"), label)


def seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _duration(run: Mapping[str, object]) -> timedelta | float | None:
    value = run.get("duration")
    return value if isinstance(value, timedelta | float | int) else None


def duration_text(value: timedelta | float | None) -> str:
    """A duration as a person says it: "491 ms", "4.2 s", "2 min 5 s", "3 h 12 min", "2 d 5 h".

    Two units at most: past a minute the seconds' fraction is noise, past a day the minutes.
    """
    total = seconds(value)
    if total is None:
        return "—"
    if total < 0:
        return "-" + duration_text(-total)
    if total < 1:
        return f"{total * 1000:.0f} ms"
    if total < 10:
        return f"{total:.1f} s"
    whole = int(total)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def duration_html(value: timedelta | float | None) -> SafeString | str:
    """``duration_text`` in a ``<time>`` element whose title keeps the exact seconds."""
    total = seconds(value)
    if total is None:
        return "—"
    return format_html(
        '<time class="orch-duration" datetime="PT{}S" title="{} s">{}</time>',
        f"{total:.6f}".rstrip("0").rstrip("."),
        f"{total:.6f}".rstrip("0").rstrip("."),
        duration_text(total),
    )


def as_instant(value: datetime | str | None) -> datetime | None:
    """An aware datetime from a datetime or an ISO 8601 string (fleet replies carry strings);
    a naive value is read in the site's time zone, as Django does."""
    if not value:
        return None
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        when = value
    return timezone.make_aware(when) if timezone.is_naive(when) else when


def absolute_text(value: datetime | str | None, *, zone: bool = True) -> str:
    """ "2026-12-01 10:00:00 UTC": the site's time zone, seconds, and the zone's name.

    ``zone=False`` leaves the name out, for a table that states the zone once in its header
    rather than on every row."""
    when = as_instant(value)
    if when is None:
        return "—"
    local = timezone.localtime(when)
    if not zone:
        return f"{local:%Y-%m-%d %H:%M:%S}"
    return f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or local.strftime('%z')}"


def zone_name() -> str:
    """The name of the zone instants are shown in (the site's), e.g. "UTC"."""
    local = timezone.localtime(timezone.now())
    return local.tzname() or local.strftime("%z")


def relative_text(value: datetime | str | None, now: datetime | None = None) -> str:
    """How far an instant is from now: "in 52 min", "3 h ago", "just now".

    The largest whole unit, rounded down, so "in 59 min" never reads as "in 1 h" early.
    """
    when = as_instant(value)
    if when is None:
        return ""
    delta = (when - (now or timezone.now())).total_seconds()
    size = abs(delta)
    if size < 1:
        return "just now"
    if size < 60:
        amount = f"{int(size)} s"
    elif size < 3600:
        amount = f"{int(size // 60)} min"
    elif size < 2 * 86400:
        amount = f"{int(size // 3600)} h"
    else:
        amount = f"{int(size // 86400)} d"
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def instant_html(
    value: datetime | str | None, now: datetime | None = None, *, zone: bool = True
) -> SafeString | str:
    """An instant, absolute and relative, in ``<time datetime=ISO title=ISO>``: the page reads
    "2026-12-01 10:00:00 UTC (3 h ago)" and the title keeps the microseconds and offset."""
    when = as_instant(value)
    if when is None:
        return "—"
    exact = when.isoformat()
    return format_html(
        '<time class="orch-time" datetime="{}" title="{}">{} <small>({})</small></time>',
        exact,
        exact,
        absolute_text(when, zone=zone),
        relative_text(when, now),
    )


def output_text(value: object) -> str:
    """A run's output or arguments as text to read: JSON pretty-printed with sorted keys, a
    Python literal from before outputs were stored as JSON likewise, anything else as written.
    """
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    text = value.strip()
    if text[:1] in ("{", "["):
        try:
            parsed = json.loads(text)
        except ValueError:
            try:
                # a literal only (never code): rows written before outputs were JSON
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                return value
        return json.dumps(parsed, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return value


def excerpt(text: str, limit: int = 120) -> str:
    """The first non-empty line of ``text`` (an error's type and words), cut to ``limit``."""
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@lru_cache(maxsize=2048)
def cron_words(expr: str) -> str:
    """cron-descriptor's English for a 5-field expression ("At 11:00 PM")."""
    try:
        return str(get_description(MACROS.get(expr, expr)))
    except (FormatException, MissingFieldException, ValueError, IndexError):
        return ""


def schedule_words(definition: Mapping[str, object]) -> tuple[str, str]:
    """(the schedule as written, the same in words)."""
    text = describe_trigger(definition)
    trigger = definition.get("trigger")
    kind = trigger.get("kind") if isinstance(trigger, Mapping) else None
    if kind == "cron" and isinstance(trigger, Mapping):
        return text, cron_words(str(trigger["expr"]))
    if kind == "every":
        return text, text.replace("every", "Every").replace("m", " minutes", 1)
    if kind == "at":
        return text, "Once"
    return text, "When workers start"


def run_chart(
    runs: Sequence[Mapping[str, object]], width: int = 600, height: int = 90
) -> SafeString:
    """Bars of the runs' durations, oldest left, coloured by status, as inline SVG.

    ``runs``: dicts with ``status``, ``duration`` (timedelta or None) and ``label``. A run
    with no duration (queued, running, lost) gets a short bar so it still shows.
    """
    if not runs:
        return format_html("<p>{}</p>", "No runs recorded yet.")
    values = [seconds(_duration(run)) or 0.0 for run in runs]
    top = max(values) or 1.0
    slot = min(width / len(runs), 24.0)
    bar = max(slot - 2, 1)
    rows = []
    for index, (run, value) in enumerate(zip(runs, values, strict=True)):
        tall = max(height * value / top, 3)
        rows.append(
            (
                f"{index * slot:.1f}",
                f"{height - tall:.1f}",
                f"{bar:.1f}",
                f"{tall:.1f}",
                STATUS_COLOURS.get(str(run.get("status")), "#444"),
                f"{run.get('label', '')}: {run.get('status')}, {duration_text(_duration(run))}",
            )
        )
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        rows,
    )
    return format_html(
        '<svg class="orch-chart" role="img" aria-label="{}" width="{}" height="{}" '
        'viewBox="0 0 {} {}" xmlns="http://www.w3.org/2000/svg">{}</svg>'
        '<p class="help">{} runs, oldest left; height: duration (longest {}); colour: status.</p>',
        "run durations and statuses",
        width,
        height,
        width,
        height,
        bars,
        len(runs),
        duration_text(top),
    )
