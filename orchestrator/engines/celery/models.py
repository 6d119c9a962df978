"""Models of the application wing.

``Worker`` has no table: workers live in Celery, not in the database. The model exists so the
admin can list a "Workers" page and so its permissions are real, assignable Django permissions:
``view_worker`` to see the live fleet, ``drain_worker`` to drain and resume workers,
``scale_worker`` to grow or shrink a worker's pool.
``BeatDue`` is beat's index of when each periodic task is next due.
"""

from __future__ import annotations

from django.db import models


class Worker(models.Model):
    hostname = models.CharField(max_length=255, primary_key=True)

    class Meta:
        managed = False
        db_table = "celery_engine_worker_unmanaged"
        default_permissions = ("view",)
        permissions = [
            ("drain_worker", "Can drain and resume Celery workers"),
            ("scale_worker", "Can grow and shrink a Celery worker's pool"),
        ]
        verbose_name = "worker"
        verbose_name_plural = "workers"

    def __str__(self) -> str:
        return self.hostname


class BeatDue(models.Model):
    """The next due instant of one django-celery-beat periodic task, in an indexed column.

    Kept by the due-time beat scheduler (``due_scheduler``) so that beat reads only what is
    due instead of every schedule. PostgreSQL triggers on the periodic task and schedule tables
    (``sql/0002_beat_due.sql``) mark a row ``dirty`` with a fresh ``change_seq`` and
    clear ``due_at`` in the same transaction as any change, whoever makes it (admin, ORM, bulk
    writes, hand-written SQL), and NOTIFY the scheduler; the scheduler computes ``due_at`` with
    Celery's own schedule classes and clears ``dirty`` only if ``change_seq`` is still the one it
    read, so no change is ever lost, even two within the same second. No foreign key: a trigger
    deletes the row with its task.
    """

    task_id = models.IntegerField(primary_key=True, help_text="django_celery_beat_periodictask.id")
    due_at = models.DateTimeField(null=True, blank=True, help_text="null: never due (or dirty)")
    dirty = models.BooleanField(default=True, help_text="changed since due_at was computed")
    change_seq = models.BigIntegerField(default=0, help_text="bumped by every change")
    error = models.TextField(blank=True, default="", help_text="why due_at could not be computed")
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["due_at"],
                name="celery_beat_due_at",
                condition=models.Q(due_at__isnull=False),
            ),
            models.Index(
                fields=["change_seq"],
                name="celery_beat_dirty",
                condition=models.Q(dirty=True),
            ),
        ]

    def __str__(self) -> str:
        return f"periodic task {self.task_id} due {self.due_at}"
