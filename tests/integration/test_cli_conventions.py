"""``manage.py jobs`` follows manage.py's conventions on the real services: quiet unless
``-v 2``, colour only on a terminal or with ``--force-color``, columns sized to their content,
and ``--format json`` on every subcommand, each a document with stable keys."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, service_env
from tests.integration.cli_helpers import apply, jobs, manage
from tests.integration.reconcile_helpers import clear_engines, write_manifest

MANIFEST = """
version: 1
jobs:
  cli-nightly:
    schedule: "0 3 * * *"
    target: pg_cron
    sql: SELECT 1
  cli-hourly:
    schedule: "@hourly"
    task: orchestrator.ping
    queue: cli-conventions
"""
#: cli-nightly updated, cli-hourly gone (delete), cli-new created
CHANGED = """
version: 1
jobs:
  cli-nightly:
    schedule: "0 4 * * *"
    target: pg_cron
    sql: SELECT 1
  cli-new:
    schedule: "@daily"
    task: orchestrator.ping
"""
ESCAPE = "\x1b["
GREEN, YELLOW, RED = "\x1b[32;1m", "\x1b[33;1m", "\x1b[31;1m"


@pytest.fixture
def engines_emptied() -> Iterator[None]:
    """Committed applies (a child process) leave nothing behind in either engine."""
    clear_engines()
    yield
    clear_engines()


@pytest.mark.django_db(transaction=True)
def test_jobs__quiet_by_default_and_plain_when_piped(tmp_path: Path, engines_emptied) -> None:
    """As a process with stdout piped: plan, apply and list write nothing on stderr at the
    default verbosity and no colour codes on stdout; the same apply with ``-v 2`` shows the
    INFO logs it makes (they are hidden, not gone)."""
    path = str(write_manifest(tmp_path, MANIFEST))
    plan = manage("jobs", "plan", "--manifest", path)
    applied = manage("jobs", "apply", "--manifest", path, "--yes")
    listed = manage("jobs", "list")
    for result in (plan, applied, listed):
        assert (result.returncode, result.stderr) == (0, ""), result.args
        assert ESCAPE not in result.stdout, result.args
    assert "+ create" in plan.stdout
    assert applied.stdout.startswith("Applied: 2 created")
    assert "cli-nightly" in listed.stdout
    # `jobs list | head -1`: a reader that went away ends the command quietly (SIGPIPE's
    # status), never with a BrokenPipeError traceback
    reader, writer = os.pipe()
    os.close(reader)
    try:
        closed = subprocess.run(
            [sys.executable, "manage.py", "jobs", "list"], cwd=ROOT, env=service_env(),
            stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(writer)
    assert (closed.returncode, closed.stderr) == (141, "")
    verbose = manage("jobs", "apply", "--manifest", str(write_manifest(tmp_path, CHANGED)),
                     "--yes", "-v", "2")  # fmt: skip
    assert verbose.returncode == 0
    assert re.search(r" INFO +orchestrator\.reconcile: manifest applied", verbose.stderr)


@pytest.mark.django_db
def test_jobs__colour_with_force_color_never_with_no_color(tmp_path: Path) -> None:
    """``--force-color``: plan's create green, update yellow, delete red; list's active state
    green and paused yellow. ``--no-color``: no escape code at all."""
    apply(tmp_path, MANIFEST)
    jobs("pause", "cli-hourly")
    path = str(write_manifest(tmp_path, CHANGED))
    status, out, _ = jobs("plan", "--manifest", path, force_color=True)
    assert status == 0
    assert f"{GREEN}+ create" in out
    assert f"{YELLOW}~ update" in out
    assert f"{RED}- delete" in out
    _, listed, _ = jobs("list", force_color=True)
    assert f"{GREEN}active" in listed
    assert f"{YELLOW}paused" in listed
    for args in (("plan", "--manifest", path), ("list",)):
        status, out, _ = jobs(*args, "--no-color")
        assert status == 0
        assert ESCAPE not in out


def columns(header: str) -> list[int]:
    """Where each column of a header line starts."""
    return [match.start() for match in re.finditer(r"\S+(?: \S+)?", header)]


@pytest.mark.django_db
def test_list_and_plan__columns_sized_to_their_content(tmp_path: Path) -> None:
    """Short data makes short lines (no fixed widths): every cell of a column starts where
    its header does, and the NAME column is as wide as the longest name, two spaces apart."""
    apply(tmp_path, MANIFEST)
    _, out, _ = jobs("list")
    header, *rows, total = out.splitlines()
    assert total == "2 managed jobs"
    starts = columns(header)
    assert starts[1] == len("cli-nightly") + 2  # NAME is as wide as the longest name
    for row in rows:
        for start in starts[1:-1]:  # the last (MISSED) column is right-aligned
            assert row[start - 2 : start] == "  ", (row, start)
            assert row[start] != " ", (row, start)
    assert max(len(line) for line in out.splitlines()) < 110  # fixed widths made 168
    _, planned, _ = jobs("plan", "--manifest", str(write_manifest(tmp_path, CHANGED)))
    lines = [line for line in planned.splitlines() if line[:1] in "+~-"]
    assert [line.index("cli-") for line in lines] == [10, 10, 10]
    assert {line.split()[3] for line in lines} == {"celery", "pg_cron"}
    assert len({line.index(line.split()[3]) for line in lines}) == 1  # engine column aligned


def keys(document: dict[str, Any]) -> set[str]:
    return set(document)


@pytest.mark.django_db
def test_jobs__every_subcommand_prints_json(tmp_path: Path, celery_app: Any) -> None:
    """validate, explain, plan, apply, list, history, pause, resume and run each print one
    JSON document with ``--format json``; validate's says ok or gives the located errors,
    apply's says what changed (done false for a delete left without --prune)."""
    clear_engines()  # no job left by another test counts as unmanaged (rolled back after)
    path = str(write_manifest(tmp_path, MANIFEST))
    validate_keys = {"ok", "path", "jobs", "engines", "placement_checked", "warnings", "errors"}

    status, out, _ = jobs("validate", "--manifest", path, "--format", "json")
    valid = json.loads(out)
    assert status == 0
    assert keys(valid) == validate_keys
    assert (valid["ok"], valid["jobs"], valid["engines"]) == (
        True,
        2,
        {"pg_cron": 1, "celery": 1},
    )
    assert (valid["placement_checked"], valid["errors"]) == (True, [])

    (tmp_path / "bad").mkdir()
    (tmp_path / "changed").mkdir()
    bad = write_manifest(tmp_path / "bad", "version: 1\njobs:\n  a: {sql: SELECT 1, x: 1}\n")
    status, out, err = jobs("validate", "--manifest", str(bad), "--format", "json")
    invalid = json.loads(out)
    assert (status, err, keys(invalid)) == (1, "", validate_keys)
    assert invalid["ok"] is False
    assert {(e["file"], e["line"], e["job"], e["field"]) for e in invalid["errors"]} == {
        (str(bad), 3, "a", "trigger"),
        (str(bad), 3, "a", "x"),
    }
    assert all(keys(e) == {"file", "line", "job", "field", "message"} for e in invalid["errors"])

    status, out, _ = jobs("explain", "cli-hourly", "--manifest", path, "--format", "json")
    assert keys(json.loads(out)) == {"name", "target", "reasons", "next_runs"}
    status, out, _ = jobs("plan", "--manifest", path, "--format", "json")
    assert keys(json.loads(out)) == {"changes", "summary"}

    status, out, err = jobs("apply", "--manifest", path, "--yes", "--format", "json")
    applied = json.loads(out)
    assert status == 0, err
    assert keys(applied) == {"changes", "summary", "pruned"}
    assert {(c["name"], c["action"], c["done"]) for c in applied["changes"]} == {
        ("cli-nightly", "create", True),
        ("cli-hourly", "create", True),
    }
    assert applied["summary"] == {
        "create": 2,
        "update": 0,
        "drift": 0,
        "delete": 0,
        "delete_skipped": 0,
        "unchanged": 0,
        "unmanaged": 0,
    }
    changed = str(write_manifest(tmp_path / "changed", CHANGED))
    status, out, _ = jobs("apply", "--manifest", changed, "--yes", "--format", "json")
    second = json.loads(out)
    assert {(c["name"], c["action"], c["done"]) for c in second["changes"]} == {
        ("cli-nightly", "update", True),
        ("cli-new", "create", True),
        ("cli-hourly", "delete", False),
    }
    assert (second["summary"]["delete"], second["summary"]["delete_skipped"]) == (0, 1)
    assert second["pruned"] is False
    status, out, err = jobs("apply", "--manifest", path, "--format", "json")
    assert (status, out) == (1, "")
    assert "--format json needs --yes" in err

    status, out, _ = jobs("list", "--format", "json")
    assert {row["name"] for row in json.loads(out)} == {"cli-nightly", "cli-hourly", "cli-new"}
    status, out, _ = jobs("history", "--format", "json")
    assert status == 0
    assert isinstance(json.loads(out), list)
    for verb, paused in (("pause", True), ("resume", False)):
        status, out, _ = jobs(verb, "cli-nightly", "--format", "json")
        assert json.loads(out) == {"name": "cli-nightly", "engine": "pg_cron", "paused": paused}
    # Sent to a queue no worker consumes, then purged: the run's message goes nowhere.
    status, out, _ = jobs("run", "cli-hourly", "--format", "json")
    try:
        assert status == 0
        assert keys(json.loads(out)) == {"name", "run_id"}
    finally:
        with celery_app.connection_for_write() as connection:
            connection.default_channel.queue_purge("cli-conventions")


@pytest.mark.django_db
def test_jobs__help_lists_exit_codes_and_flags_after_the_subcommand(capsys) -> None:
    """``jobs --help`` ends with the exit codes; ``-v``/``--no-color`` are accepted after the
    subcommand too (``jobs list -v 2``)."""
    assert jobs("--help")[0] == 0  # argparse prints help on sys.stdout
    text = capsys.readouterr().out
    assert "exit status:" in text
    for code in ("0  done", "1  failed", "2  plan --check", "3  run --wait"):
        assert f"  {code}" in text
    assert jobs("list", "--help")[0] == 0
    sub = capsys.readouterr().out
    assert {"--verbosity", "--no-color", "--force-color"} <= set(sub.split())
    assert jobs("list", "-v", "2", "--no-color")[0] == 0
