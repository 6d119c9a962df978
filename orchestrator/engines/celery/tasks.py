"""The engine's own Celery tasks, imported so Celery's autodiscovery (``<app>.tasks``) registers
them: the runner every job goes through, the health ping and the lost-run sweeper."""

from __future__ import annotations

from orchestrator.engines.celery import health, history, lost_runs, runner

__all__ = ("health", "history", "lost_runs", "runner")
