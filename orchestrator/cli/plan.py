"""``jobs plan``: what an apply would change in each engine, job by job, like terraform plan.

``--check`` makes it a gate for CI and deploy scripts: exit 2 when anything is pending.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import desired, reconcile
from orchestrator.cli import context
from orchestrator.plan import Change, Plan

NAME = "plan"
HELP = "show the changes an apply would make (--check: exit 2 when any are pending)"

SYMBOLS = {"create": "+", "update": "~", "drift": "!", "delete": "-", "unchanged": " "}


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


def describe(change: Change) -> str:
    target = change.target
    if change.action == "update" and "target" in change.diff:
        target = f"{change.diff['target']['from']} -> {change.diff['target']['to']}"
    notes = {
        "drift": "  (changed outside the manifest; apply restores it)",
        "delete": "  (only with --prune)",
    }
    return (
        f"{SYMBOLS[change.action]} {change.action:<7} {change.name:<40} {target}"
        f"{notes.get(change.action, '')}"
    )


def write_plan(command: BaseCommand, plan: Plan) -> None:
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        command.stdout.write(describe(change))
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
        command.stdout.write("No changes: both engines match the manifest.")
