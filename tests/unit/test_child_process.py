"""A job's program cannot outlive the process that runs it
(``orchestrator.engines.celery.child_process``), on real processes: a SIGKILLed parent takes
its program with it, and a timeout kills the whole group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.engines.celery.child_process import run_supervised

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_child_process__program_dies_when_its_parent_is_sigkilled(tmp_path: Path) -> None:
    """A parent running ``sleep 60`` through ``run_supervised`` is SIGKILLed: the kernel kills
    the sleep at once (PR_SET_PDEATHSIG) instead of leaving it orphaned."""
    pidfile = tmp_path / "pid"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from orchestrator.engines.celery.child_process import run_supervised; "
            f"run_supervised(['sh', '-c', 'echo $$ > {pidfile}; exec sleep 60'], {{}}, None)",
        ],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"]},
    )
    try:
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline, "the program never started"
            time.sleep(0.05)
        program = int(pidfile.read_text())
        assert _alive(program)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _gone_within(program, 2), "the program outlived its parent"
    finally:
        parent.kill()
        parent.wait()


def test_child_process__timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """On timeout the program and what it started in the background are all killed."""
    pidfile = tmp_path / "pid"
    with pytest.raises(subprocess.TimeoutExpired):
        run_supervised(
            ["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"],
            {"PATH": os.environ["PATH"]},
            1,
        )
    background = int(pidfile.read_text())
    assert _gone_within(background, 2), "a background child of the program survived"


def test_child_process__output_and_exit_code_come_back() -> None:
    """A program that ends by itself returns its exit code and output, as before."""
    done = run_supervised(
        ["sh", "-c", "echo out; echo err >&2; exit 3"], {"PATH": "/usr/bin:/bin"}, 5
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
