"""``jobs apply``: make both engines match the manifest, in one transaction.

Shows the plan, asks before changing anything (``--yes`` to skip the question, required when
nobody is at a terminal), reports progress on large applies and a summary at the end. Deletes
happen only with ``--prune``.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import desired, reconcile
from orchestrator.cli import context
from orchestrator.cli.plan import write_plan
from orchestrator.errors import OrchestratorError

NAME = "apply"
HELP = "make pg_cron and Celery beat match the manifest (deletes only with --prune)"


class NotConfirmed(OrchestratorError):
    """Nothing was applied."""


def add_arguments(parser: CommandParser) -> None:
    context.add_manifest_argument(parser)
    parser.add_argument("--prune", action="store_true", help="also delete jobs gone from it")
    parser.add_argument("--yes", action="store_true", help="apply without asking")


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    placed = desired.place(desired.load(context.manifest_path(options)))
    preview = reconcile.plan(placed)
    # Jobs gone from the manifest (or back in it) are still applied: the registry records
    # them as orphaned, or no longer, so only a plan with nothing at all to do stops here.
    orphans = preview.of("delete") or reconcile.has_orphans()
    if not preview.pending(prune=options["prune"]) and not orphans:
        write_plan(command, preview)
        return 0
    if not options["yes"]:
        write_plan(command, preview)
        if not sys.stdin.isatty():
            raise NotConfirmed("nothing applied: no terminal to confirm at; pass --yes")
        answer = input("Apply these changes? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            raise NotConfirmed("nothing applied")

    def progress(phase: str, done: int, total: int) -> None:
        if total >= 500:
            command.stdout.write(f"  {phase}: {done}/{total}")

    outcome = reconcile.apply(placed, prune=options["prune"], progress=progress)
    counts = outcome.summary()
    skipped = counts.get("delete_skipped", 0)
    command.stdout.write(
        f"Applied: {counts['create']} created, {counts['update']} updated, "
        f"{counts['drift']} restored from drift, {counts.get('delete', 0)} deleted, "
        f"{counts['unchanged']} unchanged."
        + (f" {skipped} deletes skipped (pass --prune)." if skipped else "")
    )
    return 0
