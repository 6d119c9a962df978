"""The Django project: settings from the environment, URLs, the Celery app and WSGI entry."""

from __future__ import annotations

# Importing the Celery app here makes @shared_task bind to it whenever Django starts.
from project.celery import app as celery_app

__all__ = ("celery_app",)
