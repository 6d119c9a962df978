"""The Jobs pages: every managed job of both engines, and one job's page with its controls.

The manifest owns definitions, so nothing here edits one: no add, change or delete. The admin
owns operational state: pause / resume (``orchestrator.pause_job``) and run now
(``orchestrator.run_job``), as POST-only views behind the admin's login and CSRF checks that
answer 403 without the permission, and as changelist actions gated the same way.

The list costs a fixed number of queries per page whatever its length: the last run comes from
correlated subqueries on the ``(job, started)`` index; state, next run and missed runs come
from the status model (``orchestrator.status``: the engines' live rows, one history query for
the page), the same answer ``jobs list`` and ``/metrics`` give.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from orchestrator import engine_times, operations
from orchestrator.admin import plan_views
from orchestrator.admin.display import (
    absolute_text,
    duration_html,
    duration_text,
    engine_badge,
    relative_text,
    run_chart,
    schedule_words,
    status_badge,
    zone_name,
)
from orchestrator.admin.job_filters import LastRunFilter, StateFilter, TagFilter
from orchestrator.engines import backends
from orchestrator.errors import OrchestratorError
from orchestrator.models import JobRun, ManagedJob
from orchestrator.status import JobStatus, job_statuses
from project.admin_base import ReadOnlyAdmin

logger = logging.getLogger(__name__)

#: runs shown (and charted) on a job's page
DETAIL_RUNS = 50
#: upcoming run times listed on a job's page
UPCOMING = 5


def _site_zone() -> str:
    return str(settings.TIME_ZONE)


def upcoming_runs(found: JobStatus, count: int = UPCOMING) -> list[datetime]:
    """The next ``count`` instants the job's engine will start it (none when it will not:
    paused, ended, missing from its engine). Counted on from the status model's next run, so
    an interval job's list starts from its engine's own last run."""
    first = found.next_run
    if first is None or count < 1:
        return []
    backend = backends().get(found.job.engine)
    if backend is None:
        return [first]
    job = found.job
    later = engine_times.next_runs(
        backend, job.trigger, job.timezone, count - 1, first, last_run=first
    )
    return [first, *later]


class ManagedJobAdmin(ReadOnlyAdmin):
    # One line per fact, no wrapping (the list's CSS): a job is one compact row, its
    # description under its name. The job's time zone shows only where it differs from the
    # site's, and the zone instants are shown in is said once, in the headers.
    list_display = (
        "name_col",
        "engine_col",
        "schedule_col",
        "state_col",
        "next_run_col",
        "last_run_col",
    )
    list_display_links = ("name_col",)
    list_filter = ("engine", StateFilter, LastRunFilter, TagFilter)
    search_fields = ("name", "definition__description")
    list_per_page = 100
    show_full_result_count = False
    actions = ("pause_selected", "resume_selected", "run_selected")
    change_list_template = "admin/orchestrator/managedjob/change_list.html"

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orchestrator.pause_job")

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orchestrator.run_job")

    def has_apply_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orchestrator.apply_manifest")

    def has_prune_permission(self, request: HttpRequest) -> bool:
        return self.has_apply_permission(request) and request.user.has_perm(
            "orchestrator.prune_jobs"
        )

    # ------------------------------------------------------------------ list
    def get_queryset(self, request: HttpRequest) -> QuerySet:
        last = JobRun.objects.filter(job=OuterRef("name")).order_by("-started", "-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                last_status=Subquery(last.values("status")[:1]),
                last_started=Subquery(last.values("started")[:1]),
                last_duration=Subquery(last.values("duration")[:1]),
            )
        )

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)
        for row, found in zip(rows, job_statuses(rows), strict=True):
            row.status = found
        changelist.result_list = rows
        return changelist

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        context = {
            "site_zone": zone_name(),
            "schedulers": [backend.health() for backend in backends().values()],
            "can_apply": self.has_apply_permission(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description="job", ordering="name")
    def name_col(self, obj: ManagedJob) -> Any:
        description = str(obj.definition.get("description") or "")
        if not description:
            return format_html('<span class="orch-name">{}</span>', obj.name)
        return format_html(
            '<span class="orch-name">{}</span><span class="orch-description" title="{}">{}</span>',
            obj.name,
            description,
            description,
        )

    @admin.display(description="engine", ordering="engine")
    def engine_col(self, obj: ManagedJob) -> Any:
        return engine_badge(obj.engine)

    @admin.display(description="schedule")
    def schedule_col(self, obj: ManagedJob) -> Any:
        text, words = schedule_words(obj.definition)
        zone = str(obj.definition.get("timezone") or "UTC")
        trigger = obj.definition.get("trigger")
        cron = isinstance(trigger, dict) and trigger.get("kind") == "cron"
        return format_html(
            '<code class="orch-schedule">{}</code>{}{}',
            text,
            format_html(' <span class="orch-zone">{}</span>', zone) if zone != _site_zone() else "",
            format_html('<span class="orch-words" title="{}">{}</span>', words, words)
            if cron and words
            else "",
        )

    @admin.display(description="state")
    def state_col(self, obj: ManagedJob) -> Any:
        found = getattr(obj, "status", None)
        if found is None:
            return "—"
        missed = ""
        if found.missed is not None and found.missed_count:
            missed = format_html(
                '<span class="orch-missed" title="scheduled runs that did not happen in the '
                'last 24 h">{} missed</span>',
                found.missed_count,
            )
        return format_html(
            '<span class="orch-state" title="{}">{}</span>{}',
            found.detail,
            found.state.value,
            missed,
        )

    @admin.display(description="next run")
    def next_run_col(self, obj: ManagedJob) -> Any:
        found = getattr(obj, "status", None)
        when = found.next_run if found is not None else None
        if when is None:
            return "—"
        # As the last run: how soon first (what an operator scans for), the instant under it
        return format_html(
            '<time class="orch-next" datetime="{}" title="{}">{}<small class="orch-when">{}'
            "</small></time>",
            when.isoformat(),
            absolute_text(when),
            relative_text(when),
            absolute_text(when, zone=False),
        )

    @admin.display(description="last run", ordering="last_started")
    def last_run_col(self, obj: ManagedJob) -> Any:
        status = getattr(obj, "last_status", None)
        if status is None:
            return "never"
        started = getattr(obj, "last_started", None)
        if started is None:
            return status_badge(status)
        # Two short lines, as every column: the outcome and how long ago, then the instant;
        # the duration is in the title (and on the job's page).
        return format_html(
            '<time class="orch-last" datetime="{}" title="{} · took {}">{} {}'
            '<small class="orch-when">{}</small></time>',
            started.isoformat(),
            absolute_text(started),
            duration_text(getattr(obj, "last_duration", None)),
            status_badge(status),
            relative_text(started),
            absolute_text(started, zone=False),
        )

    # ------------------------------------------------------------------ actions
    @admin.action(description="Pause selected jobs", permissions=["pause"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "paused", lambda name: operations.set_paused(name, True))

    @admin.action(description="Resume selected jobs", permissions=["pause"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "resumed", lambda name: operations.set_paused(name, False))

    @admin.action(description="Run selected jobs now", permissions=["run"])
    def run_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._each(request, queryset, "started", operations.run_now)

    def _each(self, request: HttpRequest, queryset: QuerySet, verb: str, act: Any) -> None:
        done = []
        for name in queryset.values_list("name", flat=True):
            try:
                act(name)
                done.append(name)
            except OrchestratorError as error:
                self.message_user(request, f"{name}: {error}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}", messages.SUCCESS)
        logger.info("admin action", extra={"verb": verb, "jobs": done, "user": request.user.pk})

    # ------------------------------------------------------------------ job page and controls
    def get_urls(self) -> list:
        wrap = self.admin_site.admin_view
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("plan/", wrap(self.plan_view), name=f"{prefix}_plan"),
            path("plan/confirm/", wrap(self.confirm_view), name=f"{prefix}_confirm"),
            path("plan/apply/", wrap(self.apply_view), name=f"{prefix}_apply"),
            path("unmanaged/", wrap(self.unmanaged_view), name=f"{prefix}_unmanaged"),
            path("<int:pk>/pause/", wrap(self.pause_view), name=f"{prefix}_pause"),
            path("<int:pk>/resume/", wrap(self.resume_view), name=f"{prefix}_resume"),
            path("<int:pk>/run/", wrap(self.run_view), name=f"{prefix}_run"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        """A job's page: definition, reasons, missed runs, run history and chart, controls."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(self.get_queryset(request), pk=object_id)
        found = job_statuses([job])[0]
        runs = list(JobRun.objects.filter(job=job.name).order_by("-started", "-id")[:DETAIL_RUNS])
        chart = run_chart(
            [
                {
                    "status": run.status,
                    "duration": run.duration,
                    "label": absolute_text(run.started) if run.started else run.status,
                }
                for run in reversed(runs)
            ]
        )
        text, words = schedule_words(job.definition)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": job.name,
            "job": job,
            "state": found.state.value,
            "status": found,
            "schedule": text,
            "schedule_words": words,
            "scheduling": operations.describe_scheduling(job.definition, job.engine),
            "engine": engine_badge(job.engine),
            "definition": json.dumps(job.definition, indent=2, sort_keys=True, default=str),
            "reasons": job.reasons,
            "runs": [(run, status_badge(run.status), duration_html(run.duration)) for run in runs],
            "chart": chart,
            "missed": found.missed,
            "next_run": found.next_run,
            "upcoming": upcoming_runs(found),
            "job_zone": str(job.definition.get("timezone") or "UTC"),
            "can_pause": self.has_pause_permission(request),
            "can_run": self.has_run_permission(request),
            "runs_url": reverse("admin:orchestrator_jobrun_changelist") + f"?job={job.name}",
        }
        return TemplateResponse(request, "admin/orchestrator/managedjob/detail.html", context)

    def _control(self, request: HttpRequest, pk: int, allowed: bool, act: Any, done: str) -> Any:
        if not allowed:
            raise PermissionDenied
        job = get_object_or_404(ManagedJob, pk=pk)
        try:
            result = act(job.name)
        except OrchestratorError as error:
            self.message_user(request, f"{job.name}: {error}", messages.ERROR)
        else:
            suffix = f" (run {result})" if isinstance(result, str) else ""
            self.message_user(request, f"{job.name}: {done}{suffix}", messages.SUCCESS)
            logger.info(
                "admin control", extra={"job": job.name, "verb": done, "user": request.user.pk}
            )
        return HttpResponseRedirect(reverse("admin:orchestrator_managedjob_change", args=[pk]))

    @staticmethod
    def _paused(value: bool) -> Any:
        return lambda name: operations.set_paused(name, value)

    def pause_view(self, request: HttpRequest, pk: int) -> Any:
        return _post_only(request) or self._control(
            request, pk, self.has_pause_permission(request), self._paused(True), "paused"
        )

    def resume_view(self, request: HttpRequest, pk: int) -> Any:
        return _post_only(request) or self._control(
            request, pk, self.has_pause_permission(request), self._paused(False), "resumed"
        )

    def run_view(self, request: HttpRequest, pk: int) -> Any:
        """Run now; a task job's form may carry keyword arguments for this run (JSON), which
        the engine checks against the task's signature before sending anything."""
        text = request.POST.get("kwargs", "").strip()

        def act(name: str) -> str:
            kwargs = operations.parse_run_kwargs(text) if text else None
            return operations.run_now(name, kwargs)

        done = "run started" + (" with its keyword arguments" if text else "")
        return _post_only(request) or self._control(
            request, pk, self.has_run_permission(request), act, done
        )

    def plan_view(self, request: HttpRequest) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return plan_views.plan_page(self, request)

    def confirm_view(self, request: HttpRequest) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return plan_views.confirm_page(self, request)

    def apply_view(self, request: HttpRequest) -> Any:
        return _post_only(request) or plan_views.apply(self, request)

    def unmanaged_view(self, request: HttpRequest) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return plan_views.unmanaged_page(self, request)


def _post_only(request: HttpRequest) -> HttpResponse | None:
    """405 for anything but POST (controls change state; a GET must never)."""
    response = require_POST(lambda _request: None)(request)
    return response
