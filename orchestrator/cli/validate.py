"""``jobs validate``: check the manifest and place every job, reporting every error at once.

Without a reachable database the manifest is still checked (syntax, fields, SQL, tasks), with a
warning that placement was not: placement depends on the pg_cron actually installed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import desired
from orchestrator.cli import context
from orchestrator.engines import backends
from orchestrator.errors import ManifestInvalid, ServiceError

NAME = "validate"
HELP = "check the manifest; exit 1 with one 'PATH:LINE: job: field: message' line per error"


def add_arguments(parser: CommandParser) -> None:
    context.add_manifest_argument(parser)


def handle(command: BaseCommand, options: dict[str, Any]) -> int:
    path = context.manifest_path(options)
    try:
        manifest = context.load(options)
    except ManifestInvalid as invalid:
        return context.report_invalid(command, invalid, path)
    count = len(manifest)
    noun = "job" if count == 1 else "jobs"
    try:
        capabilities = context.capabilities(manifest)
    except ServiceError as error:
        command.stderr.write(f"warning: {error}; job placement was not checked")
        command.stdout.write(f"{path}: OK, {count} {noun} (placement not checked)")
        return 0
    try:
        placed = desired.place(manifest, capabilities)
    except ManifestInvalid as invalid:
        return context.report_invalid(command, invalid, path)
    engines = Counter(job.engine for job in placed)
    where = ", ".join(
        f"{engines[engine]} on {backend.label}" for engine, backend in backends().items()
    )
    command.stdout.write(f"{path}: OK, {count} {noun}: {where}")
    return 0
