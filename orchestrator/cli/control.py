"""``jobs pause|resume|run NAME``: an operator's hands on one managed job."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import operations, runs
from orchestrator.cli import context


class _Subcommand:
    """One of the three verbs; each is a module-like object for ``SUBCOMMANDS``."""

    def __init__(self, name: str, help_text: str, doc: str) -> None:
        self.NAME = name
        self.HELP = help_text
        self.__doc__ = doc

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", metavar="NAME", help="a managed job's name")
        if self.NAME == "run":
            parser.add_argument(
                "--wait",
                action="store_true",
                help="follow the run to its end; exit 0 if it succeeded, 1 if it failed, was "
                "lost or did not finish within --timeout, 3 if it was skipped",
            )
            parser.add_argument(
                "--timeout", type=float, default=3600, metavar="SECONDS", help="with --wait"
            )
            parser.add_argument(
                "--kwargs",
                metavar="JSON",
                help="a task job only: keyword arguments for this run, laid over the job's "
                "own (a JSON object; names the task does not take are refused)",
            )
        context.add_format_argument(parser)

    def handle(self, command: BaseCommand, options: dict[str, Any]) -> int:
        name = options["name"]
        if self.NAME == "run":
            return _run(command, name, options)
        row = operations.set_paused(name, self.NAME == "pause")
        result = {"name": name, "engine": row.engine, "paused": row.paused}
        text = f"{name}: {'paused' if row.paused else 'resumed'} in {row.engine}"
        command.stdout.write(json.dumps(result) if options["format"] == "json" else text)
        return 0


pause = _Subcommand("pause", "pause a job in its engine (kept across applies)", "Pause a job.")
resume = _Subcommand("resume", "resume a paused job", "Resume a paused job.")
#: ``jobs run --wait`` exit status by the run's outcome
WAIT_EXIT: dict[str, int] = {"succeeded": 0, "skipped": 3}


def _run(command: BaseCommand, name: str, options: dict[str, Any]) -> int:
    text = options.get("kwargs")
    kwargs = None if text is None else operations.parse_run_kwargs(text)
    run_id = operations.run_now(name, kwargs)
    result: dict[str, object] = {"name": name, "run_id": run_id}
    if kwargs is not None:
        result["kwargs"] = kwargs
    as_json = options["format"] == "json"
    if not options.get("wait"):
        command.stdout.write(json.dumps(result) if as_json else f"{name}: run started ({run_id})")
        return 0
    if not as_json:
        command.stdout.write(f"{name}: run started ({run_id}); waiting for its outcome")
    outcome = runs.follow(run_id, timeout=options["timeout"])
    result.update(outcome.as_json())
    if as_json:
        command.stdout.write(json.dumps(result))
    else:
        took = outcome.as_json()["duration_seconds"]
        line = f"{name}: {outcome.status} after {took} s (attempt {outcome.attempt})"
        command.stdout.write(line + (f": {outcome.error}" if outcome.error else ""))
    return WAIT_EXIT.get(str(outcome.status), 1)


run = _Subcommand("run", "start one run of a job now, on a Celery worker", "Run a job now.")
