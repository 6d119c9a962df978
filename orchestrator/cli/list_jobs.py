"""``jobs list``: every managed job, its engine, schedule, state as the engines have it, next
run, last run and missed runs (all from ``orchestrator.status``, as the admin shows them)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import missed
from orchestrator.cli import context
from orchestrator.operations import describe_trigger
from orchestrator.status import job_statuses

NAME = "list"
HELP = "list the managed jobs of both engines, with their live state"


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
    missed_header = f"MISSED {missed.WINDOW_LABEL}"
    command.stdout.write(
        f"{'NAME':<36} {'ENGINE':<8} {'SCHEDULE':<20} {'TZ':<16} {'STATE':<9} "
        f"{'NEXT RUN':<26} {'LAST RUN':<36} {missed_header}"
    )
    for status in statuses:
        job = status.job
        upcoming = status.next_run.isoformat() if status.next_run else "-"
        last = status.last_run
        last_text = "never"
        if last is not None:
            when = last.started.isoformat(timespec="seconds") if last.started else "-"
            last_text = f"{last.status} {when}"
        command.stdout.write(
            f"{job.name:<36} {job.engine:<8} {describe_trigger(dict(job.definition)):<20} "
            f"{job.timezone:<16} {status.state.value:<9} {upcoming:<26} {last_text:<36} "
            f"{status.missed_count}"
        )
        if status.state.value in ("drift", "orphaned"):
            command.stdout.write(f"  {status.detail}")
    command.stdout.write(f"{len(statuses)} managed jobs")
    return 0
