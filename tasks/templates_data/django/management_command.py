"""Template: a management command that reports errors as one line and a non-zero exit."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from orchestrator.errors import OrchestratorError


class Command(BaseCommand):
    help = "Describe what the command does in one sentence."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="show, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.stdout.write("done" if not options["dry_run"] else "would do")
        except OrchestratorError as error:
            raise CommandError(str(error)) from error
