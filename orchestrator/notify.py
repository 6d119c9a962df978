"""Telling people about a job: failed for good, missed runs, recovery; by e-mail and webhook.

An engine reports an event with ``Event`` (its run history is where it knows one happened: for
Celery, the run signals and beat's missed slots); the delivery happens in a task of its own,
never in the run that caused it, and reads whom to tell from the *registry* (the applied
manifest), not from the message, so a forged message can at most re-send a known event to a
known address.

Each (job, event, run, channel) is one ``Notification`` row: the ledger makes delivery
exactly-once (a retried or redelivered delivery finds its row sent) and lets a flapping job be
rate-limited (``ORCHESTRATOR_NOTIFY_MAX`` per ``ORCHESTRATOR_NOTIFY_WINDOW`` seconds per job;
the rest are recorded ``suppressed``).

The webhook is a JSON POST of ``payload`` (compact, sorted keys), with
``X-Orchestrator-Signature: sha256=<hex HMAC-SHA256 of the exact body>`` keyed by the secret in
the environment variable the manifest names (``settings.ORCHESTRATOR_NOTIFY_SECRETS``), and
``X-Orchestrator-Event``. The secret and the signature are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from orchestrator.errors import OrchestratorError
from orchestrator.models import ManagedJob, Notification
from orchestrator.specs import Notify

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Orchestrator-Signature"
EVENT_HEADER = "X-Orchestrator-Event"
MESSAGE_LIMIT = 1000
#: the ledger's statuses (``Notification.Status``)
PENDING, SENT, FAILED, SUPPRESSED = "pending", "sent", "failed", "suppressed"
EVENT_WORDS = {
    "failed_final": "failed for good",
    "missed": "missed a run",
    "recovered": "recovered",
}


class DeliveryFailed(OrchestratorError):
    """A webhook did not take the notification; the delivery task retries it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """Something to tell about one run (or missed slot) of a job: JSON in a task's message."""

    job: str
    event: str
    run_id: str
    status: str = ""
    message: str = ""
    at: str = ""

    def payload(self) -> dict[str, object]:
        return {**asdict(self), "message": self.message[:MESSAGE_LIMIT]}

    @classmethod
    def of(cls, data: Mapping[str, object]) -> Event:
        return cls(**{key: str(data.get(key) or "") for key in cls.__dataclass_fields__})


def notify_of(job: str) -> Notify | None:
    """The job's applied ``notify``, or None (not managed, or nobody to tell)."""
    definition = ManagedJob.objects.filter(name=job).values_list("definition", flat=True).first()
    return Notify.from_dict(definition.get("notify")) if definition else None


def wanted(job: str, event: str) -> bool:
    """Whether the job's applied manifest asks to be told about ``event``."""
    notify = notify_of(job)
    return notify is not None and event in notify.events


def body_of(event: Event) -> bytes:
    """The exact bytes POSTed and signed."""
    return json.dumps(event.payload(), sort_keys=True, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the body with the shared secret (a receiver computes
    the same over the raw body and compares with ``hmac.compare_digest``)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(event: Event) -> list[str]:
    """Send ``event`` on each channel the job's applied ``notify`` names, once each.

    Returns the channels sent now. Raises ``DeliveryFailed`` when the webhook refused it, so
    the caller retries (with backoff); a channel already sent is never sent again.
    """
    notify = notify_of(event.job)
    if notify is None or event.event not in notify.events:
        return []
    sent = []
    if notify.email and _claim(event, "email"):
        _send_email(event, notify)
        sent.append("email")
    if notify.webhook and _claim(event, "webhook") and _send_webhook(event, notify):
        sent.append("webhook")
    return sent


def _claim(event: Event, channel: str) -> bool:
    """Whether this channel still has to be sent: creates the ledger row on first sight,
    suppressing it past the job's rate limit."""
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update()
            .filter(job=event.job, event=event.event, run_id=event.run_id, channel=channel)
            .first()
        )
        if row is None:
            since = timezone.now() - timedelta(seconds=settings.ORCHESTRATOR_NOTIFY_WINDOW)
            recent = Notification.objects.filter(
                job=event.job, created_at__gte=since, status=SENT
            ).count()
            limited = recent >= settings.ORCHESTRATOR_NOTIFY_MAX
            try:
                with transaction.atomic():
                    row = Notification.objects.create(
                        job=event.job,
                        event=event.event,
                        run_id=event.run_id,
                        channel=channel,
                        status=SUPPRESSED if limited else PENDING,
                        error=f"rate limit: {recent} sent in the last "
                        f"{settings.ORCHESTRATOR_NOTIFY_WINDOW} s"
                        if limited
                        else "",
                    )
            except IntegrityError:  # a concurrent delivery of the same event claimed it
                return False
            if limited:
                logger.warning(
                    "notification suppressed by the rate limit",
                    extra={"job": event.job, "event": event.event, "channel": channel},
                )
        return row.status == PENDING


def _mark(event: Event, channel: str, status: str, error: str = "") -> None:
    Notification.objects.filter(
        job=event.job, event=event.event, run_id=event.run_id, channel=channel
    ).update(
        status=status,
        error=error[:MESSAGE_LIMIT],
        sent_at=timezone.now() if status == SENT else None,
    )


def _send_email(event: Event, notify: Notify) -> None:
    words = EVENT_WORDS.get(event.event, event.event)
    subject = f"[orchestrator] {event.job} {words}"
    text = (
        f"Job {event.job} {words}.\n\nRun: {event.run_id}\nStatus: {event.status}\n"
        f"At: {event.at}\n\n{event.message[:MESSAGE_LIMIT]}\n"
    )
    Notification.objects.filter(
        job=event.job, event=event.event, run_id=event.run_id, channel="email"
    ).update(attempts=F("attempts") + 1)
    try:
        send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, list(notify.email))
    except (smtplib.SMTPException, OSError) as error:
        # The mail server is down or refused it: the row stays pending and the task retries,
        # as for a webhook; the addresses are the manifest's, the error is the server's.
        reason = f"{type(error).__name__}: {error}"
        _mark(event, "email", PENDING, reason)
        logger.warning(
            "e-mail not taken; will retry",
            extra={"job": event.job, "event": event.event, "error": reason},
        )
        raise DeliveryFailed(f"the mail server did not take it: {reason}", job=event.job) from error
    _mark(event, "email", SENT)
    logger.info("notification e-mailed", extra={"job": event.job, "event": event.event})


def _send_webhook(event: Event, notify: Notify) -> bool:
    """POST the signed event; False when it cannot be sent at all (recorded failed)."""
    assert notify.webhook is not None
    host = urlsplit(notify.webhook).netloc  # logged instead of the URL (it may carry a token)
    secret = settings.ORCHESTRATOR_NOTIFY_SECRETS.get(notify.secret_env or "")
    if not secret:
        message = f"the environment variable {notify.secret_env} is not set: nothing was sent"
        _mark(event, "webhook", FAILED, message)
        logger.error("webhook not sent: %s", message, extra={"job": event.job, "host": host})
        return False
    if urlsplit(notify.webhook).scheme not in ("http", "https"):  # validation said so too
        _mark(event, "webhook", FAILED, "not an http(s) URL")
        return False
    body = body_of(event)
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked just above
        notify.webhook,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, body),
            EVENT_HEADER: event.event,
            "User-Agent": "orchestrator-notify",
        },
    )
    Notification.objects.filter(
        job=event.job, event=event.event, run_id=event.run_id, channel="webhook"
    ).update(attempts=F("attempts") + 1)
    try:
        with urllib.request.urlopen(  # noqa: S310 - http(s) only, checked above
            request, timeout=settings.ORCHESTRATOR_NOTIFY_TIMEOUT
        ) as response:
            response.read(1024)
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
        _mark(event, "webhook", PENDING, reason)
        logger.warning(
            "webhook not taken; will retry",
            extra={"job": event.job, "event": event.event, "host": host, "error": reason},
        )
        raise DeliveryFailed(f"webhook {host} did not take it: {reason}", job=event.job) from error
    _mark(event, "webhook", SENT)
    logger.info("notification posted", extra={"job": event.job, "event": event.event, "host": host})
    return True


def give_up(event: Event, reason: str) -> None:
    """The last attempt failed: every channel of the event still pending is recorded failed
    (never sent)."""
    Notification.objects.filter(
        job=event.job, event=event.event, run_id=event.run_id, status=PENDING
    ).update(status=FAILED, error=reason[:MESSAGE_LIMIT])
    logger.error("webhook notification given up", extra={"job": event.job, "event": event.event})
