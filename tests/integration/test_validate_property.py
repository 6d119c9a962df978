"""Property: validate means it runs, for generated manifests applied one after another.

For each example two manifests A and B (see ``manifest_strategies``: extreme and past instants,
every trigger/body/engine change between A and B, control characters, huge values) go through
the CLI in turn, on the real PostgreSQL + pg_cron and django-celery-beat tables:

* ``jobs validate`` exits 0 => ``jobs apply --prune`` exits 0, the project's beat scheduler
  ticks and reads every entry, and ``jobs plan --check`` exits 0 (nothing pending);
* ``jobs validate`` exits 1 => every error line is located, ``jobs apply`` refuses too, and the
  registry, ``cron.job`` and the django-celery-beat tables are identical to before.

No step may raise: an exception escaping a command is a traceback a user would have seen. The
example count is fixed and the generation derandomized, so the run is the same in CI each time
(under two minutes here); ``bench/fuzz_manifests.py`` runs the same check on thousands more.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.integration.manifest_strategies import clean_manifests, manifests
from tests.integration.reconcile_helpers import clear_engines
from tests.integration.validate_helpers import jobs, snapshot, tick_beat

pytestmark = pytest.mark.django_db

NOW = datetime.now(UTC)
PAIRS = settings(
    max_examples=180,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: a failure prints the manifest that broke; shrinking it through the real
    # services would take minutes.
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def check_manifest(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` and hold the property for it; True when it was applied."""
    path.write_text(text, encoding="utf-8")
    before = snapshot()
    status, _, stderr = jobs("validate", "--manifest", str(path))
    if status == 0:
        status, _, stderr = jobs("apply", "--manifest", str(path), "--yes", "--prune")
        assert status == 0, f"validate accepted, apply refused:\n{stderr}\n{text}"
        tick_beat()
        status, stdout, stderr = jobs("plan", "--manifest", str(path), "--check")
        assert status == 0, f"plan not clean after apply:\n{stdout}{stderr}\n{text}"
        return True
    assert status == 1, stderr
    *errors, count = stderr.splitlines()
    assert errors, f"refused without saying why:\n{text}"
    assert count.startswith(f"{path}: ")
    for line in errors:
        assert line.startswith(f"{path}:"), f"unlocated error {line!r}"
    assert jobs("apply", "--manifest", str(path), "--yes", "--prune")[0] == 1
    assert snapshot() == before, f"a refused manifest changed the engines:\n{text}"
    return False


@PAIRS
@given(first=manifests(NOW), second=manifests(NOW))
def test_validate__accepted_runs_and_refused_changes_nothing(
    tmp_path: Path, first: str, second: str
) -> None:
    """Manifest A then manifest B, from empty engines: each either applies, ticks and plans
    clean, or is refused with located errors and changes nothing."""
    clear_engines()
    path = tmp_path / "jobs.yaml"
    check_manifest(path, first)
    check_manifest(path, second)


@settings(PAIRS, max_examples=120)
@given(first=clean_manifests(NOW), second=clean_manifests(NOW))
def test_validate__every_transition_of_an_accepted_job(
    tmp_path: Path, first: str, second: str
) -> None:
    """Two valid manifests over the same three job names: each is accepted, and B applied over
    A changes trigger, body and engine of applied jobs in every combination, plans clean."""
    clear_engines()
    path = tmp_path / "jobs.yaml"
    assert check_manifest(path, first), f"a valid-by-construction manifest was refused:\n{first}"
    assert check_manifest(path, second), f"a valid-by-construction manifest was refused:\n{second}"
