"""``jobs apply``: make both engines match the manifest, in one transaction.

Shows the plan, asks before changing anything (``--yes`` to skip the question, required when
nobody is at a terminal), reports progress on large applies and a summary at the end. Deletes
happen only with ``--prune``.

The plan that is carried out is always computed under the apply lock (``reconcile.apply``), so
two applies racing never report success for a state that is not live. With ``--yes`` the
summary printed is that plan's. Without, the plan shown before the question is read without the
lock; when the plan under the lock differs from it, nothing is applied and the command exits 1
saying so (``PlanChanged``).

``--format json`` (with ``--yes``: a JSON reader cannot answer the question) prints one object
saying what changed, every key always present: ``{"changes": [{"name", "action", "target",
"diff", "done"}], "summary": {"create", "update", "drift", "delete", "delete_skipped",
"unchanged", "unmanaged"}, "pruned"}``; ``done`` is false for a delete skipped without
``--prune``.
"""

from __future__ import annotations

import json
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
    context.add_format_argument(parser)


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    as_json = options["format"] == "json"
    if as_json and not options["yes"]:
        raise NotConfirmed("nothing applied: --format json needs --yes")
    placed = desired.place_file(context.manifest_path(options))
    expected = None
    if not options["yes"]:
        preview = reconcile.plan(placed)
        write_plan(command, preview)
        if preview.pending(prune=options["prune"]) or preview.of("delete"):
            if not sys.stdin.isatty():
                raise NotConfirmed("nothing applied: no terminal to confirm at; pass --yes")
            answer = input("Apply these changes? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                raise NotConfirmed("nothing applied")
        # Also when nothing is pending: "no changes" is confirmed under the lock, not assumed.
        expected = reconcile.fingerprint(preview)
    # Jobs gone from the manifest (or back in it) are still applied: the registry records
    # them as orphaned, or no longer; the summary says so.
    orphans = reconcile.has_orphans()

    def progress(phase: str, done: int, total: int) -> None:
        if total >= 500:
            command.stdout.write(f"  {phase}: {done}/{total}")

    outcome = reconcile.apply(
        placed,
        prune=options["prune"],
        progress=_silent if as_json else progress,
        expected=expected,
    )
    if as_json:
        command.stdout.write(json.dumps(outcome_json(outcome), indent=2, default=str))
        return 0
    if not (outcome.plan.pending(prune=options["prune"]) or outcome.plan.of("delete") or orphans):
        if options["yes"]:  # without --yes, this very plan was shown above
            write_plan(command, outcome.plan)
        return 0
    counts = outcome.summary()
    skipped = counts.get("delete_skipped", 0)
    command.stdout.write(
        command.style.SUCCESS("Applied:")
        + f" {counts['create']} created, {counts['update']} updated, "
        f"{counts['drift']} restored from drift, {counts.get('delete', 0)} deleted, "
        f"{counts['unchanged']} unchanged."
        + (f" {skipped} deletes skipped (pass --prune)." if skipped else "")
    )
    return 0


def _silent(phase: str, done: int, total: int) -> None:
    """No progress lines: stdout holds the JSON document alone."""


def outcome_json(outcome: reconcile.Outcome) -> dict[str, object]:
    """What an apply changed, with the same keys whether or not it pruned."""
    summary = outcome.plan.summary()
    deletes = summary.pop("delete")
    summary["delete"] = deletes if outcome.pruned else 0
    summary["delete_skipped"] = 0 if outcome.pruned else deletes
    changes = [
        {**change.as_json(), "done": change.action != "delete" or outcome.pruned}
        for change in outcome.plan.changes
        if change.action != "unchanged"
    ]
    return {"changes": changes, "summary": summary, "pruned": outcome.pruned}
