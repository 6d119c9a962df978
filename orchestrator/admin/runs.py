"""The Runs page (the history of both engines) and one run's page ("what happened").

The list is filterable by engine, job, status and time, and searchable by substrings of job
names and error text; each row links to its run's page and to its job's page. Built for a
history of millions of rows: every filter has an index ending in ``(started DESC, id DESC)``,
the search has trigram indexes (migration 0007), the page is one index range scan, and the
total is counted only up to ``COUNT_CAP`` (an exact ``count(*)`` over a million rows would cost
more than the page).

A run's page shows every attempt and delivery of the run (its rows sharing the engine's run
id: Celery's retries and redeliveries), each with its traceback, what the body was called
with, worker, slot and lag, duration and output; it links to the job, and offers "Run again":
the job page's run-now (``operations.run_now``) behind the same ``orchestrator.run_job``
permission, POST-only with CSRF, 403 without the permission.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from orchestrator import operations
from orchestrator.admin.display import (
    duration_html,
    engine_badge,
    excerpt,
    instant_html,
    output_text,
    status_badge,
)
from orchestrator.errors import OrchestratorError
from orchestrator.models import JobRun, ManagedJob
from project.admin_base import ReadOnlyAdmin

logger = logging.getLogger(__name__)

#: the changelist counts matching runs up to this many, and says "more than" past it
COUNT_CAP = 10_000


class CappedPaginator(Paginator):
    """Counts at most ``COUNT_CAP + 1`` rows (``SELECT count(*) FROM (... LIMIT n)``)."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


class JobNameFilter(admin.SimpleListFilter):
    """A job-name box rather than a list of 10,000 links."""

    title = "job"
    parameter_name = "job"
    template = "admin/orchestrator/input_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # One entry so the filter renders; the template shows a text box.
        return [("", "")]

    def choices(self, changelist: Any) -> Any:
        """One choice: the other filters' parameters, kept as hidden fields of the box."""
        kept = [
            (key, value)
            for key, values in changelist.params.items()
            if key != self.parameter_name
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {"hidden": kept, "value": self.value() or ""}

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(job=value.strip()) if value else queryset


#: statuses whose message is an error (the others' is output)
ERROR_STATUSES = frozenset({"failed", "failed_final", "retried", "lost", "cancelled"})


class JobRunAdmin(ReadOnlyAdmin):
    list_display = (
        "run_col",
        "job_col",
        "engine_col",
        "status_col",
        "duration_col",
        "where_col",
        "error_col",
    )
    list_filter = ("engine", "status", JobNameFilter, ("started", admin.DateFieldListFilter))
    # substrings of job names and error text (trigram-indexed), or a run id exactly
    search_fields = ("job", "message", "=engine_run_id")
    search_help_text = "Part of a job's name or of an error, or a run id."
    list_per_page = 100
    paginator = CappedPaginator
    show_full_result_count = False
    list_display_links = None
    ordering = ("-started", "-id")
    change_list_template = "admin/orchestrator/jobrun/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("updated_at", "traceback", "args", "kwargs")

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """The page's rows, each told its job's registry id (one query) for the job link."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        ids = dict(
            ManagedJob.objects.filter(name__in={row.job for row in rows}).values_list("name", "pk")
        )
        for row in rows:
            row.job_pk = ids.get(row.job)
        changelist.result_list = rows
        return changelist

    @admin.display(description="run", ordering="started")
    def run_col(self, obj: JobRun) -> Any:
        when = obj.started or obj.scheduled_for
        return format_html(
            '<a class="orch-run-link" href="{}">{}</a>',
            reverse("admin:orchestrator_jobrun_change", args=[obj.pk]),
            instant_html(when) if when else f"run {obj.pk}",
        )

    @admin.display(description="job", ordering="job")
    def job_col(self, obj: JobRun) -> Any:
        pk = getattr(obj, "job_pk", None)
        if pk is None:
            return format_html('{} <small class="help">(not managed)</small>', obj.job)
        return format_html(
            '<a class="orch-job-link" href="{}">{}</a>',
            reverse("admin:orchestrator_managedjob_change", args=[pk]),
            obj.job,
        )

    @admin.display(description="engine", ordering="engine")
    def engine_col(self, obj: JobRun) -> Any:
        return engine_badge(obj.engine)

    @admin.display(description="status", ordering="status")
    def status_col(self, obj: JobRun) -> Any:
        """The badge, and which attempt it was when not the first (one column fewer)."""
        if obj.attempt > 1 or obj.delivery > 1:
            redelivered = f", delivery {obj.delivery}" if obj.delivery > 1 else ""
            return format_html(
                "{}<br><small>attempt {}{}</small>",
                status_badge(obj.status),
                obj.attempt,
                redelivered,
            )
        return status_badge(obj.status)

    @admin.display(description="duration", ordering="duration")
    def duration_col(self, obj: JobRun) -> Any:
        return duration_html(obj.duration)

    @admin.display(description="worker / pid")
    def where_col(self, obj: JobRun) -> Any:
        if obj.worker:
            # A Celery hostname is name@host: the line may break after the "@", never mid-word.
            name, at, host = obj.worker.partition("@")
            return format_html(
                '<span class="orch-worker">{}{}</span><wbr><span class="orch-worker">{}</span>'
                "<br><small>pid {}</small>",
                name,
                at,
                host,
                obj.pid or "?",
            )
        return f"backend {obj.pid}" if obj.pid else "—"

    @admin.display(description="error / output")
    def error_col(self, obj: JobRun) -> Any:
        text = obj.message or ""
        if not text:
            return format_html('<span class="orch-none">{}</span>', "—")
        css = "orch-error" if obj.status in ERROR_STATUSES else "orch-output"
        return format_html('<span class="{}" title="{}">{}</span>', css, text[:1000], excerpt(text))

    # ------------------------------------------------------------------ one run's page
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<int:pk>/run-again/",
                wrap(require_POST(self.run_again_view)),
                name=f"{prefix}_run_again",
            ),
            *super().get_urls(),
        ]

    def has_run_permission(self, request: HttpRequest) -> bool:
        """The job page's run-now permission: "run again" is the same act."""
        jobs_admin = self.admin_site.get_model_admin(ManagedJob)
        return bool(jobs_admin.has_run_permission(request))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """What happened: every attempt and delivery of this run, oldest first."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(JobRun, pk=object_id)
        rows = JobRun.objects.filter(engine=run.engine, engine_run_id=run.engine_run_id)
        attempts = [_attempt(row, row.pk == run.pk) for row in rows.order_by("attempt", "delivery")]
        job = ManagedJob.objects.filter(name=run.job).only("pk", "name").first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{run.job}: run {run.engine_run_id}",
            "run": run,
            "job": job,
            "attempts": attempts,
            "outcome": attempts[-1]["status"] if attempts else "",
            "engine": engine_badge(run.engine),
            "runs_url": reverse("admin:orchestrator_jobrun_changelist")
            + "?"
            + urlencode({"job": run.job}),
            "can_run": job is not None and self.has_run_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/orchestrator/jobrun/detail.html", context)

    def run_again_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_run_permission(request):
            raise PermissionDenied
        run = get_object_or_404(JobRun, pk=pk)
        target = reverse("admin:orchestrator_jobrun_change", args=[pk])
        try:
            run_id = operations.run_now(run.job)
        except OrchestratorError as error:
            self.message_user(request, f"{run.job}: not started: {error}", messages.ERROR)
            return HttpResponseRedirect(target)
        logger.info(
            "admin run again",
            extra={"job": run.job, "from_run": run.pk, "run_id": run_id, "user": request.user.pk},
        )
        self.message_user(request, f"{run.job}: run started (run {run_id})", messages.SUCCESS)
        # the publisher's signal has recorded the new run as queued: follow it there
        new = JobRun.objects.filter(engine_run_id=run_id).order_by("attempt").first()
        if new is not None:
            target = reverse("admin:orchestrator_jobrun_change", args=[new.pk])
        return HttpResponseRedirect(target)


def _attempt(row: JobRun, current: bool) -> dict[str, Any]:
    """One attempt as the run page shows it: facts, lag behind its slot, texts to read."""
    lag = row.started - row.scheduled_for if row.started and row.scheduled_for else None
    failed = row.status in ERROR_STATUSES
    return {
        "row": row,
        "current": current,
        "status": status_badge(row.status),
        "scheduled": instant_html(row.scheduled_for),
        "started": instant_html(row.started),
        "finished": instant_html(row.finished),
        "lag": duration_html(lag) if lag is not None else "—",
        "duration": duration_html(row.duration),
        "error": row.message if failed else "",
        "output": "" if failed else output_text(row.message),
        "traceback": row.traceback,
        # None: not recorded (older rows, pg_cron); "" : called with none
        "args": None if row.args is None else (output_text(row.args) if row.args else ""),
        "kwargs": None if row.kwargs is None else (output_text(row.kwargs) if row.kwargs else ""),
    }
