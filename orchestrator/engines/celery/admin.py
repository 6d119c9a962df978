"""Admin "Workers" page: the live fleet view of ``manage.py fleet status``, with drain/resume.

Seeing the page needs ``celery_engine.view_worker``; draining or resuming needs
``celery_engine.drain_worker`` (checked on every POST; 403 otherwise). The buttons are
CSRF-protected POST forms, as every admin view is. A drain from the web does not wait for
running tasks (a request must not hang for minutes): the worker stops consuming at once and the
page shows its tasks finishing.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

from orchestrator.engines.celery.fleet import Fleet, FleetError, WaitTimeout
from orchestrator.engines.celery.models import Worker
from project.admin_base import ReadOnlyAdmin

DRAIN_PERMISSION = "celery_engine.drain_worker"


def _fleet() -> Fleet:
    from project.celery import app

    return Fleet(app, timeout=1.0)


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="celery_engine_worker_changelist"),
            path("drain/", wrap(require_POST(self.drain_view)), name="celery_engine_worker_drain"),
            path(
                "resume/", wrap(require_POST(self.resume_view)), name="celery_engine_worker_resume"
            ),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        status: dict[str, Any] = {"workers": [], "queues": [], "unacked": None}
        error = None
        try:
            status = _fleet().status(heartbeat_wait=0)
        except FleetError as failure:
            error = str(failure)
        context = {
            **self.admin_site.each_context(request),
            "title": "Workers",
            "opts": self.model._meta,
            "status": status,
            "error": error,
            "can_drain": request.user.has_perm(DRAIN_PERMISSION),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/celery_engine/worker/change_list.html", context)

    def _act(self, request: HttpRequest, action: str) -> HttpResponse:
        if not request.user.has_perm(DRAIN_PERMISSION):
            raise PermissionDenied
        hostname = request.POST.get("worker", "")
        fleet = _fleet()
        try:
            if action == "drain":
                fleet.drain(hostname, timeout=0)
                messages.success(request, f"{hostname} drained: it consumes nothing now.")
            else:
                result = fleet.resume(hostname)
                queues = ", ".join(result["queues"])
                messages.success(request, f"{hostname} consumes {queues} again.")
        except WaitTimeout:
            messages.info(
                request,
                f"{hostname} stopped consuming; its running tasks are finishing.",
            )
        except FleetError as failure:
            messages.error(request, str(failure))
        return HttpResponseRedirect(reverse("admin:celery_engine_worker_changelist"))

    def drain_view(self, request: HttpRequest) -> HttpResponse:
        return self._act(request, "drain")

    def resume_view(self, request: HttpRequest) -> HttpResponse:
        return self._act(request, "resume")
