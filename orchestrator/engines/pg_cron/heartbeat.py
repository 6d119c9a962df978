"""Is pg_cron's scheduler alive? Read from two heartbeats.

1. Its launcher process: a ``pg_cron launcher`` row in ``pg_stat_activity``. PostgreSQL shows
   other roles' ``backend_type`` only to superusers and members of ``pg_read_all_stats``
   (``pg_monitor``); without that, this signal is ``None`` (unknown), not "stopped".
2. Its work: the newest start in ``cron.job_run_details`` against the newest instant at which
   an active managed pg_cron job was due. A launcher can exist and still schedule nothing (a
   terminated backend restarting in a loop, ``cron.database_name`` changed, a wedged worker
   pool); a due job with no start since is "stalled" however the process looks.

Each ``SchedulerState`` says which it saw, so the admin and ``/metrics`` can show "stopped
since", not only "something is wrong".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from croniter import croniter
from django.db import DatabaseError, connection
from django.utils import timezone

from orchestrator.models import ManagedJob
from orchestrator.operations import trigger_of
from orchestrator.schedules import every_as_cron, zone
from orchestrator.specs import Cron, Every

logger = logging.getLogger(__name__)

#: how late pg_cron may start a due job before the scheduler counts as stalled
LATE = timedelta(seconds=90)

LAUNCHER_SQL = """
SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS can_see,
       (SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher' LIMIT 1),
       (SELECT backend_start FROM pg_stat_activity
         WHERE backend_type = 'pg_cron launcher' LIMIT 1)
"""
LAST_START_SQL = "SELECT start_time FROM cron.job_run_details ORDER BY runid DESC LIMIT 1"


@dataclass(frozen=True, kw_only=True, slots=True)
class SchedulerState:
    #: running | stalled | stopped | idle (no pg_cron job is due) | unknown
    state: str
    launcher_pid: int | None
    launcher_since: datetime | None
    #: the newest start pg_cron recorded for this role's jobs
    last_start: datetime | None
    #: the newest instant an active pg_cron job was due, past ``LATE``
    due_at: datetime | None
    detail: str

    @property
    def healthy(self) -> bool:
        return self.state in ("running", "idle")


def last_due(now: datetime) -> datetime | None:
    """The newest instant, at least ``LATE`` ago, at which an active managed pg_cron job was
    due (and after its last apply: a job scheduled a minute ago owes nothing yet)."""
    seen: dict[tuple[str, str], datetime | None] = {}
    newest: datetime | None = None
    horizon = now - LATE
    jobs = ManagedJob.objects.filter(engine="pg_cron", paused=False).only(
        "definition", "applied_at"
    )
    for job in jobs:
        definition = job.definition
        if not definition.get("enabled", True):
            continue
        trigger = trigger_of(definition)
        if isinstance(trigger, Every) and every_as_cron(trigger.seconds) is None:
            continue
        if not isinstance(trigger, Cron | Every):
            continue
        zone = str(definition.get("timezone") or "UTC")
        key = (repr(trigger), zone)
        if key not in seen:
            seen[key] = _previous(trigger, zone, horizon)
        due = seen[key]
        if due is not None and due > job.applied_at and (newest is None or due > newest):
            newest = due
    return newest


def _previous(trigger: Cron | Every, zone_name: str, before: datetime) -> datetime | None:
    """The schedule's last instant at or before ``before``, by croniter like every schedule."""
    tz: tzinfo
    if isinstance(trigger, Every):
        expr, tz = every_as_cron(trigger.seconds), UTC
    else:
        expr, tz = trigger.expr, zone(zone_name)
    if expr is None:
        return None
    return croniter(expr, before.astimezone(tz)).get_prev(datetime)


@dataclass(frozen=True, kw_only=True, slots=True)
class Launcher:
    """pg_cron's launcher process as ``pg_stat_activity`` shows this role."""

    #: False when this role may not see other roles' ``backend_type`` (``pg_read_all_stats``)
    visible: bool
    pid: int | None
    since: datetime | None

    @property
    def alive(self) -> bool | None:
        """True or False when it can be seen; ``None`` (unknown) when it cannot."""
        if self.pid is not None:
            return True
        return False if self.visible else None


def read_launcher() -> Launcher:
    """The launcher, read now: one cheap query (``/metrics`` asks on every scrape)."""
    with connection.cursor() as cursor:
        cursor.execute(LAUNCHER_SQL)
        can_see, pid, since = cursor.fetchone()
    return Launcher(visible=bool(can_see), pid=pid, since=since)


def scheduler_state(now: datetime | None = None) -> SchedulerState:
    """Both heartbeats, read now."""
    now = now or timezone.now()
    try:
        launcher = read_launcher()
        can_see, pid, since = launcher.visible, launcher.pid, launcher.since
        with connection.cursor() as cursor:
            cursor.execute(LAST_START_SQL)
            row = cursor.fetchone()
    except DatabaseError as error:
        logger.warning("cannot read pg_cron's state", extra={"error": str(error)})
        return SchedulerState(
            state="unknown",
            launcher_pid=None,
            launcher_since=None,
            last_start=None,
            due_at=None,
            detail=f"cannot read pg_cron's state: {error}",
        )
    last_start = row[0] if row else None
    due = last_due(now)
    if can_see and pid is None:
        state, detail = "stopped", "no pg_cron launcher process is running"
    elif due is not None and (last_start is None or last_start < due - timedelta(seconds=5)):
        state = "stalled"
        detail = (
            f"a pg_cron job was due at {due:%Y-%m-%d %H:%M:%S %Z} and none has started since "
            f"{'ever' if last_start is None else f'{last_start:%Y-%m-%d %H:%M:%S %Z}'}"
        )
    elif due is None:
        state, detail = "idle", "no active pg_cron job has been due yet"
    else:
        state, detail = "running", "pg_cron started every job that was due"
    if not can_see:
        detail += " (launcher process not visible: grant pg_read_all_stats to see it)"
    if state in ("stopped", "stalled"):
        logger.warning("pg_cron scheduler is %s", state, extra={"detail": detail})
    return SchedulerState(
        state=state,
        launcher_pid=pid,
        launcher_since=since,
        last_start=last_start,
        due_at=due,
        detail=detail,
    )
