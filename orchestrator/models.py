"""The orchestrator's own state: which engine jobs it manages, and its start-up ledger.

The registry is what makes "manage only what we created" possible: a pg_cron job or periodic task
without a ``ManagedJob`` row was made by hand and is never touched. Each row keeps the spec's
hash (to notice a changed definition), its canonical definition (to show a field diff) and the
operational state the admin owns (``paused``), which an apply never overwrites.
"""

from __future__ import annotations

from django.db import models


class Engine(models.TextChoices):
    PG_CRON = "pg_cron", "pg_cron"
    CELERY = "celery", "Celery"


class ManagedJob(models.Model):
    """One job of the manifest as applied to its engine."""

    name = models.CharField(max_length=63, unique=True)
    engine = models.CharField(max_length=16, choices=Engine.choices)
    engine_id = models.CharField(
        max_length=64, help_text="pg_cron jobid, or django-celery-beat PeriodicTask id"
    )
    spec_hash = models.CharField(max_length=64)
    definition = models.JSONField(help_text="the canonical manifest definition as applied")
    reasons = models.JSONField(default=list, help_text="why the classifier chose this engine")
    paused = models.BooleanField(
        default=False, help_text="paused from the admin or CLI; survives every apply"
    )
    applied_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(engine__in=[choice.value for choice in Engine]),
                name="managed_job_engine_known",
            ),
            models.UniqueConstraint(fields=("engine", "engine_id"), name="managed_job_engine_id"),
            models.CheckConstraint(
                condition=models.Q(name__regex=r"^[a-z0-9][a-z0-9_.-]{0,62}$"),
                name="managed_job_name_valid",
            ),
        ]
        indexes = [models.Index(fields=("engine", "name"), name="managed_job_engine_name")]
        permissions = [
            ("apply_manifest", "Can apply the manifest to the engines"),
            ("pause_job", "Can pause and resume jobs"),
            ("run_job", "Can run a job now"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.engine})"


class StartupRun(models.Model):
    """A ledger row per (startup job, release): the first worker to insert it runs the job.

    ``on: startup`` jobs must run once per release, never twice when several workers start
    together; a unique row claimed with ``INSERT ... ON CONFLICT DO NOTHING`` decides who runs.
    """

    job = models.CharField(max_length=63)
    release = models.CharField(max_length=64, help_text="the spec hash plus the app release")
    claimed_by = models.CharField(max_length=255)
    claimed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("job", "release"), name="startup_run_once"),
        ]

    def __str__(self) -> str:
        return f"{self.job} @ {self.release[:12]}"
