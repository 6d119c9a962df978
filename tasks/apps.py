"""The application wing: Celery beat scheduling and the Celery tasks the jobs call."""

from __future__ import annotations

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Application jobs (Celery)"
