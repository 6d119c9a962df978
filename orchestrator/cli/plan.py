"""``jobs plan``: what an apply would change in each engine, job by job, like terraform plan.

``--check`` makes it a gate for CI and deploy scripts: exit 2 when anything is pending. On a
terminal the actions are coloured as terraform does: create green, update yellow, delete red
(drift magenta); the name column is as wide as the longest name shown.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import desired, reconcile
from orchestrator.cli import context
from orchestrator.cli.terminal import ACTION_ROLES, Cell, role, table
from orchestrator.plan import Change, Plan

NAME = "plan"
HELP = "show the changes an apply would make (--check: exit 2 when any are pending)"

SYMBOLS = {"create": "+", "update": "~", "drift": "!", "delete": "-", "unchanged": " "}
NOTES = {
    "drift": "(changed outside the manifest; apply restores it)",
    "delete": "(only with --prune)",
}


def add_arguments(parser: CommandParser) -> None:
    context.add_manifest_argument(parser)
    context.add_format_argument(parser)
    parser.add_argument(
        "--check", action="store_true", help="exit 2 when changes are pending, 0 when none"
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    placed = desired.place_file(context.manifest_path(options))
    current = reconcile.plan(placed)
    if options["format"] == "json":
        command.stdout.write(json.dumps(current.as_json(), indent=2, default=str))
    else:
        write_plan(command, current)
    return 2 if options["check"] and current.pending() else 0


def target_text(change: Change) -> str:
    if change.action == "update" and "target" in change.diff:
        return f"{change.diff['target']['from']} -> {change.diff['target']['to']}"
    return change.target


def write_plan(command: BaseCommand, plan: Plan) -> None:
    """One line per change (symbol, action, name, target, note), then each changed field."""
    shown = [change for change in plan.changes if change.action != "unchanged"]
    rows: list[list[Cell | str]] = []
    for change in shown:
        colour = role(command.style, ACTION_ROLES.get(change.action))
        rows.append(
            [
                Cell(f"{SYMBOLS[change.action]} {change.action}", colour),
                Cell(change.name, colour),
                target_text(change),
                NOTES.get(change.action, ""),
            ]
        )
    for change, line in zip(shown, table(None, rows, style=command.style), strict=True):
        command.stdout.write(line)
        if change.action in ("update", "drift"):
            for field, values in change.diff.items():
                old = json.dumps(values.get("from"), default=str)
                new = json.dumps(values.get("to"), default=str)
                command.stdout.write(f"      {field}: {old} -> {new}")
    counts = plan.summary()
    command.stdout.write(
        f"Plan: {counts['create']} to create, {counts['update']} to update, "
        f"{counts['drift']} drifted, {counts['delete']} to delete, "
        f"{counts['unchanged']} unchanged; {counts['unmanaged']} unmanaged jobs left alone."
    )
    if not plan.pending():
        command.stdout.write(command.style.SUCCESS("No changes: both engines match the manifest."))
