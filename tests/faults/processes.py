"""Real worker and beat processes for the integration and fault tests, on the current profile.

Unlike the session ``celery_worker`` fixture these load the test-only tasks of
``tests.faults.jobs`` (``--include``) and consume the queues a test names, so a test can drain,
kill or starve them without disturbing anyone else's worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, service_env

PROFILE_DIR = ROOT / ".data" / os.environ.get("ORCHESTRATOR_PROFILE", "test")


class Process:
    """A child process of the project, its output in a log file under ``.data/<profile>/``."""

    def __init__(self, argv: list[str], log_name: str, env: dict[str, str] | None = None) -> None:
        self.log = PROFILE_DIR / log_name
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", *argv],
            cwd=ROOT,
            env=service_env(**(env or {})),
            stdout=self.handle,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a crashed machine."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.handle.close()

    def output(self) -> str:
        self.handle.flush()
        return Path(self.log).read_text(errors="replace")


class Worker(Process):
    def __init__(self, queues: str, concurrency: int = 2, name: str | None = None) -> None:
        self.name = name or f"t-{uuid.uuid4().hex[:8]}"
        self.hostname = f"{self.name}@{os.uname().nodename}"
        super().__init__(
            [
                "worker", "--loglevel=INFO", f"--hostname={self.hostname}",
                f"--queues={queues}", f"--concurrency={concurrency}",
                "--include=tests.faults.jobs", "--without-gossip", "--without-mingle",
            ],
            f"worker-{self.name}.log",
        )  # fmt: skip

    def wait_ready(self, app: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker exited early; see {self.log}")
            if app.control.ping(destination=[self.hostname], timeout=1.0):
                return
        raise RuntimeError(f"worker {self.hostname} did not answer within {timeout}s; {self.log}")

    def children(self) -> list[int]:
        found = subprocess.run(
            ["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False
        )
        return [int(pid) for pid in found.stdout.split()]


class Beat(Process):
    def __init__(self, name: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        super().__init__(
            [
                "beat", "--loglevel=INFO", "--pidfile=",
                "--scheduler=orchestrator.engines.celery.due_scheduler:DueScheduler",
                f"--schedule={PROFILE_DIR / f'beat-{name}.schedule'}",
            ],
            f"beat-{name}.log",
            env,
        )  # fmt: skip

    def is_leader(self) -> bool:
        return "now the leader" in self.output()
