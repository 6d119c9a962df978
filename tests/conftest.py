"""Fixtures shared by the whole suite: the real database and a real Celery worker.

The test database is the test profile's own ``orchestrator`` database, because pg_cron can only
live in the database named by ``cron.database_name``: a throw-away ``test_orchestrator`` created by
pytest-django would have no pg_cron. So instead of creating one, the session migrates that
database in place; each ``django_db`` test still runs in a transaction that is rolled back.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.db import OperationalError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker: pytest.FixtureRequest) -> None:
    """Migrate the test profile's database in place (see the module docstring)."""
    with django_db_blocker.unblock():
        call_command("migrate", interactive=False, verbosity=0)


#: How often a test's teardown flush is retried after losing a deadlock (see below).
FLUSH_ATTEMPTS = 6


@pytest.fixture(scope="session", autouse=True)
def _flush_survives_a_busy_worker() -> Iterator[None]:
    """Retry a transactional test's teardown TRUNCATE that PostgreSQL chose as a deadlock victim.

    The session's Celery worker is real and asynchronous: a run a test started may finish while
    the next teardown truncates every table. Its transaction writes ``JobRun`` and, through the
    statement triggers, ``RunCounter``; TRUNCATE locks the tables in its own order, so the two can
    deadlock and PostgreSQL aborts one of them. When the flush is the one aborted, its transaction
    rolled back whole, so running it again once the worker's write is done is exact.
    """
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self: DatabaseOperations, sql_list: list[str]) -> None:
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                return original(self, sql_list)
            except OperationalError as exc:
                if attempt == FLUSH_ATTEMPTS or not isinstance(
                    exc.__cause__, psycopg.errors.DeadlockDetected
                ):
                    raise
                time.sleep(0.2 * attempt)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


def service_env(**extra: str) -> dict[str, str]:
    """The environment for a child process of the project, on the test profile."""
    profile = os.environ.get("ORCHESTRATOR_PROFILE", "test")
    env = {**os.environ, "ORCHESTRATOR_PROFILE": profile, "PYTHONUNBUFFERED": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(extra)
    return env


class WorkerProcess:
    """A real ``celery worker`` process, started for the tests and stopped after them."""

    def __init__(self, queues: str = "default", concurrency: int = 2) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@%h"
        profile = os.environ.get("ORCHESTRATOR_PROFILE", "test")
        self.log = ROOT / ".data" / profile / f"worker-{self.name.split('@')[0]}.log"
        argv = [
            sys.executable, "-m", "celery", "-A", "project", "worker",
            "--loglevel=INFO", f"--hostname={self.name}", f"--queues={queues}",
            f"--concurrency={concurrency}", "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=service_env(), stdout=self.handle, stderr=subprocess.STDOUT
        )

    def wait_ready(self, app: object, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        hostname = self.name.replace("%h", os.uname().nodename)
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early; see {self.log}")
            replies = app.control.ping(destination=[hostname], timeout=1.0)
            if replies:
                self.hostname = hostname
                return
        raise RuntimeError(f"worker did not answer a ping within {timeout}s; see {self.log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.handle.close()


@pytest.fixture(scope="session")
def celery_app():
    from project.celery import app

    return app


@pytest.fixture(scope="session")
def celery_worker(celery_app) -> Iterator[WorkerProcess]:
    """One real worker for the session, consuming the default queues of the test Redis."""
    celery_app.control.purge()
    worker = WorkerProcess()
    try:
        worker.wait_ready(celery_app)
        yield worker
    finally:
        worker.stop()
