"""How long a Celery job may take before Redis would deliver it a second time.

Redis (kombu's virtual transport) puts an unacknowledged message back on its queue once it has been
out longer than ``visibility_timeout``. With ``acks_late`` a message stays unacknowledged while its
task waits for its countdown/ETA *and* while it runs, so a job whose countdown plus timeout exceeds
the visibility timeout would run twice. The manifest validator asks ``check_fits`` and reports the
returned message against the job's ``timeout`` field; the settings' hard time limit bounds the
rest. A safety margin is kept for the time a message spends reserved before it starts.
"""

from __future__ import annotations

from django.conf import settings

#: Seconds kept free below the visibility timeout: queueing and prefetch before a job starts.
MARGIN_SECONDS = 15 * 60


def visibility_timeout() -> float:
    """The broker's visibility timeout in seconds, as configured."""
    return float(settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"])


def max_job_seconds() -> float:
    """The longest countdown + timeout a job may declare."""
    return visibility_timeout() - MARGIN_SECONDS


def check_fits(timeout: float | None, countdown: float | None = None) -> str | None:
    """None when a job's ``timeout`` (+ ``countdown``) fits, else a message saying why not."""
    total = (timeout or 0) + (countdown or 0)
    limit = max_job_seconds()
    if total <= limit:
        return None
    return (
        f"{total:g}s (timeout + countdown) exceeds {limit:g}s, the broker's visibility timeout "
        f"({visibility_timeout():g}s) less a {MARGIN_SECONDS}s margin: Redis would deliver the "
        "job again while it still runs. Shorten it, or raise ORCHESTRATOR_VISIBILITY_TIMEOUT."
    )
