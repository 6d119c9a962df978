"""What every ``jobs`` subcommand shares: arguments, the manifest, capabilities, error output.

Loading and capability reading go through ``orchestrator.desired``, the one place that gathers
what validation needs from the running system (registered Celery tasks, Django's database
aliases, the live database), so every subcommand validates the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator import desired
from orchestrator.errors import ManifestInvalid
from orchestrator.manifest import Manifest


def add_manifest_argument(parser: CommandParser) -> None:
    parser.add_argument(
        "--manifest",
        metavar="PATH",
        help="the manifest to read (default: settings.ORCHESTRATOR_MANIFEST)",
    )


def add_format_argument(parser: CommandParser) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text")


def manifest_path(options: Mapping[str, Any]) -> str:
    return str(desired.manifest_path(options.get("manifest")))


def load(options: Mapping[str, Any]) -> Manifest:
    """The manifest, validated against the registered tasks and database aliases."""
    return desired.load(manifest_path(options))


def capabilities(manifest: Manifest) -> desired.Capabilities:
    """Read from the live database; raises ``ServiceError`` when it cannot be reached."""
    return desired.capabilities_for(manifest)


def report_invalid(command: BaseCommand, invalid: ManifestInvalid, path: str) -> int:
    """Print each located error on its own line, then a count; the exit status is 1."""
    for error in invalid.errors:
        command.stderr.write(str(error))
    count = len(invalid.errors)
    command.stderr.write(f"{path}: {count} error{'s' if count != 1 else ''}")
    return 1
