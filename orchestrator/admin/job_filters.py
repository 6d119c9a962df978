"""The Jobs list's filters: live state (asked of the engines), last run, and tag.

Kept apart from the Jobs admin so each module holds one concept; the state filter goes through
the status model like every other view of a job's state.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import connection
from django.db.models import QuerySet
from django.http import HttpRequest

from orchestrator.status import State, job_statuses


class StateFilter(admin.SimpleListFilter):
    """Filters on the live state (``orchestrator.status``), not on registry columns: the
    engines decide whether a job is paused or drifting, so the filter asks them."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(state.value, state.value) for state in State]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        names = [s.name for s in job_statuses(queryset.model.objects.all()) if s.state == value]
        return queryset.filter(name__in=names)


class LastRunFilter(admin.SimpleListFilter):
    title = "last run"
    parameter_name = "last_run"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("succeeded", "succeeded"),
            ("failed", "failed"),
            ("failed_final", "failed for good"),
            ("running", "running"),
            ("never", "never ran"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "never":
            return queryset.filter(last_status__isnull=True)
        if value:
            return queryset.filter(last_status=value)
        return queryset


class TagFilter(admin.SimpleListFilter):
    title = "tag"
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT tag FROM orchestrator_managedjob, "
                "jsonb_array_elements_text(CASE jsonb_typeof(definition->'tags') "
                "WHEN 'array' THEN definition->'tags' ELSE '[]'::jsonb END) AS tag "
                "ORDER BY tag LIMIT 200"
            )
            return [(tag, tag) for (tag,) in cursor.fetchall()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset.filter(definition__tags__contains=[value]) if value else queryset
