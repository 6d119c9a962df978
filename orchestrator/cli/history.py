"""``jobs history [NAME] [--status S] [--since T] [--limit N]``: runs of both engines, newest
first: started, finished, duration, status, attempt, engine and the error of a failed run.

Engines' newest runs are imported first (``orchestrator.runs.import_engine_runs``), so a run
pg_cron finished a second ago is listed, not only those of the last upkeep.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import runs
from orchestrator.cli import context
from orchestrator.cli.terminal import RUN_ROLES, Cell, role, table
from orchestrator.models import RunStatus
from orchestrator.schedules import ScheduleError, parse_instant

NAME = "history"
HELP = "list the runs of one job or of all jobs, newest first"
MAX_LIMIT = 10_000
#: the duration and attempt columns, numbers
RIGHT = frozenset({2, 4})
#: characters of a failed run's error shown (the whole of it: --format json, or the admin)
ERROR_WIDTH = 120


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("name", metavar="NAME", nargs="?", help="one job's name (default: all)")
    parser.add_argument("--status", choices=list(RunStatus.values))
    parser.add_argument(
        "--since", metavar="ISO8601", help="runs started at or after this instant, with offset"
    )
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N runs (50)")
    context.add_format_argument(parser)


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    limit = options["limit"]
    if not 1 <= limit <= MAX_LIMIT:
        command.stderr.write(f"--limit must be between 1 and {MAX_LIMIT}")
        return 1
    try:
        since = parse_instant(options["since"]) if options.get("since") else None
    except ScheduleError as error:
        command.stderr.write(f"--since: {error}")
        return 1
    runs.import_engine_runs()
    rows = runs.history(options.get("name"), status=options.get("status"), since=since, limit=limit)
    if options["format"] == "json":
        command.stdout.write(json.dumps([row.as_json() for row in rows], indent=2))
        return 0
    table_rows: list[list[Cell | str]] = []
    for row in rows:
        status = str(row.status)
        table_rows.append(
            [
                row.started.isoformat(timespec="seconds") if row.started else "-",
                row.finished.isoformat(timespec="seconds") if row.finished else "-",
                f"{row.duration.total_seconds():.3f}s" if row.duration is not None else "-",
                Cell(status, role(command.style, RUN_ROLES.get(status))),
                str(row.attempt),
                row.engine,
                row.job,
                " ".join(row.error.split())[:ERROR_WIDTH],
            ]
        )
    headers = ("STARTED", "FINISHED", "DURATION", "STATUS", "TRY", "ENGINE", "JOB", "ERROR")
    for line in table(headers, table_rows, style=command.style, right=RIGHT):
        command.stdout.write(line)
    command.stdout.write(f"{len(rows)} runs")
    return 0
