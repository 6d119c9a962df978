"""``jobs pause|resume|run NAME``: an operator's hands on one managed job."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import operations
from orchestrator.cli import context


class _Subcommand:
    """One of the three verbs; each is a module-like object for ``SUBCOMMANDS``."""

    def __init__(self, name: str, help_text: str, doc: str) -> None:
        self.NAME = name
        self.HELP = help_text
        self.__doc__ = doc

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", metavar="NAME", help="a managed job's name")
        context.add_format_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> int:
        name = options["name"]
        if self.NAME == "run":
            result: dict[str, object] = {"name": name, "run_id": operations.run_now(name)}
            text = f"{name}: run started ({result['run_id']})"
        else:
            row = operations.set_paused(name, self.NAME == "pause")
            result = {"name": name, "engine": row.engine, "paused": row.paused}
            text = f"{name}: {'paused' if row.paused else 'resumed'} in {row.engine}"
        command.stdout.write(json.dumps(result) if options["format"] == "json" else text)
        return 0


pause = _Subcommand("pause", "pause a job in its engine (kept across applies)", "Pause a job.")
resume = _Subcommand("resume", "resume a paused job", "Resume a paused job.")
run = _Subcommand("run", "start one run of a job now, on a Celery worker", "Run a job now.")
