"""Models of the application wing.

``Worker`` has no table: workers live in Celery, not in the database. The model exists so the
admin can list a "Workers" page and so its permissions are real, assignable Django permissions:
``view_worker`` to see the live fleet, ``drain_worker`` to drain and resume workers.
"""

from __future__ import annotations

from django.db import models


class Worker(models.Model):
    hostname = models.CharField(max_length=255, primary_key=True)

    class Meta:
        managed = False
        db_table = "tasks_worker_unmanaged"
        default_permissions = ("view",)
        permissions = [("drain_worker", "Can drain and resume Celery workers")]
        verbose_name = "worker"
        verbose_name_plural = "workers"

    def __str__(self) -> str:
        return self.hostname
