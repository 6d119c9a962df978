"""A django-celery-beat scheduler that dispatches only while it holds a PostgreSQL advisory lock.

Run any number of
``celery beat --scheduler orchestrator.engines.celery.beat:LeaderDatabaseScheduler``: exactly one,
the holder of a session-level advisory lock on a connection of its own, dispatches; the others
poll ``pg_try_advisory_lock`` every ``standby_poll`` seconds and take over as soon as the lock is
free. PostgreSQL frees a session lock the moment its backend ends, and a SIGKILLed beat's socket is
closed by the kernel, so a standby takes over within one poll (2 s by default).

Three guarantees, and how each is kept:

* **One dispatcher.** Before every dispatch the leader *claims* the slot with one statement on the
  lock connection: ``UPDATE periodictask SET last_run_at = <slot> WHERE id = .. AND last_run_at <
  <slot> AND <this session holds the lock>``. If the connection is dead, the statement fails; if
  the lock is gone, or another leader claimed the slot already, it updates nothing. Either way the
  task is not sent. That statement is the fence: no dispatch without a live lock.
* **A dead connection stops dispatching at once.** Besides the claim, each tick (at most once per
  ``check_every`` seconds) runs a cheap query on the lock connection; any ``psycopg.Error`` is loss
  of leadership: the connection is dropped, the scheduler becomes a standby and tries to win the
  lock again. libpq keepalives and ``tcp_user_timeout`` bound how long a half-open network can hide
  a dead peer; the server's ``idle_session_timeout`` frees the lock of a frozen (SIGSTOPped) leader.
* **No re-dispatch after a restart or takeover.** Stock django-celery-beat keeps ``last_run_at`` in
  memory and writes it every ``sync_every`` (3 min), so a new beat re-fires what the old one
  already sent. Here the claim *is* the write, committed before the message is sent, and a new
  leader reloads every entry from the database. A kill between claim and send loses that one slot
  (at most once, never twice); a broker that refuses the send has the slot retried while it still
  matters, or recorded as missed in run history (``beat_send``).

Slots: for interval schedules ``last_run_at`` is set to the *scheduled instant* (``previous +
every``), not to the wall-clock time of dispatch, so slots do not drift and each has a stable
identity; it is sent to the task as the ``scheduled_at`` message header. Missed slots collapse into
the latest one (Celery's own catch-up policy): a beat that was down for an hour sends one message,
not 360. Crontab slots are the whole minute; other schedules use the dispatch time.
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import datetime
from typing import Any

import psycopg
from celery import schedules
from django.conf import settings
from django.db import connections
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from orchestrator.engines.celery.beat_send import ClaimedSlots
from orchestrator.errors import ServiceError

logger = logging.getLogger(__name__)

#: The message header carrying the slot's scheduled instant (ISO 8601, UTC) to the task.
SLOT_HEADER = "scheduled_at"


def lock_key(name: str = "orchestrator:beat-leader") -> int:
    """The advisory lock's 64-bit key: stable across processes and releases (unlike ``hash``)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def connection_kwargs(alias: str = "default") -> dict[str, Any]:
    """libpq parameters for a dedicated lock connection to Django's database ``alias``.

    Keepalives and ``tcp_user_timeout`` make a vanished peer an error within ~10 s on both
    sides; ``idle_session_timeout`` frees the lock of a leader that stopped ticking (frozen,
    swapped out) for a minute, which its next claim then sees as a dead connection.
    """
    db = settings.DATABASES[alias]
    params: dict[str, Any] = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": str(db["PORT"]) if db.get("PORT") else None,
        "application_name": "orchestrator-beat-lock",
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        "options": (
            "-c idle_session_timeout=60s -c statement_timeout=5s "
            "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3"
        ),
    }
    return {key: value for key, value in params.items() if value is not None}


#: Sessions holding the leader's advisory lock (pg_locks splits a bigint key in two).
_LEADERS = """
SELECT count(*) FROM pg_locks
 WHERE locktype = 'advisory' AND granted AND objsubid = 1
   AND classid::bigint = (%(key)s >> 32) & 4294967295 AND objid::bigint = %(key)s & 4294967295
"""


def leader_count(key: int | None = None) -> int:
    """How many sessions hold the beat leader's lock now (0 or 1): is a beat dispatching?
    Read on Django's connection; raises ``DatabaseError`` when it cannot be read."""
    with connections["default"].cursor() as cursor:
        cursor.execute(_LEADERS, {"key": lock_key() if key is None else key})
        (leaders,) = cursor.fetchone()
    return int(leaders)


# The claim: one statement, so "I hold the lock" and "the slot is mine" are decided together.
# pg_locks shows a bigint advisory key as classid = high 32 bits, objid = low 32 bits, objsubid 1.
_CLAIM = """
WITH held AS (
    SELECT 1 FROM pg_locks
    WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
      AND classid::bigint = (%(key)s >> 32) & 4294967295 AND objid::bigint = %(key)s & 4294967295
), claim AS (
    UPDATE django_celery_beat_periodictask
    SET last_run_at = %(slot)s, total_run_count = total_run_count + 1
    WHERE id = %(id)s AND (last_run_at IS NULL OR last_run_at < %(slot)s) AND EXISTS (SELECT 1 FROM held)
    RETURNING id
)
SELECT (SELECT count(*) FROM claim), EXISTS (SELECT 1 FROM held),
       (SELECT last_run_at FROM django_celery_beat_periodictask WHERE id = %(id)s)
"""  # noqa: E501


class LeadershipLost(ServiceError):
    """The beat lock connection failed or the advisory lock is no longer held."""


class LeaderLock:
    """A session-level advisory lock on a connection used for nothing else."""

    def __init__(self, key: int | None = None, alias: str = "default") -> None:
        self.key = lock_key() if key is None else key
        self.alias = alias
        self.connection: psycopg.Connection | None = None

    @property
    def held(self) -> bool:
        return self.connection is not None

    def try_acquire(self) -> bool:
        """Connect if needed and try the lock once; never blocks on another holder."""
        try:
            if self.connection is None or self.connection.closed:
                self.connection = psycopg.connect(autocommit=True, **connection_kwargs(self.alias))
            row = self.connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        except psycopg.Error as error:
            logger.warning("beat lock: cannot reach the database", extra={"error": str(error)})
            self.release()
            return False
        # On False, keep the connection: the next poll reuses it.
        return bool(row and row[0])

    def check(self) -> None:
        """Raise ``LeadershipLost`` unless the lock connection answers and still holds the lock."""
        if self.connection is None:
            raise LeadershipLost("no lock connection")
        try:
            row = self.connection.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND objsubid = 1"
                " AND classid::bigint = (%(key)s >> 32) & 4294967295"
                " AND objid::bigint = %(key)s & 4294967295",
                {"key": self.key},
            ).fetchone()
        except psycopg.Error as error:
            self.release()
            raise LeadershipLost(f"lock connection failed: {error}") from error
        if not row or not row[0]:
            self.release()
            raise LeadershipLost("the advisory lock is no longer held")

    def claim(self, task_id: int, slot: datetime) -> tuple[bool, datetime | None]:
        """Mark ``slot`` as run for periodic task ``task_id``, only while holding the lock.

        Returns (claimed, last_run_at now in the database). Raises ``LeadershipLost``.
        """
        if self.connection is None:
            raise LeadershipLost("no lock connection")
        try:
            row = self.connection.execute(
                _CLAIM, {"key": self.key, "slot": slot, "id": task_id}
            ).fetchone()
        except psycopg.Error as error:
            self.release()
            raise LeadershipLost(f"lock connection failed: {error}") from error
        assert row is not None
        claimed, held, current = row
        if not held:
            self.release()
            raise LeadershipLost("the advisory lock is no longer held")
        return bool(claimed), current

    def release(self) -> None:
        """Unlock, then close. PostgreSQL frees a session lock with its session, but only once
        the server process has exited, after ``close`` returns: a standby polling right then
        would still find the lock taken, so a leader stepping down unlocks first."""
        connection, self.connection = self.connection, None
        if connection is None or connection.closed:
            return
        try:
            connection.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg.Error:
            logger.debug("beat lock: unlock failed on a broken connection; closing frees it")
        try:
            connection.close()
        except psycopg.Error:
            logger.debug("beat lock: close failed on an already broken connection")


def slot_for(entry: ModelEntry, now: datetime) -> datetime:
    """The scheduled instant the due ``entry`` is being run for (see the module docstring)."""
    schedule = entry.schedule
    if isinstance(schedule, schedules.crontab):
        return now.replace(second=0, microsecond=0)
    if type(schedule) is schedules.schedule and schedule.run_every.total_seconds() > 0:
        every = schedule.run_every
        last = entry.last_run_at
        if last is None:
            return now
        if last.tzinfo is None:
            last = last.replace(tzinfo=now.tzinfo)
        due = last + every
        if due > now:  # beat's heap runs a few ms early; never claim the future
            return now
        behind = (now - due) // every
        return due + behind * every
    return now


class LeaderDatabaseScheduler(DatabaseScheduler):
    """``DatabaseScheduler`` that dispatches only as the advisory-lock leader."""

    #: Seconds between lock attempts while standing by (the takeover delay after a leader dies).
    standby_poll = 2.0
    #: Least seconds between liveness checks of the lock connection on idle ticks.
    check_every = 1.0
    _setting_up = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lock = LeaderLock(key=kwargs.pop("lock_key", None))
        self.leading = False
        self._last_check = 0.0
        self._claims: dict[int, datetime] = {}
        self.slots = ClaimedSlots(self)  # claimed slots the broker has not taken yet
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        """Install the default entries without reading the whole schedule.

        A standby never needs the schedule, and a new leader rereads it at takeover anyway (it
        must: another leader may have run entries since), so the stock initial read is skipped.
        """
        self._initial_read = False
        self._schedule: dict[str, Any] = {}
        self._last_full_sync = datetime.now()
        self._setting_up = True  # installing an entry bumps the change stamp: ignore it here
        try:
            super().setup_schedule()
        finally:
            self._setting_up = False
        self._initial_read = True

    def schedule_changed(self) -> bool:
        return False if self._setting_up else super().schedule_changed()

    # ------------------------------------------------------------------ leadership

    def ensure_leadership(self) -> bool:
        """Keep or win the lock; on any doubt, stand by. Called at the start of every tick."""
        if self.leading:
            if time.monotonic() - self._last_check < self.check_every:
                return True
            try:
                self.lock.check()
            except LeadershipLost as error:
                self._step_down(str(error))
                return False
            self._last_check = time.monotonic()
            return True
        if self.lock.try_acquire():
            self._take_over()
            return True
        return False

    def _take_over(self) -> None:
        # Another leader may have run entries since this process last read them: forget the
        # in-memory schedule and reread everything, last_run_at included, from the database.
        self.leading = True
        self._last_check = time.monotonic()
        self._dirty.clear()
        self._initial_read = True
        self._heap = None
        self.old_schedulers = None
        logger.info("beat: this process is now the leader", extra={"lock_key": self.lock.key})

    def _step_down(self, reason: str) -> None:
        if self.leading:
            logger.error("beat: lost leadership, not dispatching", extra={"reason": reason})
        self.leading = False
        self.lock.release()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self.ensure_leadership():
            self.slots.abandon("this beat lost the leadership before the broker took it")
            return self.standby_poll
        self.slots.retry_due()
        interval = super().tick(*args, **kwargs)
        if not self.leading:  # a claim inside this tick found the lock gone
            return self.standby_poll
        return self.slots.next_retry_in(interval)

    # ------------------------------------------------------------------ dispatch

    def reserve(self, entry: ModelEntry) -> ModelEntry:
        """Claim the entry's slot in the database (the fence), then advance it in memory."""
        model = entry.model
        slot = slot_for(entry, entry.default_now())
        try:
            claimed, current = self.lock.claim(model.pk, slot)
        except LeadershipLost as error:
            self._step_down(str(error))
            claimed, current = False, None
        if claimed:
            self._claims[id(entry)] = slot
            model.last_run_at = slot
            model.total_run_count += 1
        elif current is not None:
            logger.warning(
                "beat: slot already claimed, not sending",
                extra={"task": entry.name, "slot": slot.isoformat()},
            )
            model.last_run_at = current
        model.no_changes = True
        # No ``self._dirty.add``: the claim already wrote what the lazy sync would have.
        return self.Entry(model, app=self.app)

    def apply_entry(self, entry: ModelEntry, producer: Any = None) -> None:
        slot = self._claims.pop(id(entry), None)
        if slot is None:
            return
        # ModelEntry cannot be copied (its __reduce__ does not match its __init__), so lend the
        # entry per-dispatch options for the send and put the originals back.
        options = entry.options
        headers = {**options.get("headers", {}), SLOT_HEADER: slot.isoformat()}
        entry.options = {**options, "headers": headers}
        try:
            self.slots.send(entry, slot, producer)  # kept and retried if refused
        finally:
            entry.options = options

    def close(self) -> None:
        self.slots.abandon("beat stopped before the broker took it")
        try:
            super().close()
        finally:
            self.lock.release()
            self.leading = False


def scheduled_at(request: Any) -> datetime | None:
    """The slot a beat-dispatched task runs for, read from its ``request`` (None otherwise)."""
    value = getattr(request, SLOT_HEADER, None)
    if value is None and isinstance(getattr(request, "headers", None), dict):
        value = request.headers.get(SLOT_HEADER)
    if not value:
        return None
    return datetime.fromisoformat(value)


__all__ = ("SLOT_HEADER", "LeaderDatabaseScheduler", "LeaderLock", "scheduled_at", "slot_for")
