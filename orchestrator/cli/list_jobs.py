"""``jobs list``: every managed job, its engine, schedule, state and next run."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator.cli import context
from orchestrator.operations import job_rows

NAME = "list"
HELP = "list the managed jobs of both engines"


def add_arguments(parser: CommandParser) -> None:
    context.add_format_argument(parser)


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    rows = job_rows()
    if options["format"] == "json":
        command.stdout.write(json.dumps([row.as_json() for row in rows], indent=2))
        return 0
    command.stdout.write(
        f"{'NAME':<36} {'ENGINE':<8} {'SCHEDULE':<20} {'TZ':<16} {'STATE':<9} NEXT RUN"
    )
    for row in rows:
        upcoming = row.next_run.isoformat() if row.next_run else "-"
        command.stdout.write(
            f"{row.name:<36} {row.engine:<8} {row.schedule:<20} {row.timezone:<16} "
            f"{row.state:<9} {upcoming}"
        )
    command.stdout.write(f"{len(rows)} managed jobs")
    return 0
