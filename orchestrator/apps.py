"""The hall: manifest, classifier, reconciler, history and admin, engine-agnostic."""

from __future__ import annotations

from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
    verbose_name = "Orchestrator"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from orchestrator.engines.celery.startup_hook import on_worker_ready

        # ``on: startup`` jobs run when a worker is ready (``engines.celery.startup_hook``).
        worker_ready.connect(on_worker_ready, dispatch_uid="orchestrator.startup_hook")
