"""Helpers for "validate means it runs": the CLI in-process, a beat tick, and state snapshots.

Every check goes through what an operator uses (``manage.py jobs validate|apply|plan``) and
what runs the schedule (the project's own beat scheduler class, from settings), on the real
database, inside the test's transaction.
"""

from __future__ import annotations

from importlib import import_module
from unittest import mock

from django.conf import settings

from tests.integration.cli_helpers import jobs
from tests.integration.reconcile_helpers import snapshot

__all__ = ("jobs", "snapshot", "tick_beat")


def beat_scheduler_class() -> type:
    """The scheduler class beat runs with (``settings.CELERY_BEAT_SCHEDULER``)."""
    module, _, name = settings.CELERY_BEAT_SCHEDULER.partition(":")
    return getattr(import_module(module), name)


def tick_beat() -> int:
    """Start the project's beat scheduler, tick it once and read every entry's next run.

    A tick reads every periodic task into a schedule entry and asks each one ``is_due`` (that
    is where an instant beat cannot hold used to kill it). The entries are then read once more
    directly, so the check holds even when another beat holds the leader lock and this one
    stands by. Returns the number of entries read.
    """
    from project.celery import app

    # django-celery-beat calls close_old_connections() on each tick, connection hygiene for a
    # long-running beat; inside the test's transaction it would close the test's connection
    # (Django drops a connection whose autocommit differs from its settings). Nothing else of
    # the scheduler is replaced.
    with mock.patch("django_celery_beat.schedulers.close_old_connections", return_value=None):
        scheduler = beat_scheduler_class()(app=app)
        try:
            scheduler.tick()
            entries = list(scheduler.schedule.values())
            for entry in entries:
                entry.is_due()
            return len(entries)
        finally:
            scheduler.close()
