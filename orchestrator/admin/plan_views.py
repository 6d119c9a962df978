"""The Plan and apply pages, and the unmanaged jobs page.

Three steps, like ``jobs plan`` then ``jobs apply``: the Plan page shows each job's changes
field by field (``plan_diff``); "Review and apply" opens a confirmation page that re-plans and
says in words what an apply will do; only its button applies. The confirmation carries the
fingerprint of the plan it showed, and ``reconcile.apply`` refuses (``PlanChanged``) when the
plan under the apply lock differs, so what is applied is exactly what was confirmed. An apply
POST without a fingerprint applies nothing and sends the user to the confirmation.

Applying needs ``orchestrator.apply_manifest``; deleting jobs that left the manifest (prune)
needs ``orchestrator.prune_jobs`` as well, checked on the server: the option is not shown to a
user without it, and a forged ``prune`` answers 403. The pages themselves need view permission
on jobs.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from orchestrator import desired, reconcile
from orchestrator.admin import plan_diff
from orchestrator.engines import backends
from orchestrator.errors import ManifestInvalid, OrchestratorError
from orchestrator.models import ManagedJob

logger = logging.getLogger(__name__)


def _wants_prune(model_admin: Any, request: HttpRequest, data: Any) -> bool:
    """Whether the request asks to prune; asking without the permission is refused (403)."""
    if data.get("prune") not in ("1", "on", "true"):
        return False
    if not model_admin.has_prune_permission(request):
        raise PermissionDenied
    return True


def _page(model_admin: Any, request: HttpRequest, *, confirm: bool) -> TemplateResponse:
    prune = _wants_prune(model_admin, request, request.GET) if confirm else False
    path = desired.manifest_path()
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Confirm the apply" if confirm else "Plan and apply",
        "confirm": confirm,
        "prune": prune,
        "manifest": str(path),
        "can_apply": model_admin.has_apply_permission(request),
        "can_prune": model_admin.has_prune_permission(request),
        "errors": [],
        "cards": [],
        "summary": None,
        "pending": 0,
    }
    try:
        current = reconcile.plan(desired.place(desired.load(path)))
    except ManifestInvalid as invalid:
        context["errors"] = [str(error) for error in invalid.errors]
    except OrchestratorError as error:
        context["errors"] = [str(error)]
    else:
        context.update(
            cards=plan_diff.cards(current, prune=prune),
            summary=current.summary(),
            pending=plan_diff.pending_count(current, prune),
            orphans=len(current.of("delete")),
            consequences=plan_diff.consequences(current, prune),
            fingerprint=reconcile.fingerprint(current),
        )
    template = "admin/orchestrator/plan.html"
    return TemplateResponse(request, template, context)


def plan_page(model_admin: Any, request: HttpRequest) -> TemplateResponse:
    """The plan: every job an apply would change, field by field."""
    return _page(model_admin, request, confirm=False)


def confirm_page(model_admin: Any, request: HttpRequest) -> TemplateResponse:
    """The confirmation: the plan as of now, what applying it does, and the Apply button."""
    if not model_admin.has_apply_permission(request):
        raise PermissionDenied
    return _page(model_admin, request, confirm=True)


def apply(model_admin: Any, request: HttpRequest) -> HttpResponseRedirect:
    """Apply the confirmed plan (its fingerprint in the form), or nothing."""
    if not model_admin.has_apply_permission(request):
        raise PermissionDenied
    prune = _wants_prune(model_admin, request, request.POST)
    plan_url = reverse("admin:orchestrator_managedjob_plan")
    expected = request.POST.get("fingerprint") or None
    if expected is None:
        model_admin.message_user(
            request, "Nothing was applied: review the changes and confirm them first.",
            messages.WARNING,
        )  # fmt: skip
        return HttpResponseRedirect(reverse("admin:orchestrator_managedjob_confirm"))
    try:
        outcome = reconcile.apply(desired.place(desired.load()), prune=prune, expected=expected)
    except reconcile.PlanChanged:
        model_admin.message_user(
            request,
            "Nothing was applied: the manifest or the engines changed after you confirmed. "
            "Here is the plan as it is now; review it and apply again.",
            messages.WARNING,
        )
        return HttpResponseRedirect(plan_url)
    except ManifestInvalid as invalid:
        model_admin.message_user(
            request, f"Nothing was applied: the manifest is invalid. {invalid}", messages.ERROR
        )
        return HttpResponseRedirect(plan_url)
    except OrchestratorError as error:
        model_admin.message_user(request, f"Nothing was applied: {error}", messages.ERROR)
        return HttpResponseRedirect(plan_url)
    except DatabaseError as error:
        # The database's own words may name tables and SQL: they go to the log, not the page.
        logger.warning("apply from the admin failed", extra={"error": str(error)})
        model_admin.message_user(
            request,
            "Nothing was applied: the database refused the changes (the server log says why).",
            messages.ERROR,
        )
        return HttpResponseRedirect(plan_url)
    summary = outcome.summary()
    logger.info(
        "manifest applied from the admin",
        extra={"summary": summary, "prune": prune, "user": request.user.pk},
    )
    model_admin.message_user(request, plan_diff.applied_message(summary), messages.SUCCESS)
    return HttpResponseRedirect(plan_url)


def unmanaged_jobs() -> list[dict[str, Any]]:
    """Every engine job the registry does not record: made by hand, never touched."""
    managed = set(ManagedJob.objects.values_list("engine", "engine_id"))
    rows = []
    for engine, backend in backends().items():
        for job in backend.live().values():
            if (engine, job.engine_id) in managed:
                continue
            state = job.state
            schedule = state.get("schedule")
            if isinstance(schedule, dict):
                schedule = schedule.get("cron") or schedule.get("seconds") or schedule.get("kind")
            rows.append(
                {
                    "engine": engine,
                    "engine_id": job.engine_id,
                    "name": job.name,
                    "active": job.active,
                    "schedule": schedule,
                    "what": state.get("command") or state.get("task") or "",
                }
            )
    return sorted(rows, key=lambda row: (row["engine"], row["name"]))


def unmanaged_page(model_admin: Any, request: HttpRequest) -> TemplateResponse:
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Unmanaged jobs",
        "jobs": unmanaged_jobs(),
    }
    return TemplateResponse(request, "admin/orchestrator/unmanaged.html", context)
