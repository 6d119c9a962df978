"""django-celery-beat's periodic task admin, guarded: permissions on its actions, and the
orchestrator's own rows read-only.

Its stock actions (enable, disable, toggle, run) check no permission: any staff user who can
see the list could stop every schedule or fire any task. Here enable/disable/toggle need
``django_celery_beat.change_periodictask`` and run needs ``orchestrator.run_job`` as well.

A *managed* row (the periodic task of a manifest job, named in the registry) belongs to the
manifest: the list marks it and links to its job's page, its change form is read-only and it
cannot be deleted. Every managed row calls the same runner task, so the stock "task" filter
would offer one useless choice: the list filters instead by who manages a row (the manifest
or nobody), by job name, and by task among the hand-made rows only.

Enable/disable stay possible (operational state: the status model shows an outside pause as
drift, and the next apply restores it). The row carries only the job's name
anyway (the runner reads the definition from the registry), so even a write that got past
this admin could not change what runs. Hand-made periodic tasks stay fully editable.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import CharField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from orchestrator.models import Engine, ManagedJob


def managed_job_ids(queryset: QuerySet) -> QuerySet:
    """``queryset`` annotated with ``managed_job_id``: the registry row owning each task."""
    owner = ManagedJob.objects.filter(
        engine=Engine.CELERY, engine_id=Cast(OuterRef("pk"), CharField())
    ).values("pk")[:1]
    return queryset.annotate(managed_job_id=Subquery(owner))


def _managed_job(task: PeriodicTask | None) -> int | None:
    if task is None:
        return None
    if hasattr(task, "managed_job_id"):
        return task.managed_job_id
    return (
        ManagedJob.objects.filter(engine=Engine.CELERY, engine_id=str(task.pk))
        .values_list("pk", flat=True)
        .first()
    )


def _without_managed(queryset: QuerySet) -> QuerySet:
    """A plain queryset (no annotation, so ``update`` and ``delete`` stay simple) of the
    hand-made rows of ``queryset``."""
    hand_made = managed_job_ids(queryset).filter(managed_job_id__isnull=True)
    return PeriodicTask.objects.filter(pk__in=list(hand_made.values_list("pk", flat=True)))


class ManagedFilter(admin.SimpleListFilter):
    title = "managed by"
    parameter_name = "managed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("manifest", "the manifest"), ("hand", "nobody (made by hand)")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "manifest":
            return queryset.filter(managed_job_id__isnull=False)
        if self.value() == "hand":
            return queryset.filter(managed_job_id__isnull=True)
        return queryset


class JobFilter(admin.SimpleListFilter):
    """A box for part of a job's name (there may be thousands of jobs): managed rows only."""

    title = "job"
    parameter_name = "job"
    template = "admin/orchestrator/input_filter.html"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("", "")]  # one entry so the filter renders; the template shows a text box

    def choices(self, changelist: Any) -> Any:
        kept = [
            (key, value)
            for key, values in changelist.params.items()
            if key != self.parameter_name
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {"hidden": kept, "value": self.value() or ""}

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        return queryset.filter(managed_job_id__isnull=False, name__icontains=value)


class HandMadeTaskFilter(admin.SimpleListFilter):
    """The stock task filter over the hand-made rows (managed ones all run the runner)."""

    title = "task (made by hand)"
    parameter_name = "hand_task"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        tasks = (
            managed_job_ids(PeriodicTask.objects.all())
            .filter(managed_job_id__isnull=True)
            .order_by("task")
            .values_list("task", flat=True)
            .distinct()[:200]
        )
        return [(task, task) for task in tasks]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        return queryset.filter(managed_job_id__isnull=True, task=value)


class GuardedPeriodicTaskAdmin(PeriodicTaskAdmin):
    list_display = ("name", "managed_by", *PeriodicTaskAdmin.list_display[1:])
    change_list_template = "admin/django_celery_beat/periodictask/orchestrator_change_list.html"
    list_filter = (
        ManagedFilter,
        JobFilter,
        "enabled",
        "one_off",
        HandMadeTaskFilter,
        "start_time",
        "last_run_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return managed_job_ids(super().get_queryset(request))

    @admin.display(description="managed by")
    def managed_by(self, task: PeriodicTask) -> str:
        job_id = _managed_job(task)
        if job_id is None:
            return "—"
        url = reverse("admin:orchestrator_managedjob_change", args=[job_id])
        return format_html(
            '<span class="orch-managed">manifest · read-only</span><br><a href="{}">job page</a>',
            url,
        )

    # ------------------------------------------------------------------ managed rows: read-only
    def has_change_permission(self, request: HttpRequest, obj: PeriodicTask | None = None) -> bool:
        if _managed_job(obj) is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: PeriodicTask | None = None) -> bool:
        if _managed_job(obj) is not None:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Django's bulk delete already refuses a selection holding a managed row (it asks
        # has_delete_permission per object); never delete one even if that changes.
        super().delete_queryset(request, _without_managed(queryset))

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "GET":
            task = self.get_object(request, object_id)
            job_id = _managed_job(task)
            if job_id is not None:
                url = reverse("admin:orchestrator_managedjob_change", args=[job_id])
                self.message_user(
                    request,
                    format_html(
                        "This periodic task is managed by the orchestrator and is read-only: "
                        'change its job in the manifest, pause or run it from <a href="{}">'
                        "its job page</a>.",
                        url,
                    ),
                    messages.INFO,
                )
        return super().change_view(request, object_id, form_url, extra_context)

    # ------------------------------------------------------------------ actions
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
        # A managed row's message names its job; the runner runs the registry's definition.
        return super().run_tasks(request, queryset)


def install(site: admin.AdminSite) -> None:
    """Replace the stock registration (django-celery-beat's admin module registers on import)."""
    if site.is_registered(PeriodicTask):
        site.unregister(PeriodicTask)
    site.register(PeriodicTask, GuardedPeriodicTaskAdmin)
