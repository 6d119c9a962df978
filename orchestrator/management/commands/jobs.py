"""``manage.py jobs SUBCOMMAND``: the manifest's jobs, validated, explained, planned, applied.

The subcommands live in ``orchestrator.cli``, one module each. A failed subcommand has already
said why on stderr, so it exits with its status (like ``makemigrations --check``) rather than
raising ``CommandError``, which would print the reason a second time. ``OperatorCommand`` makes
it quiet by default (``-v 2`` shows the INFO logs).
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.checks import Tags
from django.core.management.base import CommandParser

from orchestrator.cli import SUBCOMMANDS, context
from orchestrator.cli.command import HelpFormatter, OperatorCommand
from orchestrator.errors import ManifestInvalid, OrchestratorError

EPILOG = """\
exit status:
  0  done (plan --check: nothing pending; validate: the manifest is valid)
  1  failed: an invalid manifest, an unknown job, a service that cannot be reached, an
     apply that was not confirmed or whose plan changed meanwhile, a run that failed,
     was lost or did not finish within --timeout (run --wait)
  2  plan --check: changes are pending; also a command line argparse rejects, as for
     every manage.py command
  3  run --wait: the run was skipped (its job's overlap policy)

With --format json, stdout holds exactly one JSON document whose keys are always present;
errors go to stderr, except for validate, whose document carries them ("ok", "errors").
-v 2 shows the INFO logs on stderr; colour only on a terminal (--no-color, --force-color).
"""


class Command(OperatorCommand):
    help = "Work with the jobs of the manifest: " + ", ".join(m.NAME for m in SUBCOMMANDS) + "."
    epilog = EPILOG
    # The checks on what a jobs command uses (models, database); the rest (admin, templates,
    # URLs, security) import and inspect the whole site on every run, and ``manage.py check``
    # and every server start still run them.
    requires_system_checks = [Tags.models, Tags.database]

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        for module in SUBCOMMANDS:
            subparser = subparsers.add_parser(
                module.NAME,
                help=module.HELP,
                description=module.__doc__,
                formatter_class=HelpFormatter,
            )
            module.add_arguments(subparser)
            self.add_common_arguments(subparser)

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
