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
        from orchestrator.engines.celery import history  # noqa: F401
