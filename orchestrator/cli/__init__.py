"""The subcommands of ``manage.py jobs``, one small module each.

A subcommand module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and
``handle(command, options) -> int`` (the exit status). Adding a subcommand (plan, apply, list,
history, run, pause, resume ...) is adding a module and listing it in ``SUBCOMMANDS``.
"""

from __future__ import annotations

from typing import Any

from orchestrator.cli import (
    apply,
    backfill,
    control,
    explain,
    history,
    list_jobs,
    plan,
    validate,
)

SUBCOMMANDS: tuple[Any, ...] = (
    validate,
    explain,
    plan,
    apply,
    list_jobs,
    history,
    control.pause,
    control.resume,
    control.run,
    backfill,
)
