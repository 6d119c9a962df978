"""The orchestrator's own state: which engine jobs it manages, and its start-up ledger.

The registry is what makes "manage only what we created" possible: a pg_cron job or periodic task
without a ``ManagedJob`` row was made by hand and is never touched. Each row keeps the spec's
hash (to notice a changed definition), its canonical definition (to show a field diff) and the
operational state the admin owns (``paused``), which an apply never overwrites.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Length
from django.db.models.lookups import LessThanOrEqual


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
    resumed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="when an operator last resumed the job; missed runs count from then",
    )
    orphaned_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="when an apply found it no longer in the manifest (kept without --prune)",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=models.Q(engine__in=Engine.values),
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
            ("prune_jobs", "Can delete jobs no longer in the manifest (prune)"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.engine})"


class ManifestPlan(ManagedJob):
    """No data of its own: the admin index's entry for the Plan and apply page.

    The admin index lists models, so the page a user applies the manifest from needs one to be
    found there; a proxy of the registry adds no table. Its admin asks for the registry's own
    view permission, so it has none of its own.
    """

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = "plan and apply"
        verbose_name_plural = "plan and apply"


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


class RunStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    #: an attempt failed (history written before failed_final existed: its run's end)
    FAILED = "failed", "failed"
    #: the run failed after its last attempt: no retry follows (pg_cron: every failure)
    FAILED_FINAL = "failed_final", "failed for good"
    RETRIED = "retried", "retried"
    SKIPPED = "skipped", "skipped"
    LOST = "lost", "lost"
    #: a scheduled slot that was never sent (e.g. the broker was down until the slot passed)
    MISSED = "missed", "missed"
    #: stopped on purpose: by a newer run (overlap cancel_other) or by an operator
    CANCELLED = "cancelled", "cancelled"


#: statuses after which a run changes no more
FINISHED_STATUSES = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.FAILED_FINAL,
    RunStatus.RETRIED,
    RunStatus.SKIPPED,
    RunStatus.LOST,
    RunStatus.MISSED,
    RunStatus.CANCELLED,
)


#: the most of a traceback one run keeps, in characters (64 KiB of ASCII). Longer ones keep their
#: first ``TRACEBACK_HEAD`` characters (where it started) and their end (the exception itself).
TRACEBACK_LIMIT = 65_536
TRACEBACK_HEAD = 4_096
_CUT = "\n[… {} characters cut …]\n"


def bounded_traceback(text: str | None) -> str:
    """``text`` cut to ``TRACEBACK_LIMIT`` characters, its start and end kept.

    A runaway traceback (a recursion, a huge repr in an exception) must not make one history
    row megabytes long; the database's ``job_run_traceback_bounded`` check refuses longer ones.
    """
    text = text or ""
    if len(text) <= TRACEBACK_LIMIT:
        return text
    # The marker's room comes out of the tail; sized for the longest count it can say, so the
    # whole stays within the limit.
    tail = TRACEBACK_LIMIT - TRACEBACK_HEAD - len(_CUT.format(len(text)))
    marker = _CUT.format(len(text) - TRACEBACK_HEAD - tail)
    return text[:TRACEBACK_HEAD] + marker + text[-tail:]


class JobRun(models.Model):
    """One execution (or one queued attempt) of a job, in either engine.

    Linked to its job by *name*, not by a foreign key, on purpose: history must outlive the
    registry row (a job pruned from the manifest, or moved from pg_cron to Celery, keeps its
    past under the same name), the SQL importer and the Celery signal handlers write rows
    without looking a registry id up, and 1,000,000 rows never cascade on a registry delete.
    The admin joins by name through an index (``job_run_job_started``).

    ``delivery`` counts deliveries of the same Celery attempt: when a worker dies mid-task the
    broker redelivers the message with the same task id and retry count, and the dead
    execution stays in history as ``lost`` next to its redelivery. pg_cron rows always have 1.
    """

    job = models.CharField(max_length=63, help_text="the managed job's name")
    engine = models.CharField(max_length=16, choices=Engine.choices)
    engine_run_id = models.CharField(
        max_length=64, help_text="pg_cron runid, or the Celery task id"
    )
    attempt = models.PositiveIntegerField(default=1, help_text="1 + the retries before it")
    delivery = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    manual = models.BooleanField(default=False, help_text="started by run-now, not by schedule")
    backfill = models.BooleanField(
        default=False,
        # a database default too: pg_cron's importer (sql/0003) inserts rows in SQL
        db_default=False,
        help_text="started by `jobs backfill` for its scheduled_for slot",
    )
    scheduled_for = models.DateTimeField(null=True, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True, help_text="Celery worker hostname")
    pid = models.IntegerField(null=True, blank=True, help_text="worker or backend process id")
    message = models.TextField(blank=True, help_text="the error, or the job's output")
    traceback = models.TextField(
        blank=True,
        default="",
        db_default="",
        help_text=f"the failure's full traceback, at most {TRACEBACK_LIMIT} characters "
        "(pg_cron: its return message)",
    )
    args = models.JSONField(
        null=True,
        blank=True,
        help_text="what the job's body was called with: a task's args, a command's argv, "
        "the SQL text (empty for runs recorded before it was kept)",
    )
    kwargs = models.JSONField(null=True, blank=True, help_text="a task body's keyword arguments")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-started", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("engine", "engine_run_id", "attempt", "delivery"),
                name="job_run_once",
            ),
            models.CheckConstraint(
                condition=models.Q(engine__in=Engine.values),
                name="job_run_engine_known",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values),
                name="job_run_status_known",
            ),
            models.CheckConstraint(condition=models.Q(attempt__gte=1), name="job_run_attempt"),
            models.CheckConstraint(
                condition=LessThanOrEqual(Length("traceback"), TRACEBACK_LIMIT),
                name="job_run_traceback_bounded",
            ),
        ]
        indexes = [
            models.Index(fields=("job", "-started", "-id"), name="job_run_job_started"),
            models.Index(fields=("status", "-started", "-id"), name="job_run_status_started"),
            models.Index(fields=("engine", "-started", "-id"), name="job_run_engine_started"),
            models.Index(fields=("-started", "-id"), name="job_run_started"),
            # missed-run counts: a job's scheduled slots in a window
            models.Index(fields=("job", "scheduled_for"), name="job_run_job_slot"),
            # The Runs page's substring search has trigram indexes on UPPER(job) and
            # UPPER(message), what Django's ``icontains`` asks PostgreSQL: created in SQL by
            # migration 0007 (Django renders an opclass on an expression as invalid SQL).
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.engine_run_id} #{self.attempt} {self.status}"


class BackfillSlot(models.Model):
    """One slot of a job that a backfill has taken: at most one row per (job, slot).

    ``jobs backfill`` inserts the row (``ON CONFLICT DO NOTHING``) before it sends the slot's
    run, so two backfills of overlapping windows, even at the same instant, never both run a
    slot; the unique constraint decides, not a check-then-act in Python.
    """

    job = models.CharField(max_length=63)
    scheduled_for = models.DateTimeField()
    run_id = models.CharField(max_length=64, blank=True, help_text="the run's Celery task id")
    requested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("job", "scheduled_for"), name="backfill_slot_once"),
        ]

    def __str__(self) -> str:
        return f"{self.job} @ {self.scheduled_for.isoformat()}"


class CronImportMark(models.Model):
    """The pg_cron importer's watermark: the highest ``cron.job_run_details.runid`` it has
    seen finished. One row (``id = 1``), written by ``orchestrator_import_cron_runs()``.

    Runs still going at import time are imported as ``running`` and re-read on the next
    import (from ``open_from``, the lowest runid not finished yet), so nothing is missed and
    finished rows are never read twice.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    open_from = models.BigIntegerField(default=0, help_text="re-read runids from here on")
    last_import = models.DateTimeField(null=True, blank=True)
    imported = models.BigIntegerField(default=0, help_text="rows written by the last import")

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="cron_mark_single")]

    def __str__(self) -> str:
        return f"pg_cron runs from runid {self.open_from}"


class RunCounter(models.Model):
    """Finished runs counted as they happen, per job, engine and status: ``/metrics``' counters.

    ``JobRun`` is pruned (``orchestrator_prune_run_history``), so counts recounted from it would
    go down, and Prometheus reads any decrease of a counter as a restart (``rate()`` jumps).
    These rows are written only by statement triggers on ``orchestrator_jobrun``
    (``sql/0010_run_counters.sql``), on every path a run reaches a finished status: Celery's
    signals, pg_cron's run import, the lost-run sweep. A row is added to, never recounted,
    and deleting history does not touch it.

    ``status`` is free text on purpose: a status added to ``RunStatus`` later is counted with
    no change here (any status but ``queued`` and ``running`` counts as finished).
    ``duration_le`` holds the cumulative histogram counts for the bounds of
    ``orchestrator_run_duration_bounds()`` (seconds, ``le``), so ``/metrics`` needs no query of
    the history to draw a duration histogram.
    """

    job = models.CharField(max_length=63)
    engine = models.CharField(max_length=16)
    status = models.CharField(max_length=32)
    runs = models.BigIntegerField(default=0, help_text="runs that reached this status")
    timed = models.BigIntegerField(default=0, help_text="of those, runs with a duration")
    duration_seconds = models.FloatField(default=0.0, help_text="sum of their durations")
    duration_le = ArrayField(
        models.BigIntegerField(),
        default=list,
        help_text="cumulative counts of durations <= each bound, in seconds",
    )
    last_finished = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("job", "engine", "status"), name="run_counter_job_engine_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.engine} {self.status}: {self.runs}"


class Notification(models.Model):
    """One notification of one event of one run, on one channel: the ledger that makes
    delivery exactly-once (unique per event, run and channel: a retried or redelivered send
    finds its row) and rate-limited per job (rows in the window are counted)."""

    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SENT = "sent", "sent"
        FAILED = "failed", "failed"
        SUPPRESSED = "suppressed", "suppressed"

    job = models.CharField(max_length=63)
    event = models.CharField(max_length=16, help_text="failed_final, missed or recovered")
    run_id = models.CharField(max_length=64, help_text="the run (or missed slot) it is about")
    channel = models.CharField(max_length=16, help_text="email or webhook")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=("job", "event", "run_id", "channel"), name="notification_once"
            ),
        ]
        indexes = [models.Index(fields=("job", "created_at"), name="notification_job_created")]

    def __str__(self) -> str:
        return f"{self.job} {self.event} {self.channel} {self.status}"
