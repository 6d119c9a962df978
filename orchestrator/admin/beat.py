"""django-celery-beat's periodic task admin, with its actions behind permissions.

Its stock actions (enable, disable, toggle, run) check no permission: any staff user who can
see the list could stop every schedule or fire any task. Here enable/disable/toggle need
``django_celery_beat.change_periodictask`` and run needs ``orchestrator.run_job`` as well.
Edits to a managed job's periodic task stay possible for those allowed to change it; the next
``jobs plan`` shows them as drift.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask


class GuardedPeriodicTaskAdmin(PeriodicTaskAdmin):
    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(
            "django_celery_beat.change_periodictask"
        ) and request.user.has_perm("orchestrator.run_job")

    @admin.action(description="Enable selected tasks", permissions=["change"])
    def enable_tasks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return super().enable_tasks(request, queryset)

    @admin.action(description="Disable selected tasks", permissions=["change"])
    def disable_tasks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return super().disable_tasks(request, queryset)

    @admin.action(description="Toggle activity of selected tasks", permissions=["change"])
    def toggle_tasks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return super().toggle_tasks(request, queryset)

    @admin.action(description="Run selected tasks", permissions=["run"])
    def run_tasks(self, request: HttpRequest, queryset: QuerySet) -> Any:
        return super().run_tasks(request, queryset)


def install(site: admin.AdminSite) -> None:
    """Replace the stock registration (django-celery-beat's admin module registers on import)."""
    if site.is_registered(PeriodicTask):
        site.unregister(PeriodicTask)
    site.register(PeriodicTask, GuardedPeriodicTaskAdmin)
