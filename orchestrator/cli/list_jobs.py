"""``jobs list``: every managed job, its engine, schedule, state as the engines have it, next
run, last run and missed runs (all from ``orchestrator.status``, as the admin shows them).

Columns are as wide as their content; on a terminal the state and the last run's status are
coloured (``orchestrator.cli.terminal``)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import missed
from orchestrator.cli import context
from orchestrator.cli.terminal import RUN_ROLES, STATE_ROLES, Cell, role, table
from orchestrator.operations import describe_trigger
from orchestrator.status import job_statuses

NAME = "list"
HELP = "list the managed jobs of both engines, with their live state"
#: the missed-runs column, a number
RIGHT = frozenset({7})


def add_arguments(parser: CommandParser) -> None:
    context.add_format_argument(parser)


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    statuses = job_statuses()
    if options["format"] == "json":
        rows = []
        for status in statuses:
            row = status.as_json()
            row["schedule"] = describe_trigger(dict(status.job.definition))
            row["timezone"] = status.job.timezone
            row["description"] = status.job.description
            rows.append(row)
        command.stdout.write(json.dumps(rows, indent=2))
        return 0
    cells: list[list[Cell | str]] = []
    details: dict[int, str] = {}
    for status in statuses:
        job = status.job
        last = status.last_run
        last_text, last_role = "never", None
        if last is not None:
            when = last.started.isoformat(timespec="seconds") if last.started else "-"
            last_text, last_role = f"{last.status} {when}", RUN_ROLES.get(str(last.status))
        state = status.state.value
        cells.append(
            [
                job.name,
                job.engine,
                describe_trigger(dict(job.definition)),
                job.timezone,
                Cell(state, role(command.style, STATE_ROLES.get(state))),
                status.next_run.isoformat() if status.next_run else "-",
                Cell(last_text, role(command.style, last_role)),
                str(status.missed_count),
            ]
        )
        if state in ("drift", "orphaned"):  # keyed by its line: the header is line 0
            details[len(cells)] = status.detail
    headers = ("NAME", "ENGINE", "SCHEDULE", "TZ", "STATE", "NEXT RUN", "LAST RUN")
    lines = table(
        (*headers, f"MISSED {missed.WINDOW_LABEL}"), cells, style=command.style, right=RIGHT
    )
    for index, line in enumerate(lines):
        command.stdout.write(line)
        if index in details:
            command.stdout.write(f"  {details[index]}")
    command.stdout.write(f"{len(statuses)} managed jobs")
    return 0
