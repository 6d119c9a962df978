"""The application wing: Celery beat scheduling and the Celery tasks the jobs call."""

from __future__ import annotations

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Application jobs (Celery)"

    def ready(self) -> None:
        # Run history is recorded from Celery's signals, including the ones sent by the
        # publishing side (web's run-now, beat): every process must connect them, not only
        # the worker that imports the task modules.
        from tasks import history  # noqa: F401
