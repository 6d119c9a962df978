"""The operator's commands as the tests run them: ``manage.py jobs`` in-process or as a process.

One runner for every test that drives the CLI (it used to be copied into each module), so a
change to how a command reports its status is made here once.
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

from tests.conftest import ROOT, service_env
from tests.integration.reconcile_helpers import write_manifest


def jobs(*args: str, **options: object) -> tuple[int, str, str]:
    """Run ``manage.py jobs ARGS`` in-process; the exit status, stdout and stderr.

    ``options`` are the command's options by name (``force_color=True``). Any exception other
    than the command's own ``SystemExit`` propagates: that is a traceback a user would have
    seen, and the tests calling this treat it as a failure.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    status = 0
    try:
        call_command("jobs", *args, stdout=stdout, stderr=stderr, **options)
    except SystemExit as exit_:
        status = int(exit_.code or 0)
    return status, stdout.getvalue(), stderr.getvalue()


def apply(tmp_path: Path, text: str, *extra: str) -> str:
    """Write ``text`` as the manifest and ``jobs apply --yes`` it; the manifest's path."""
    path = str(write_manifest(tmp_path, text))
    status, _, err = jobs("apply", "--manifest", path, "--yes", *extra)
    assert status == 0, err
    return path


def manage(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python manage.py ARGV`` as an operator runs it, stdout and stderr piped (not a
    terminal), on the test profile's services; ``env`` adds to its environment."""
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=ROOT,
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
