"""Test-only Celery tasks, loaded by the test workers with ``--include tests.faults.jobs``.

Each writes its *effect* idempotently (``INSERT .. ON CONFLICT DO NOTHING`` on a key) and counts
every *attempt* separately, so a test can tell "ran twice" (attempts > 1) from "took effect twice"
(impossible by the key) and from "never took effect" (no row).
"""

from __future__ import annotations

import time

from celery import shared_task
from django.db import connection

from orchestrator.engines.celery.beat import scheduled_at

LEDGER_SQL = """
CREATE TABLE IF NOT EXISTS fault_effects (
    key text PRIMARY KEY,
    slot timestamptz,
    started_at timestamptz NOT NULL,
    done_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS fault_attempts (
    key text PRIMARY KEY,
    attempts integer NOT NULL DEFAULT 1
);
"""


def _record(key: str, slot: object, started: float, work_seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fault_attempts (key) VALUES (%s) "
            "ON CONFLICT (key) DO UPDATE SET attempts = fault_attempts.attempts + 1",
            [key],
        )
    time.sleep(work_seconds)  # the window in which a SIGKILL interrupts the job
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO fault_effects (key, slot, started_at) "
            "VALUES (%s, %s, to_timestamp(%s)) ON CONFLICT (key) DO NOTHING",
            [key, slot, started],
        )


@shared_task(name="tests.faults.jobs.effect", bind=True)
def effect(self, key: str, work_seconds: float = 0.0) -> str:
    """An idempotent job: its effect is the row ``key``."""
    _record(key, None, time.time(), work_seconds)
    return key


@shared_task(name="tests.faults.jobs.record_slot", bind=True)
def record_slot(self, job: str) -> str:
    """A beat-dispatched job: its effect is the row ``job@slot``, slot from the message header."""
    started = time.time()
    slot = scheduled_at(self.request)
    key = f"{job}@{slot.isoformat() if slot else 'none'}"
    _record(key, slot, started, 0.0)
    return key


@shared_task(name="tests.faults.jobs.sleep")
def sleep(seconds: float) -> float:
    """Hold a pool process busy (drain and scale tests)."""
    time.sleep(seconds)
    return seconds
