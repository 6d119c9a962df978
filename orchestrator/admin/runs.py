"""The Runs page: the history of both engines, filterable by engine, job, status and time.

Built for a history of millions of rows: every filter has an index ending in
``(started DESC, id DESC)``, the page is one index range scan, and the total is counted only up
to ``COUNT_CAP`` (an exact ``count(*)`` over a million rows would cost more than the page).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

from orchestrator.admin.display import duration_html, engine_badge, instant_html, status_badge
from orchestrator.models import JobRun
from project.admin_base import ReadOnlyAdmin

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


class JobRunAdmin(ReadOnlyAdmin):
    list_display = (
        "job",
        "engine_col",
        "status_col",
        "attempt",
        "scheduled_col",
        "started_col",
        "duration_col",
        "where_col",
        "message_col",
        "engine_run_id",
    )
    list_filter = ("engine", "status", JobNameFilter, ("started", admin.DateFieldListFilter))
    search_fields = ("=job", "=engine_run_id")
    list_per_page = 100
    paginator = CappedPaginator
    show_full_result_count = False
    list_display_links = None
    ordering = ("-started", "-id")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).defer("updated_at")

    @admin.display(description="engine", ordering="engine")
    def engine_col(self, obj: JobRun) -> Any:
        return engine_badge(obj.engine)

    @admin.display(description="status", ordering="status")
    def status_col(self, obj: JobRun) -> Any:
        return status_badge(obj.status)

    @admin.display(description="scheduled for", ordering="scheduled_for")
    def scheduled_col(self, obj: JobRun) -> Any:
        return instant_html(obj.scheduled_for)

    @admin.display(description="started", ordering="started")
    def started_col(self, obj: JobRun) -> Any:
        return instant_html(obj.started)

    @admin.display(description="duration", ordering="duration")
    def duration_col(self, obj: JobRun) -> Any:
        return duration_html(obj.duration)

    @admin.display(description="worker / pid")
    def where_col(self, obj: JobRun) -> str:
        if obj.worker:
            return f"{obj.worker} ({obj.pid})" if obj.pid else obj.worker
        return f"backend {obj.pid}" if obj.pid else "—"

    @admin.display(description="message")
    def message_col(self, obj: JobRun) -> str:
        text = obj.message or ""
        return text if len(text) <= 200 else text[:200] + "…"
