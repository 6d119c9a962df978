"""What ``make run`` starts (the Procfile under honcho) serves the admin and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, service_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def processes_marked(mark: str) -> list[int]:
    """Pids of live processes whose environment carries ``mark`` (children included)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"ORCHESTRATOR_RUN_MARK={mark}".encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.mark.e2e
def test_run__serves_admin_login_and_ctrl_c_leaves_nothing_behind() -> None:
    """web, worker and beat start; /admin/login/ answers 200; SIGINT (Ctrl-C) to the runner
    stops every one of their processes, prefork children included."""
    port = free_port()
    mark = uuid.uuid4().hex
    env = service_env(WEB_PORT=str(port), ORCHESTRATOR_RUN_MARK=mark)
    runner = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "honcho"), "-f", "Procfile", "start"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/") as reply:
                    status = reply.status
                    body = reply.read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert status == 200
        assert "Django administration" in body or "Log in" in body
        time.sleep(3)  # let worker and beat finish booting, so all three are really up
        assert len(processes_marked(mark)) >= 4  # honcho, gunicorn, worker, beat (+children)
    finally:
        runner.send_signal(signal.SIGINT)
        output, _ = runner.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while processes_marked(mark) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_marked(mark) == [], output
    assert "web.1 stopped" in output
    assert "worker.1 stopped" in output
    assert "beat.1 stopped" in output
    assert os.environ.get("ORCHESTRATOR_RUN_MARK") != mark
