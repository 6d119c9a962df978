"""The application's Python jobs: the Celery tasks the manifest's ``task:`` jobs call."""

from __future__ import annotations

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Application jobs (Celery)"
