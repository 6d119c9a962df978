"""Fixtures of the fault tests: the effect ledger, this profile's Redis, and cleanup.

The fault tests commit for real (other processes must see their rows), so they use the database
outside pytest-django's rolled-back transactions and clean up what they create themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu.pools
import pytest
import redis
from django.conf import settings
from django.db import connection

from tests.faults.jobs import LEDGER_SQL
from tests.faults.processes import PROFILE_DIR


@pytest.fixture
def db_committed(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """Database access in autocommit, visible to every process (no test transaction)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def ledger(db_committed: None) -> Iterator[Any]:
    """Empty ``fault_effects``/``fault_attempts`` tables; dropped afterwards."""
    with connection.cursor() as cursor:
        cursor.execute(LEDGER_SQL)
        cursor.execute("TRUNCATE fault_effects, fault_attempts")
    yield Ledger()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS fault_effects, fault_attempts")


class Ledger:
    """Reads of the effect ledger."""

    def effects(self, prefix: str) -> list[tuple[str, Any, Any]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT key, slot, started_at FROM fault_effects WHERE key LIKE %s ORDER BY key",
                [prefix + "%"],
            )
            return list(cursor.fetchall())

    def attempts(self, prefix: str) -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT key, attempts FROM fault_attempts WHERE key LIKE %s", [prefix + "%"]
            )
            return dict(cursor.fetchall())


class RedisServer:
    """This profile's Redis, to stop and start for real (SIGTERM, then its own config)."""

    conf = PROFILE_DIR / "redis" / "redis.conf"
    pidfile = PROFILE_DIR / "redis" / "redis.pid"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2)

    def answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        pid = int(Path(self.pidfile).read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not stop")
            time.sleep(0.2)

    def start(self) -> None:
        if self.answers():
            return
        subprocess.run(["redis-server", str(self.conf)], check=True, timeout=20)
        deadline = time.monotonic() + 20
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError("Redis did not come back")
            time.sleep(0.2)


@pytest.fixture
def redis_server(celery_app: Any) -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        yield server
    finally:
        server.start()  # never leave the profile without its broker
        # This process's pooled broker connections point at the Redis that was stopped: drop
        # them, so later tests in the session connect afresh instead of failing once.
        kombu.pools.reset()
        celery_app._after_fork()  # what Celery itself does to forget inherited connections
