"""``orchestrator.notify`` in-process on the real database: e-mail through Django's locmem
backend, the once-per-event ledger, the per-job rate limit, and a webhook that is down or has
no secret. (A real worker posting to a real HTTP server: test_notify_delivery.py.)"""

from __future__ import annotations

import logging
import socket

import pytest
from django.core import mail

from orchestrator import reconcile
from orchestrator.models import Notification
from orchestrator.notify import DeliveryFailed, Event, deliver, give_up
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = pytest.mark.django_db(transaction=True)

SECRET_VARIABLE = "ORCHESTRATOR_NOTIFY_SECRET_UNIT"


@pytest.fixture(autouse=True)
def empty_engines():
    clear_engines()
    yield
    clear_engines()


def apply(notify: str) -> None:
    reconcile.apply(
        placed_from(
            f"""
            version: 1
            jobs:
              told:
                schedule: "@daily"
                sql: SELECT 1
                notify: {notify}
            """
        )
    )


def event(run_id: str, kind: str = "failed_final") -> Event:
    return Event(job="told", event=kind, run_id=run_id, status=kind, message="boom", at="now")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_notify__email_once_per_event_and_only_for_chosen_events() -> None:
    """An event is e-mailed once however often it is delivered; an event the job did not
    choose is not sent at all."""
    apply("{email: [ops@example.com, oncall@example.com], on: [failed_final]}")
    assert deliver(event("r1")) == ["email"]
    assert deliver(event("r1")) == []
    assert deliver(event("r2", "recovered")) == []
    [sent] = mail.outbox
    assert sent.to == ["ops@example.com", "oncall@example.com"]
    assert sent.subject == "[orchestrator] told failed for good"
    assert "boom" in sent.body


def test_notify__rate_limited_per_job(settings) -> None:
    """Past ORCHESTRATOR_NOTIFY_MAX in the window, notifications are recorded as suppressed
    and not sent: a flapping job cannot flood anyone."""
    settings.ORCHESTRATOR_NOTIFY_MAX = 2
    apply("{email: [ops@example.com]}")
    for run_id in ("r1", "r2", "r3", "r4"):
        deliver(event(run_id))
    assert len(mail.outbox) == 2
    suppressed = Notification.objects.filter(job="told", status="suppressed")
    assert sorted(row.run_id for row in suppressed) == ["r3", "r4"]
    assert "rate limit" in suppressed[0].error


def test_notify__webhook_down_is_retried_then_given_up(settings, caplog) -> None:
    """A webhook nobody answers raises DeliveryFailed (the task retries it) and stays pending;
    giving up records it failed. Neither the secret nor the signature is ever logged."""
    secret = "never-in-a-log"
    settings.ORCHESTRATOR_NOTIFY_SECRETS = {SECRET_VARIABLE: secret}
    url = f"http://127.0.0.1:{free_port()}/hook"
    apply(f'{{webhook: {{url: "{url}", secret_env: {SECRET_VARIABLE}}}}}')
    caplog.set_level(logging.DEBUG)
    with pytest.raises(DeliveryFailed, match="did not take it"):
        deliver(event("r1"))
    row = Notification.objects.get(job="told", run_id="r1")
    assert (row.status, row.attempts) == ("pending", 1)
    with pytest.raises(DeliveryFailed):
        deliver(event("r1"))  # the retry tries again: the row is still pending
    give_up(event("r1"), "five attempts")
    assert Notification.objects.get(job="told", run_id="r1").status == "failed"
    assert secret not in caplog.text
    assert "sha256=" not in caplog.text


def test_notify__mail_server_down_is_retried_then_given_up(settings) -> None:
    """An SMTP server that refuses the connection raises DeliveryFailed (the task retries it)
    and the e-mail stays pending with the server's error; giving up records it failed."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 5
    apply("{email: [ops@example.com]}")
    with pytest.raises(DeliveryFailed, match="mail server did not take it"):
        deliver(event("r1"))
    row = Notification.objects.get(job="told", run_id="r1", channel="email")
    assert (row.status, row.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in row.error
    with pytest.raises(DeliveryFailed):
        deliver(event("r1"))  # the retry sends again: the row is still pending
    give_up(event("r1"), "five attempts")
    row.refresh_from_db()
    assert (row.status, row.attempts, row.error) == ("failed", 2, "five attempts")


def test_notify__webhook_without_its_secret_sends_nothing(settings) -> None:
    """The variable the manifest names is not set: nothing is posted unsigned; the ledger
    says why."""
    settings.ORCHESTRATOR_NOTIFY_SECRETS = {}
    apply(f'{{webhook: {{url: "http://127.0.0.1:9/hook", secret_env: {SECRET_VARIABLE}}}}}')
    assert deliver(event("r1")) == []
    row = Notification.objects.get(job="told", run_id="r1")
    assert row.status == "failed"
    assert f"{SECRET_VARIABLE} is not set" in row.error
