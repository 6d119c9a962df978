"""SIGKILL a worker's pool child 10 times under 50 idempotent jobs: 50 of 50 effects, none twice.

With ``acks_late`` + ``task_reject_on_worker_lost`` (project settings) a job whose process dies is
put back on the queue and run again; with an idempotent effect, running again is harmless. Each
kill targets a child that is running a job right then, so redelivery really happens. Kept short:
50 jobs of 0.4 s on 2 processes take ~10 s plus the redeliveries.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from tests.faults.processes import Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(150)]

JOBS = 50
KILLS = 10


def test_fifty_idempotent_jobs_survive_ten_child_kills(ledger: Any, celery_app: Any) -> None:
    worker = Worker(queues="faults-kill", concurrency=2)
    try:
        worker.wait_ready(celery_app)
        for number in range(JOBS):
            celery_app.send_task(
                "tests.faults.jobs.effect",
                kwargs={"key": f"kill-{number:02d}", "work_seconds": 0.4},
                queue="faults-kill",
            )
        inspect = celery_app.control.inspect(destination=[worker.hostname], timeout=1, limit=1)
        killed: list[int] = []
        deadline = time.monotonic() + 60
        while len(killed) < KILLS and time.monotonic() < deadline:
            active = (inspect.active() or {}).get(worker.hostname, [])
            pids = [task["worker_pid"] for task in active if task.get("worker_pid")]
            pids = [pid for pid in pids if pid not in killed]
            if pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                time.sleep(0.8)  # let the pool replace the child and pick work up again
            else:
                time.sleep(0.1)
        assert len(killed) == KILLS, f"only {len(killed)} kills landed on a running job"

        deadline = time.monotonic() + 90
        while len(ledger.effects("kill-")) < JOBS and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # any stray redelivery would show up as an extra attempt now
    finally:
        worker.stop()

    effects = ledger.effects("kill-")
    attempts = ledger.attempts("kill-")
    assert [key for key, _slot, _at in effects] == [f"kill-{n:02d}" for n in range(JOBS)]
    rerun = {key: count for key, count in attempts.items() if count > 1}
    # Every kill hit a running job, which ran again; no job that finished ran again.
    assert 1 <= len(rerun) <= KILLS, rerun
    assert sum(attempts.values()) <= JOBS + KILLS, attempts
