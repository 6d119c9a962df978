"""The Celery engine as a Django app: its worker admin page, permissions and run-history signals."""

from __future__ import annotations

from django.apps import AppConfig


class CeleryEngineConfig(AppConfig):
    name = "orchestrator.engines.celery"
    label = "celery_engine"
    verbose_name = "Celery workers"

    def ready(self) -> None:
        # Run history is recorded from Celery's signals, including the ones sent by the
        # publishing side (web's run-now, beat): every process must connect them, not only
        # the worker that imports the task modules.
        from celery.signals import worker_ready

        from orchestrator.engines.celery import history  # noqa: F401
        from orchestrator.engines.celery.startup_hook import on_worker_ready

        # ``on: startup`` jobs run when a worker is ready (``startup_hook``).
        worker_ready.connect(on_worker_ready, dispatch_uid="orchestrator.startup_hook")
