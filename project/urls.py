"""URL routes: the admin is the product's front end; ``/`` leads there; ``/metrics`` for
Prometheus (``orchestrator.metrics``)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from orchestrator.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
