"""Admin "Workers" page: the live fleet of ``manage.py fleet status``, with drain, resume and
pool scaling, each behind a confirmation.

Seeing the page needs ``celery_engine.view_worker``; draining or resuming needs
``celery_engine.drain_worker``, growing or shrinking a pool ``celery_engine.scale_worker``
(checked on the confirmation page and on every POST: 403 otherwise; the buttons are not shown
without them). The buttons lead to a confirmation page saying what will happen; only its
CSRF-protected POST acts. A web request never waits minutes: a drain stops consumption at once
and the page shows the running tasks finishing; a scale waits a few seconds for the pool.

Per worker the page shows what Celery counts (tasks accepted since the worker started, its
``stats``), the failed runs run history recorded on it since then, and its active tasks by
job name (the runner's ``shadow_name``), each linked to its job.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from orchestrator.engines.celery.fleet import Fleet, FleetError, WaitTimeout
from orchestrator.engines.celery.models import Worker
from orchestrator.models import JobRun, ManagedJob, RunStatus
from project.admin_base import ReadOnlyAdmin

DRAIN_PERMISSION = "celery_engine.drain_worker"
SCALE_PERMISSION = "celery_engine.scale_worker"
#: how long a reply to the page's broadcasts may take (a worker busy in a long task still
#: answers: control commands run in the worker's main process)
PAGE_TIMEOUT = 1.0
#: how long a scale from the web waits for the pool to reach its new size
SCALE_WAIT = 5.0
#: Celery's pool classes by the name an operator passes to ``--pool``
POOL_NAMES = {"TaskPool": "prefork", "SoloPool": "solo", "ThreadPool": "threads"}
ACTIONS = {
    "drain": (DRAIN_PERMISSION, "Drain"),
    "resume": (DRAIN_PERMISSION, "Resume"),
    "scale": (SCALE_PERMISSION, "Scale"),
}


def _fleet() -> Fleet:
    from project.celery import app

    return Fleet(app, timeout=PAGE_TIMEOUT)


def failed_since_start(workers: list[dict[str, Any]]) -> dict[str, int]:
    """Failed runs run history recorded on each worker since it started (one query)."""
    now = timezone.now()
    counts: dict[str, Any] = {}
    for index, view in enumerate(workers):
        since = now - timedelta(seconds=view.get("uptime") or 0)
        counts[f"w{index}"] = Count(
            "id", filter=Q(worker=view["hostname"], started__gte=since)
        )  # fmt: skip
    if not counts:
        return {}
    found = JobRun.objects.filter(status=RunStatus.FAILED).aggregate(**counts)
    return {view["hostname"]: found[f"w{index}"] for index, view in enumerate(workers)}


def _link_jobs(workers: list[dict[str, Any]]) -> None:
    """Give each active or reserved task of a managed job the address of its job's page."""
    names = {task["name"] for view in workers for task in (*view["active"], *view["reserved"])}
    pages = dict(ManagedJob.objects.filter(name__in=names).values_list("name", "pk"))
    for view in workers:
        for task in (*view["active"], *view["reserved"]):
            pk = pages.get(task["name"])
            task["job_url"] = (
                reverse("admin:orchestrator_managedjob_change", args=[pk]) if pk else None
            )


@admin.register(Worker)
class WorkerAdmin(ReadOnlyAdmin):
    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.changelist_view), name="celery_engine_worker_changelist"),
            path("confirm/", wrap(self.confirm_view), name="celery_engine_worker_confirm"),
            path("drain/", wrap(require_POST(self.drain_view)), name="celery_engine_worker_drain"),
            path(
                "resume/", wrap(require_POST(self.resume_view)), name="celery_engine_worker_resume"
            ),
            path("scale/", wrap(require_POST(self.scale_view)), name="celery_engine_worker_scale"),
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        status: dict[str, Any] = {"workers": [], "queues": [], "unacked": None}
        error = None
        started = time.monotonic()
        try:
            status = _fleet().status(heartbeat_wait=0)
        except FleetError as failure:
            error = str(failure)
        took = time.monotonic() - started
        failed = failed_since_start(status["workers"])
        for view in status["workers"]:
            view["failed"] = failed.get(view["hostname"], 0)
            view["pool_name"] = POOL_NAMES.get(view["pool"], view["pool"])
        _link_jobs(status["workers"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Workers",
            "opts": self.model._meta,
            "status": status,
            "error": error,
            "as_of": timezone.now(),
            "took": took,
            "can_drain": request.user.has_perm(DRAIN_PERMISSION),
            "can_scale": request.user.has_perm(SCALE_PERMISSION),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/celery_engine/worker/change_list.html", context)

    # ------------------------------------------------------------------ confirmation
    def confirm_view(self, request: HttpRequest) -> HttpResponse:
        """What a drain, resume or scale will do, and the button that does it."""
        action = request.GET.get("action", "")
        if action not in ACTIONS:
            return HttpResponseRedirect(reverse("admin:celery_engine_worker_changelist"))
        permission, verb = ACTIONS[action]
        if not request.user.has_perm(permission):
            raise PermissionDenied
        hostname = request.GET.get("worker", "")
        size = _size(request.GET.get("size"))
        try:
            view = _fleet().workers(hostname)
        except FleetError as failure:
            messages.error(request, str(failure))
            view = []
        if not view:
            messages.error(request, f"Worker {hostname} did not answer; nothing was changed.")
            return HttpResponseRedirect(reverse("admin:celery_engine_worker_changelist"))
        worker = view[0]
        busy = len(worker.active) + len(worker.reserved)
        if action == "drain":
            what = (
                f"{hostname} stops taking tasks from {', '.join(worker.queues) or 'no queue'}. "
                f"Its {busy} running or reserved task(s) finish; nothing new starts on it "
                "until you resume it."
            )
        elif action == "resume":
            what = f"{hostname} takes tasks again from the queues it consumed before the drain."
        else:
            if size is None:
                messages.error(request, "Scale needs a pool size of at least 1.")
                return HttpResponseRedirect(reverse("admin:celery_engine_worker_changelist"))
            what = (
                f"{hostname}'s pool goes from {worker.concurrency} to {size} process"
                f"{'es' if size != 1 else ''}"
                + (
                    "; processes leave only once their current task is done."
                    if size < (worker.concurrency or 0)
                    else "."
                )
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb} {hostname}?",
            "opts": self.model._meta,
            "action": action,
            "verb": verb,
            "worker": worker,
            "size": size,
            "what": what,
        }
        return TemplateResponse(request, "admin/celery_engine/worker/confirm.html", context)

    # ------------------------------------------------------------------ acting
    def _act(self, request: HttpRequest, action: str) -> HttpResponse:
        permission, _verb = ACTIONS[action]
        if not request.user.has_perm(permission):
            raise PermissionDenied
        hostname = request.POST.get("worker", "")
        fleet = _fleet()
        try:
            if action == "drain":
                fleet.drain(hostname, timeout=0)
                messages.success(request, f"{hostname} drained: it takes no new tasks.")
            elif action == "resume":
                result = fleet.resume(hostname)
                queues = ", ".join(result["queues"])
                messages.success(request, f"{hostname} takes tasks from {queues} again.")
            else:
                size = _size(request.POST.get("size"))
                if size is None:
                    messages.error(request, "Scale needs a pool size of at least 1.")
                else:
                    result = fleet.scale(hostname, size, timeout=SCALE_WAIT)
                    messages.success(
                        request, f"{hostname} runs {result['to']} processes (was {result['from']})."
                    )
        except WaitTimeout:
            messages.info(
                request,
                f"{hostname} was told; it is still finishing running tasks (refresh to follow).",
            )
        except FleetError as failure:
            messages.error(request, str(failure))
        return HttpResponseRedirect(reverse("admin:celery_engine_worker_changelist"))

    def drain_view(self, request: HttpRequest) -> HttpResponse:
        return self._act(request, "drain")

    def resume_view(self, request: HttpRequest) -> HttpResponse:
        return self._act(request, "resume")

    def scale_view(self, request: HttpRequest) -> HttpResponse:
        return self._act(request, "scale")


def _size(value: str | None) -> int | None:
    """A requested pool size: a whole number from 1 to 256, else None."""
    try:
        size = int(value or "")
    except ValueError:
        return None
    return size if 1 <= size <= 256 else None
