"""``manage.py jobs SUBCOMMAND``: the manifest's jobs, validated, explained (and more later).

The subcommands live in ``orchestrator.cli``, one module each. A failed subcommand has already
said why on stderr, so it exits with its status (like ``makemigrations --check``) rather than
raising ``CommandError``, which would print the reason a second time.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from orchestrator.cli import SUBCOMMANDS, context
from orchestrator.errors import ManifestInvalid, OrchestratorError


class Command(BaseCommand):
    help = "Work with the jobs of the manifest: " + ", ".join(m.NAME for m in SUBCOMMANDS) + "."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        for module in SUBCOMMANDS:
            subparser = subparsers.add_parser(
                module.NAME, help=module.HELP, description=module.__doc__
            )
            module.add_arguments(subparser)

    def handle(self, *args: Any, **options: Any) -> None:
        module = {m.NAME: m for m in SUBCOMMANDS}[options["subcommand"]]
        try:
            status = module.handle(self, options)
        except ManifestInvalid as invalid:  # one located line per error, then the count
            status = context.report_invalid(self, invalid, invalid.path or "")
        except OrchestratorError as error:  # every error a user can provoke, never a traceback
            self.stderr.write(str(error))
            status = 1
        if status:
            sys.exit(status)
