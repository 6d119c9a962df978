"""Missed slots become ``missed`` notifications (``orchestrator.missed_notify``) on the real
database: one e-mail per slot the status model counts as missed, never twice, none for a
paused job or a job that did not ask for ``missed``, at most ``ORCHESTRATOR_NOTIFY_MAX`` new
slots per job per check. E-mail goes through Django's locmem backend."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from orchestrator import operations, reconcile
from orchestrator.missed_notify import check_missed, slot_run_id
from orchestrator.models import JobRun, ManagedJob, Notification, RunStatus
from orchestrator.status import job_status
from tests.integration.reconcile_helpers import clear_engines, placed_from

pytestmark = pytest.mark.django_db

MANIFEST = """
version: 1
jobs:
  told:
    schedule: "* * * * *"
    task: orchestrator.ping
    notify: {email: [ops@example.com], on: [missed]}
  paused-told:
    schedule: "* * * * *"
    task: orchestrator.ping
    notify: {email: [ops@example.com], on: [missed]}
  not-asked:
    schedule: "* * * * *"
    task: orchestrator.ping
    notify: {email: [ops@example.com], on: [failed_final, recovered]}
"""


@pytest.fixture(autouse=True)
def silent_jobs() -> Iterator[None]:
    """The three every-minute jobs, applied as if 12 minutes ago; no beat runs in the tests, so
    every slot since is missed."""
    clear_engines()
    reconcile.apply(placed_from(MANIFEST))
    ManagedJob.objects.update(applied_at=timezone.now() - timedelta(minutes=12))
    operations.set_paused("paused-told", True)
    yield
    clear_engines()


def test_missed_notify__one_email_per_missed_slot_and_never_twice(settings) -> None:
    """Each slot the status model counts as missed is e-mailed once, with the slot's instant as
    its run id; a second check sends nothing new; the paused job and the job whose notify does
    not name ``missed`` send nothing."""
    settings.ORCHESTRATOR_NOTIFY_MAX = 100
    now = timezone.now()
    found = job_status("told", now=now)
    assert found is not None
    assert found.missed is not None
    slots = found.missed.instants
    assert 9 <= len(slots) <= 12
    assert check_missed(now=now) == len(slots)
    assert len(mail.outbox) == len(slots)
    assert {m.subject for m in mail.outbox} == {"[orchestrator] told missed a run"}
    rows = Notification.objects.filter(event="missed")
    assert {row.job for row in rows} == {"told"}
    assert sorted(row.run_id for row in rows) == sorted(slot_run_id(slot) for slot in slots)
    assert {row.status for row in rows} == {"sent"}
    assert check_missed(now=now) == 0
    assert len(mail.outbox) == len(slots)


def test_missed_notify__bounded_per_job_per_check(settings) -> None:
    """At most ``ORCHESTRATOR_NOTIFY_MAX`` slots per job per check, newest first; the next
    check takes the following ones (recorded ``suppressed`` by the rate limit, not sent)."""
    settings.ORCHESTRATOR_NOTIFY_MAX = 2
    now = timezone.now()
    found = job_status("told", now=now)
    assert found is not None
    assert found.missed is not None
    newest = found.missed.instants
    assert check_missed(now=now) == 2
    assert len(mail.outbox) == 2
    assert sorted(Notification.objects.values_list("run_id", flat=True)) == sorted(
        slot_run_id(slot) for slot in newest[:2]
    )
    assert check_missed(now=now) == 2
    assert len(mail.outbox) == 2
    later = Notification.objects.filter(run_id__in=[slot_run_id(s) for s in newest[2:4]])
    assert {row.status for row in later} == {"suppressed"}


def test_missed_notify__slot_beat_already_told_is_skipped(settings) -> None:
    """A slot beat claimed and could not send has its own ``missed`` row (and notification):
    the check does not tell it a second time."""
    settings.ORCHESTRATOR_NOTIFY_MAX = 100
    now = timezone.now()
    found = job_status("told", now=now)
    assert found is not None
    assert found.missed is not None
    slots = found.missed.instants
    JobRun.objects.create(
        job="told",
        engine="celery",
        engine_run_id="missed:1:beat",
        status=RunStatus.MISSED,
        manual=False,
        scheduled_for=slots[0] + timedelta(seconds=1),
        finished=now,
    )
    assert check_missed(now=now) == len(slots) - 1
    told = set(Notification.objects.values_list("run_id", flat=True))
    assert slot_run_id(slots[0]) not in told
    assert slot_run_id(slots[1]) in told
