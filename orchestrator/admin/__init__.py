"""The orchestrator's admin: Jobs, Runs, Plan and unmanaged jobs, and a guarded beat admin.

Django's admin autodiscovery imports this package; registering here puts every page of both
engines in one admin site.
"""

from __future__ import annotations

from django.contrib import admin

from orchestrator.admin import beat
from orchestrator.admin.jobs import ManagedJobAdmin
from orchestrator.admin.plan_entry import ManifestPlanAdmin
from orchestrator.admin.runs import JobRunAdmin
from orchestrator.models import JobRun, ManagedJob, ManifestPlan

admin.site.register(ManagedJob, ManagedJobAdmin)
admin.site.register(ManifestPlan, ManifestPlanAdmin)
admin.site.register(JobRun, JobRunAdmin)
beat.install(admin.site)
