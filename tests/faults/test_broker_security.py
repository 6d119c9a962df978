"""The broker's two locks: no client without the password, no pickle through the door.

A pickle pushed straight into a queue (in kombu's real message envelope, content type
``application/x-python-serialize``) must be refused by the worker, which only accepts JSON: nothing
is unpickled (the payload would create a file if it were) and the task it names does not run. The
test then sends a JSON job on the same queue and sees it run, so "nothing ran" cannot be a worker
that was not listening.
"""

from __future__ import annotations

import base64
import json
import pickle
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from tests.faults.processes import PROFILE_DIR, Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]


class _Trap:
    """Unpickling this creates ``path``: the proof that someone deserialized it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.path), "w"))


def pickle_envelope(queue: str, trap: Path) -> bytes:
    """A Celery protocol-2 task message, pickled, wrapped as kombu's Redis transport stores it."""
    task_id = str(uuid.uuid4())
    body = pickle.dumps(([_Trap(trap)], {"key": "pickled"}, {"callbacks": None}))
    envelope = {
        "body": base64.b64encode(body).decode(),
        "content-encoding": "binary",
        "content-type": "application/x-python-serialize",
        "headers": {
            "lang": "py",
            "task": "tests.faults.jobs.effect",
            "id": task_id,
            "root_id": task_id,
            "parent_id": None,
            "group": None,
            "retries": 0,
            "eta": None,
            "expires": None,
            "argsrepr": "()",
            "kwargsrepr": "{}",
            "origin": "attacker",
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(envelope).encode()


def test_a_pickle_pushed_into_redis_is_refused(ledger: Any, celery_app: Any) -> None:
    trap = PROFILE_DIR / f"pickle-trap-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    worker = Worker(queues="faults-pickle", concurrency=1)
    try:
        worker.wait_ready(celery_app)
        client.lpush("faults-pickle", pickle_envelope("faults-pickle", trap))
        deadline = time.monotonic() + 20
        while client.llen("faults-pickle") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert client.llen("faults-pickle") == 0, "the worker never took the message"
        time.sleep(2)
        celery_app.send_task(
            "tests.faults.jobs.effect", kwargs={"key": "json-after-pickle"}, queue="faults-pickle"
        )
        deadline = time.monotonic() + 20
        while not ledger.effects("json-after-pickle") and time.monotonic() < deadline:
            time.sleep(0.2)
        output = worker.output()
    finally:
        worker.stop()
        client.close()

    assert not trap.exists(), "the pickle was deserialized"
    assert ledger.effects("pickled") == []
    assert ledger.attempts("pickled") == {}
    assert ledger.attempts("") == {"json-after-pickle": 1}
    assert "Refusing to deserialize untrusted content of type pickle" in output
    assert len(ledger.effects("json-after-pickle")) == 1


def test_redis_refuses_clients_without_the_password() -> None:
    url = redis.connection.parse_url(settings.CELERY_BROKER_URL)
    anonymous = redis.Redis(host=url["host"], port=url["port"], socket_connect_timeout=2)
    with pytest.raises(redis.AuthenticationError):
        anonymous.ping()
    wrong = redis.Redis(host=url["host"], port=url["port"], password="not-the-password")
    with pytest.raises(redis.AuthenticationError):
        wrong.ping()
    assert redis.Redis.from_url(settings.CELERY_BROKER_URL).ping() is True
