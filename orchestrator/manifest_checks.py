"""The checks that read a job's fields together, once each field has been parsed on its own.

``manifest_fields`` parses one field at a time and cannot know the others; ``manifest`` walks
the file's structure. What is left sits here: rules that only hold across fields, such as one
body and one trigger per job, ``args`` and ``kwargs`` only with a ``task`` body, an ``at`` or
``expires`` that is not already past, and the recurring-schedule options (``catch_up``,
``catch_up_limit``, ``jitter``) against the trigger and each other. Each check reports through
the loader's ``Report`` callback, so every error still carries file, line, job and field, and
the loader keeps collecting them in one pass.
"""

from __future__ import annotations

from typing import Any, Protocol

from orchestrator.limits import Clock, past_problem
from orchestrator.schedules import shortest_gap
from orchestrator.specs import At, Cron, Every, Startup, TaskBody


class Report(Protocol):
    """How a check reports a problem: the loader locates it (file) and collects it."""

    def __call__(
        self, message: str, line: int, *, job: str | None = None, field: str | None = None
    ) -> None: ...


def exactly_one(
    report: Report, job: str, line: int, found: list[tuple[str, int]], what: str, options: str
) -> None:
    """A job has one ``what`` (body or trigger): none is reported at the job's line, each
    extra one at its own."""
    if not found:
        report(f"a job needs one {what}: {options}", line, job=job, field=what)
    for field, field_line in found[1:]:
        report(
            f"a job has exactly one {what}, and this one already has {found[0][0]!r}",
            field_line,
            job=job,
            field=field,
        )


def task_arguments(
    report: Report, job: str, body: object, values: dict[str, Any], lines: dict[str, int]
) -> None:
    """``args`` and ``kwargs`` (set on the job or inherited) are only passed to a task body."""
    for field in ("args", "kwargs"):
        if field in values and body is not None and not isinstance(body, TaskBody):
            report(f"{field} only apply to a task body", lines[field], job=job, field=field)


def not_past(
    report: Report, job: str, values: dict[str, Any], lines: dict[str, int], clock: Clock
) -> None:
    """An ``at`` or ``expires`` must be in the future, unless already applied as is."""
    instants = {"at": values["at"].when} if isinstance(values.get("at"), At) else {}
    if values.get("expires") is not None:
        instants["expires"] = values["expires"]
    for field, when in instants.items():
        problem = past_problem(job, field, when, clock)
        if problem is not None:
            report(problem, lines[field], job=job, field=field)


def scheduling(
    report: Report,
    job: str,
    trigger: Any,
    values: dict[str, Any],
    lines: dict[str, int],
    own: set[str],
) -> None:
    """``catch_up``, ``catch_up_limit`` and ``jitter`` against the trigger and each other.

    They shape a recurring schedule: set on a one-time or start-up job they are an error,
    inherited from ``defaults`` they are dropped for it (``values`` is changed in place). A
    jitter must stay below the shortest gap between two runs, or a late start would pass the
    next slot.
    """
    # recurring: what ``shortest_gap`` measures; the gap itself is sampled from croniter
    # (400 runs per distinct expression) only for a job that sets a jitter
    recurring = isinstance(trigger, Cron | Every)
    for field in ("catch_up", "catch_up_limit", "jitter"):
        if field not in values or trigger is None or recurring:
            continue
        if field in own:
            report(
                f"applies to a recurring schedule; this job runs {_trigger_word(trigger)}",
                lines[field],
                job=job,
                field=field,
            )
        del values[field]
    if "catch_up_limit" in values and values.get("catch_up") != "all":
        if "catch_up_limit" in own:
            report(
                "bounds catch_up: all; this job "
                + (
                    f"has catch_up: {values['catch_up']}"
                    if "catch_up" in values
                    else "does not set catch_up"
                ),
                lines["catch_up_limit"],
                job=job,
                field="catch_up_limit",
            )
        del values["catch_up_limit"]
    jitter = values.get("jitter")
    gap = shortest_gap(trigger) if jitter is not None and recurring else None
    if jitter is not None and gap is not None and jitter >= gap:
        report(
            f"{jitter} s is not shorter than the {gap} s between two runs of this schedule, "
            "so a jittered run could start after the next one is due",
            lines["jitter"],
            job=job,
            field="jitter",
        )


def _trigger_word(trigger: object) -> str:
    return "at each start-up" if isinstance(trigger, Startup) else "once"
