"""Fuzz "validate means it runs" with thousands of generated manifests, on the real services.

    ORCHESTRATOR_PROFILE=dev .venv/bin/python bench/fuzz_manifests.py [--manifests 2000] [--seed 12]

Run on demand, not in ``make test`` (the bounded version is
``tests/integration/test_validate_property.py``). Manifests come from the same strategies
(``tests/integration/manifest_strategies.py``) in pairs: A then B, so applied jobs change
trigger, body and engine. Each one goes through the CLI in-process, as an operator would run it:

* ``jobs validate`` exit 0 => ``jobs apply --yes --prune`` must exit 0, the project's beat
  scheduler must tick and read every entry, and ``jobs plan --check`` must exit 0;
* ``jobs validate`` exit 1 => every error line located, ``jobs apply`` refuses, and the registry,
  ``cron.job`` and django-celery-beat's tables are byte-identical to before.

Each pair runs in a transaction that is rolled back, so the database is left as it was. Prints
tried / rejected / applied / tracebacks / state changed on reject / plan not clean after apply,
and writes each failing manifest with what went wrong to ``--failures`` (a directory).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.db import transaction  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from tests.integration.manifest_strategies import manifests  # noqa: E402
from tests.integration.reconcile_helpers import clear_engines  # noqa: E402
from tests.integration.validate_helpers import jobs, snapshot, tick_beat  # noqa: E402

FIGURES = (
    "tried",
    "rejected",
    "applied",
    "tracebacks",
    "state changed on reject",
    "plan not clean after apply",
    "apply refused after validate OK",
    "unlocated errors",
)


class Rollback(Exception):
    """Raised to roll a pair's transaction back."""


class Fuzz:
    def __init__(self, workdir: Path, failures: Path | None) -> None:
        self.path = workdir / "jobs.yaml"
        self.failures = failures
        self.counts: Counter[str] = Counter()
        self.shown = 0

    def fail(self, figure: str, text: str, detail: str) -> None:
        self.counts[figure] += 1
        if self.shown < 5:
            print(f"--- {figure}:\n{detail.strip()[-2000:]}\n", file=sys.stderr)
            self.shown += 1
        if self.failures is not None:
            self.failures.mkdir(parents=True, exist_ok=True)
            number = sum(self.counts[f] for f in FIGURES[3:])
            target = self.failures / f"{number:04d}-{figure.replace(' ', '-')}.yaml"
            target.write_text(f"# {figure}\n# " + detail.replace("\n", "\n# ") + "\n" + text)

    def manifest(self, text: str) -> None:
        """Hold the property for one manifest; count the outcome."""
        self.counts["tried"] += 1
        self.path.write_text(text, encoding="utf-8")
        path = str(self.path)
        try:
            before = snapshot()
            status, _, stderr = jobs("validate", "--manifest", path)
            if status != 0:
                self.counts["rejected"] += 1
                lines = stderr.splitlines()[:-1]
                if not lines or any(not line.startswith(f"{path}:") for line in lines):
                    self.fail("unlocated errors", text, stderr)
                jobs("apply", "--manifest", path, "--yes", "--prune")
                if snapshot() != before:
                    self.fail("state changed on reject", text, stderr)
                return
            status, _, stderr = jobs("apply", "--manifest", path, "--yes", "--prune")
            if status != 0:
                self.fail("apply refused after validate OK", text, stderr)
                return
            self.counts["applied"] += 1
            tick_beat()
            status, stdout, stderr = jobs("plan", "--manifest", path, "--check")
            if status != 0:
                self.fail("plan not clean after apply", text, stdout + stderr)
        except Exception:  # noqa: BLE001 - counting every traceback is the point of the fuzz
            self.fail("tracebacks", text, traceback.format_exc())

    def pair(self, first: str, second: str) -> None:
        try:
            with transaction.atomic():
                clear_engines()
                self.manifest(first)
                self.manifest(second)
                raise Rollback
        except Rollback:
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifests", type=int, default=2000, help="how many to try (pairs x2)")
    parser.add_argument("--seed", type=int, default=12, help="the generation seed")
    parser.add_argument("--failures", type=Path, help="a directory for failing manifests")
    options = parser.parse_args()
    logging.disable(logging.WARNING)  # each apply and tick logs; only the figures matter here
    now = datetime.now(UTC)
    started = time.monotonic()
    with TemporaryDirectory() as workdir:
        fuzz = Fuzz(Path(workdir), options.failures)

        @seed(options.seed)
        @settings(
            max_examples=options.manifests // 2,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(manifests(now), manifests(now))
        def run(first: str, second: str) -> None:
            fuzz.pair(first, second)
            done = fuzz.counts["tried"]
            if done % 200 == 0:
                print(f"  {done} manifests, {time.monotonic() - started:.0f} s", file=sys.stderr)

        run()
    elapsed = time.monotonic() - started
    print(f"fuzz_manifests: seed {options.seed}, {elapsed:.0f} s")
    width = max(len(figure) for figure in FIGURES)
    for figure in FIGURES:
        print(f"  {figure:<{width}}  {fuzz.counts[figure]:>6,}")
    return 1 if any(fuzz.counts[f] for f in FIGURES[3:]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
