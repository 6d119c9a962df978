"""The Plan page (what ``jobs plan`` shows, and Apply), and the unmanaged jobs page.

Apply is the same ``reconcile.apply`` as ``jobs apply``: one transaction under the apply lock,
carried out only if the plan under the lock is the one the page showed (its fingerprint travels
with the form), never pruning (deleting jobs stays a deliberate CLI act: ``jobs apply
--prune``). It needs ``orchestrator.apply_manifest``; the page itself only needs view permission
on jobs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from orchestrator import desired, reconcile
from orchestrator.cli.plan import SYMBOLS
from orchestrator.engines import backends
from orchestrator.errors import ManifestInvalid, OrchestratorError
from orchestrator.models import ManagedJob

logger = logging.getLogger(__name__)


def _changes(current: Any) -> list[dict[str, Any]]:
    rows = []
    for change in current.changes:
        if change.action == "unchanged":
            continue
        target = change.target
        if change.action == "update" and "target" in change.diff:
            target = f"{change.diff['target']['from']} -> {change.diff['target']['to']}"
        rows.append(
            {
                "symbol": SYMBOLS[change.action],
                "action": change.action,
                "name": change.name,
                "target": target,
                "diff": [
                    (
                        field,
                        json.dumps(values.get("from"), default=str),
                        json.dumps(values.get("to"), default=str),
                    )
                    for field, values in change.diff.items()
                ]
                if change.action in ("update", "drift")
                else [],
            }
        )
    return rows


def plan_page(model_admin: Any, request: HttpRequest) -> TemplateResponse:
    path = desired.manifest_path()
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": "Plan",
        "manifest": str(path),
        "can_apply": model_admin.has_apply_permission(request),
        "errors": [],
        "changes": [],
        "summary": None,
        "pending": False,
    }
    try:
        current = reconcile.plan(desired.place(desired.load(path)))
    except ManifestInvalid as invalid:
        context["errors"] = [str(error) for error in invalid.errors]
    except OrchestratorError as error:
        context["errors"] = [str(error)]
    else:
        context["changes"] = _changes(current)
        context["summary"] = current.summary()
        context["pending"] = current.pending(prune=False)
        context["fingerprint"] = reconcile.fingerprint(current)
        context["unmanaged"] = len(current.unmanaged)
    return TemplateResponse(request, "admin/orchestrator/plan.html", context)


def apply(model_admin: Any, request: HttpRequest) -> HttpResponseRedirect:
    if not model_admin.has_apply_permission(request):
        raise PermissionDenied
    target = reverse("admin:orchestrator_managedjob_plan")
    # The plan the user saw; without it (a scripted POST) the plan under the lock is applied.
    expected = request.POST.get("fingerprint") or None
    try:
        outcome = reconcile.apply(desired.place(desired.load()), prune=False, expected=expected)
    except reconcile.PlanChanged as changed:
        model_admin.message_user(request, f"not applied: {changed}", messages.WARNING)
        return HttpResponseRedirect(target)
    except ManifestInvalid as invalid:
        model_admin.message_user(request, f"not applied: {invalid}", messages.ERROR)
        return HttpResponseRedirect(target)
    except (OrchestratorError, DatabaseError) as error:
        model_admin.message_user(request, f"not applied: {error}", messages.ERROR)
        return HttpResponseRedirect(target)
    summary = outcome.summary()
    logger.info(
        "manifest applied from the admin", extra={"summary": summary, "user": request.user.pk}
    )
    model_admin.message_user(
        request,
        "applied: " + ", ".join(f"{count} {action}" for action, count in summary.items() if count),
        messages.SUCCESS,
    )
    return HttpResponseRedirect(target)


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
