"""The admin index's "Plan and apply" entry: a user finds the page where they find the jobs.

The index lists registered models; ``ManifestPlan`` (a table-less proxy of the registry) is
registered here only so the entry exists. Its list page is the Plan page's address, under the
Jobs admin, which owns the views and their permission checks.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import URLPattern, path, reverse

from project.admin_base import ReadOnlyAdmin


class ManifestPlanAdmin(ReadOnlyAdmin):
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("orchestrator.view_managedjob")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="orchestrator_manifestplan_changelist",
            )
        ]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:orchestrator_managedjob_plan"))
