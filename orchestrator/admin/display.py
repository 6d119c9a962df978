"""How the admin shows things: engine and status badges, durations, schedules in words, and
the small run chart, as escaped HTML and inline SVG (no script, nothing fetched from outside)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import lru_cache

from cron_descriptor import FormatException, MissingFieldException, get_description
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from orchestrator.operations import describe_trigger

ENGINE_COLOURS = {"pg_cron": "#336791", "celery": "#37814a"}
STATUS_COLOURS = {
    "queued": "#6c757d",
    "running": "#0d6efd",
    "succeeded": "#198754",
    "failed": "#dc3545",
    "retried": "#fd7e14",
    "skipped": "#adb5bd",
    "lost": "#6f42c1",
}
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
    return format_html(_BADGE, STATUS_COLOURS.get(status, "#444"), status)


def seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _duration(run: Mapping[str, object]) -> timedelta | float | None:
    value = run.get("duration")
    return value if isinstance(value, timedelta | float | int) else None


def duration_text(value: timedelta | float | None) -> str:
    total = seconds(value)
    if total is None:
        return "—"
    if total < 1:
        return f"{total * 1000:.0f} ms"
    if total < 120:
        return f"{total:.1f} s"
    minutes, secs = divmod(int(total), 60)
    if minutes < 120:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


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
