"""``jobs backfill NAME --from T --to T``: run the slots of a past window once each.

Each slot of the window (the instants the job's engine uses, ``--from`` and ``--to``
included) that has no run in history is run once, as a backfill run carrying its slot
(``orchestrator.backfill``). Progress is one line per slot as it goes; ``--format json``
prints one object at the end: ``{"name", "from", "to", "slots": [{"slot", "status",
"run_id"}], "summary": {"sent", "already run", "taken"}}``. Large windows need ``--limit N`` or
``--yes``; exit 1 on a refusal.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import backfill as backfilling
from orchestrator.cli import context
from orchestrator.schedules import ScheduleError, parse_instant

NAME = "backfill"
HELP = "run the slots of a past window that have not run, once each"


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("name", metavar="NAME", help="a managed job's name")
    parser.add_argument(
        "--from", dest="start", required=True, metavar="ISO8601", help="first instant, with offset"
    )
    parser.add_argument(
        "--to", dest="end", required=True, metavar="ISO8601", help="last instant, with offset"
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="run at most the first N slots of the window",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help=f"run a window of more than {backfilling.CONFIRM_ABOVE} slots whole",
    )
    context.add_format_argument(parser)


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    try:
        start = parse_instant(options["start"])
        end = parse_instant(options["end"])
    except ScheduleError as error:
        command.stderr.write(f"--from/--to: {error}")
        return 1
    limit = options.get("limit")
    if limit is not None and limit < 1:
        command.stderr.write("--limit must be at least 1")
        return 1
    name = options["name"]
    as_json = options["format"] == "json"

    def progress(outcome: backfilling.SlotOutcome, done: int, total: int) -> None:
        if not as_json:
            run = f" ({outcome.run_id})" if outcome.run_id else ""
            command.stdout.write(
                f"[{done}/{total}] {outcome.slot.isoformat()}: {outcome.status}{run}"
            )

    outcomes = backfilling.backfill(
        name, start, end, limit=limit, yes=options["yes"], progress=progress
    )
    summary = Counter(outcome.status for outcome in outcomes)
    if as_json:
        document = {
            "name": name,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "slots": [outcome.as_json() for outcome in outcomes],
            "summary": {key: summary.get(key, 0) for key in ("sent", "already run", "taken")},
        }
        command.stdout.write(json.dumps(document, indent=2))
        return 0
    command.stdout.write(
        f"{name}: {summary.get('sent', 0)} of {len(outcomes)} slots sent, "
        f"{summary.get('already run', 0)} already run, {summary.get('taken', 0)} taken by "
        "another backfill"
    )
    return 0
