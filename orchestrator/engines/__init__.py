"""Engines as the hall sees them: the ``Backend`` protocol and the configured instances."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from orchestrator.engines.base import Backend


@cache
def backends() -> dict[str, Backend]:
    """The configured backends by engine name (settings.ORCHESTRATOR_BACKENDS, dotted paths).

    The hall names the wings' backends only here, by string, so it never imports their modules.
    """
    configured = getattr(
        settings,
        "ORCHESTRATOR_BACKENDS",
        {
            "pg_cron": "orchestrator.engines.pg_cron.backend.PgCronBackend",
            "celery": "orchestrator.engines.celery.backend.CeleryBeatBackend",
        },
    )
    return {engine: import_string(path)() for engine, path in configured.items()}
