"""Import every task module, so Celery's autodiscovery (which looks for ``<app>.tasks``) registers
the tasks of this wing under their module names (``tasks.health.ping``, ...)."""

from __future__ import annotations

from tasks import health, runner

__all__ = ("health", "runner")
