"""What the operator commands (``manage.py jobs``, ``manage.py fleet``) share with manage.py.

Django's own commands are quiet unless asked: ``-v 2`` for more, ``--no-color``/``--force-color``
for colour. A command here logs through ``logging`` like the rest of the project, and the
project's root handler writes every INFO record to stderr, which is right for a worker or beat
(their log is their output) and wrong for a command an operator reads. So ``OperatorCommand``
sets the logging threshold from ``--verbosity`` for the run and puts it back afterwards: 0
errors only, 1 (the default) warnings and errors, 2 INFO, 3 DEBUG. Nothing else changes: the
log calls stay where they are, and the same run with ``-v 2`` shows them.

The sub-parsers accept ``-v``, ``--no-color`` and ``--force-color`` after the subcommand too
(``jobs list -v 2``), the way ``--format`` is accepted on either side in ``fleet``.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management.base import BaseCommand, CommandParser, DjangoHelpFormatter

#: the most severe level *hidden* at each ``--verbosity`` (``logging.disable``'s argument)
HIDDEN = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: logging.NOTSET}


@contextmanager
def log_level(verbosity: int) -> Iterator[None]:
    """Records at or below ``HIDDEN[verbosity]`` dropped while the command runs, restored after.

    ``logging.disable`` rather than the root logger's level: Celery's Django fix-up calls
    ``django.setup()`` again the first time a command touches the Celery app (an apply writing
    periodic tasks), which re-applies ``settings.LOGGING`` and would reset a level set here;
    the disable threshold lives outside that configuration. ``-v 3`` also lowers the root
    logger to DEBUG. Restored because ``call_command`` runs commands inside a longer-lived
    process (the tests, a shell), whose logging must not stay changed by one command.
    """
    root = logging.getLogger()
    hidden_before, level_before = root.manager.disable, root.level
    logging.disable(HIDDEN.get(verbosity, logging.NOTSET))
    if verbosity >= 3:
        root.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logging.disable(hidden_before)
        root.setLevel(level_before)


class HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's ordering of options, with the epilog's lines kept as written (exit codes)."""


class OperatorCommand(BaseCommand):
    """A ``BaseCommand`` that is quiet by default and takes the common flags after a subcommand."""

    #: shown at the end of ``--help``; subclasses list their exit codes here
    epilog = ""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("epilog", self.epilog or None)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def execute(self, *args: Any, **options: Any) -> Any:
        with log_level(int(options.get("verbosity", 1))):
            try:
                return super().execute(*args, **options)
            except BrokenPipeError:
                # The reader went away (`jobs list | head`): stop quietly, as Unix tools do,
                # with the conventional exit status of a process killed by SIGPIPE.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush is harmless
                raise SystemExit(128 + signal.SIGPIPE) from None

    @staticmethod
    def add_common_arguments(subparser: argparse.ArgumentParser) -> None:
        """``-v``, ``--no-color`` and ``--force-color`` after the subcommand as well.

        ``SUPPRESS`` leaves the main parser's value alone unless the flag is given here.
        """
        subparser.add_argument(
            "-v",
            "--verbosity",
            type=int,
            choices=sorted(HIDDEN),
            default=argparse.SUPPRESS,
            help="0 errors only, 1 (default) warnings and the result, 2 adds INFO logs, 3 DEBUG",
        )
        subparser.add_argument(
            "--no-color", action="store_true", default=argparse.SUPPRESS, help="never colour"
        )
        subparser.add_argument(
            "--force-color",
            action="store_true",
            default=argparse.SUPPRESS,
            help="colour even when not writing to a terminal",
        )
