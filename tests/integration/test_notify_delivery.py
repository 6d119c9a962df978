"""Notifications delivered by a real worker: the webhook of a job that fails for good and
recovers, and the missed-run check's webhook per missed slot, each posted to a local HTTP
server and checked against the ledger (``Notification``).

The worker consumes a queue of its own (``notify-delivery``) and signs webhooks with a secret
from its environment, as a deployed worker would.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from orchestrator import operations, reconcile
from orchestrator import runs as runs_module
from orchestrator.models import Notification
from tests.faults.processes import Worker
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

QUEUE = "notify-delivery"


@pytest.fixture(scope="module")
def worker(django_db_blocker: Any, celery_app: Any) -> Iterator[Worker]:
    """One worker for the module, on its own queue, holding the webhook secret."""
    with django_db_blocker.unblock():
        clear_engines()
    os.environ[SECRET_VARIABLE] = SECRET  # the worker process inherits it
    process = Worker(QUEUE, concurrency=2)
    try:
        process.wait_ready(celery_app)
        yield process
    finally:
        process.stop()
        os.environ.pop(SECRET_VARIABLE, None)
        with django_db_blocker.unblock():
            clear_engines()


@pytest.fixture
def sequence() -> Iterator[str]:
    """A sequence the job's SQL may use (SQL jobs run as the jobs role)."""
    name = f"seq_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE {name}")
        cursor.execute(
            f"GRANT USAGE, SELECT ON SEQUENCE {name} TO {settings.ORCHESTRATOR_JOBS_ROLE}"
        )
    yield name
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SEQUENCE {name}")


SECRET_VARIABLE = "ORCHESTRATOR_NOTIFY_SECRET_DELIVERY_TESTS"
SECRET = "not-a-real-secret-only-for-tests"


class Hook(ThreadingHTTPServer):
    """A local webhook receiver: records each POST's body and headers."""

    def __init__(self) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((body, dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _ in self.received]


def test_notify__webhook_once_per_failed_for_good_run_and_once_per_recovery(
    worker: Worker, sequence: str
) -> None:
    """A job retried once that fails both attempts posts one signed ``failed_final`` (not one
    per attempt); its next run succeeds and posts one ``recovered``; the run after that posts
    nothing. The signature is the HMAC-SHA256 of the exact body with the shared secret."""
    hook = Hook()
    try:
        reconcile.apply(
            placed_from(
                f"""
            version: 1
            jobs:
              flaky-notify:
                schedule: "@daily"
                target: celery
                queue: {QUEUE}
                retries: {{max: 1, backoff: 0}}
                sql: SELECT 1 / (CASE WHEN nextval('{sequence}') < 3 THEN 0 ELSE 1 END)
                notify:
                  webhook: {{url: "{hook.url}", secret_env: {SECRET_VARIABLE}}}
            """
            )
        )
        outcomes = []
        for expected in (1, 2, 2):
            run_id = operations.run_now("flaky-notify")
            outcomes.append(runs_module.follow(run_id, timeout=30).status)
            wait_for(lambda n=expected: len(hook.received) >= n, 15, f"{expected} webhook(s)")
        time.sleep(1)  # a duplicate would have arrived by now
    finally:
        clear_engines()
        hook.shutdown()
    assert outcomes == ["failed_final", "succeeded", "succeeded"]
    assert [event["event"] for event in hook.events()] == ["failed_final", "recovered"]
    failed, recovered = hook.events()
    assert "division by zero" in failed["message"]
    assert recovered["status"] == "succeeded"
    for body, headers in hook.received:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Orchestrator-Signature"], expected)
    assert Notification.objects.filter(job="flaky-notify", status="sent").count() == 2


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_notify__missed_run_check_posts_each_missed_slot_once_through_the_worker(
    worker: Worker,
) -> None:
    """The upkeep task ``orchestrator.check_missed_runs`` queues one ``orchestrator.notify``
    per slot nothing ran in; the worker posts each once (its run id names the slot), and the
    next check queues nothing."""
    from django.utils import timezone

    from orchestrator.engines.celery.notify_task import check_missed_runs
    from orchestrator.missed_notify import slot_run_id
    from orchestrator.models import ManagedJob
    from orchestrator.status import job_status

    hook = Hook()
    try:
        reconcile.apply(
            placed_from(
                f"""
            version: 1
            jobs:
              hourly-missed:
                schedule: "0 * * * *"
                queue: {QUEUE}
                task: orchestrator.ping
                notify:
                  on: [missed]
                  webhook: {{url: "{hook.url}", secret_env: {SECRET_VARIABLE}}}
            """
            )
        )
        ManagedJob.objects.filter(name="hourly-missed").update(
            applied_at=timezone.now() - timedelta(hours=3, minutes=5)
        )
        found = job_status("hourly-missed")
        assert found is not None
        assert found.missed is not None
        slots = found.missed.instants
        assert 3 <= len(slots) <= 4  # 4 when the check's clock is past the hour's grace
        assert check_missed_runs() == len(slots)
        wait_for(lambda: len(hook.received) >= len(slots), 15, "a webhook per slot")
        sent = Notification.objects.filter(job="hourly-missed", status="sent")
        wait_for(lambda: sent.count() == len(slots), 5, "a sent row per slot")
        assert check_missed_runs() == 0
        time.sleep(0.5)  # a duplicate would have arrived by now
    finally:
        clear_engines()
        hook.shutdown()
    events = hook.events()
    assert {event["event"] for event in events} == {"missed"}
    assert sorted(event["run_id"] for event in events) == sorted(map(slot_run_id, slots))
    assert sorted(event["at"] for event in events) == sorted(s.isoformat() for s in slots)
