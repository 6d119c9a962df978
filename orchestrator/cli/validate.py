"""``jobs validate``: check the manifest and place every job, reporting every error at once.

Without a reachable database the manifest is still checked (syntax, fields, SQL, tasks), with a
warning that placement was not: placement depends on the pg_cron actually installed.

``--format json`` prints one object, with every key always present:
``{"ok", "path", "jobs", "engines": {ENGINE: COUNT}, "placement_checked", "warnings": [..],
"errors": [{"file", "line", "job", "field", "message"}]}``; the exit status is the text form's.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import desired
from orchestrator.cli import context
from orchestrator.engines import backends
from orchestrator.errors import ManifestInvalid, OrchestratorError, ServiceError

NAME = "validate"
HELP = "check the manifest; exit 1 with one 'PATH:LINE: job: field: message' line per error"


def add_arguments(parser: CommandParser) -> None:
    context.add_manifest_argument(parser)
    context.add_format_argument(parser)


def error_json(error: OrchestratorError) -> dict[str, object]:
    """One located error as data: the parts ``PATH:LINE: job 'x': field: message`` is made of."""
    return {
        "file": error.path,
        "line": error.line,
        "job": error.job,
        "field": error.field,
        "message": error.message,
    }


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    path = context.manifest_path(options)
    as_json = options["format"] == "json"
    document: dict[str, Any] = {
        "ok": False,
        "path": path,
        "jobs": None,
        "engines": dict.fromkeys(backends(), 0),
        "placement_checked": False,
        "warnings": [],
        "errors": [],
    }

    def invalid(error: ManifestInvalid) -> int:
        if not as_json:
            return context.report_invalid(command, error, path)
        document["errors"] = [error_json(each) for each in error.errors]
        command.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
        return 1

    try:
        manifest = context.load(options)
    except ManifestInvalid as error:
        return invalid(error)
    count = len(manifest)
    noun = "job" if count == 1 else "jobs"
    document["jobs"] = count
    try:
        capabilities = context.capabilities(manifest)
    except ServiceError as error:
        warning = f"{error}; job placement was not checked"
        if as_json:
            document.update(ok=True, warnings=[warning])
            command.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
        else:
            command.stderr.write(f"warning: {warning}")
            command.stdout.write(f"{path}: OK, {count} {noun} (placement not checked)")
        return 0
    try:
        placed = desired.place(manifest, capabilities)
    except ManifestInvalid as error:
        return invalid(error)
    engines = Counter(job.engine for job in placed)
    if as_json:
        document.update(
            ok=True,
            placement_checked=True,
            engines={engine: engines[engine] for engine in backends()},
        )
        command.stdout.write(json.dumps(document, indent=2, ensure_ascii=False))
        return 0
    where = ", ".join(
        f"{engines[engine]} on {backend.label}" for engine, backend in backends().items()
    )
    command.stdout.write(command.style.SUCCESS(f"{path}: OK") + f", {count} {noun}: {where}")
    return 0
