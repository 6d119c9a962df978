"""Operate the Celery worker fleet through remote control: status, ping, drain, resume, scale.

Everything here talks to live workers over the broker (``app.control`` broadcasts and their
replies) and reads queue depths straight from Redis, so it shows what is, not what was configured.

* **Last heartbeat** comes from the workers' own ``worker-heartbeat`` events (sent every 2 s unless
  a worker runs ``--without-heartbeat``), captured for ``heartbeat_wait`` seconds; with no wait, or
  for a worker that sent none in that window, it is the instant the worker answered ``stats``
  (``heartbeat_source`` says which).
* **Queue depths** are ``LLEN`` of each queue's list in Redis, summed over kombu's priority
  sub-queues (``name``, ``name\\x06\\x163``, ``…6``, ``…9``); ``unacked`` is the number of messages
  delivered to some worker and not yet acknowledged (kombu's ``unacked`` hash).
* **Drain** remembers the queues it cancelled in Redis (``orchestrator:fleet:drained:<worker>``),
  so ``resume`` restores exactly those, even from another machine.

Errors carry the exit code the ``fleet`` command uses: 1 for bad input or an unknown worker, 2 when
no worker answered or a wait timed out.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from celery import Celery
from kombu.transport.redis import PRIORITY_STEPS

from orchestrator.errors import OrchestratorError

logger = logging.getLogger(__name__)

#: kombu's separator between a queue name and its priority (kombu.transport.redis.Channel.sep).
PRIORITY_SEP = "\x06\x16"
#: kombu's Redis set of the queues bound to a fanout exchange; every live worker binds its
#: ``<hostname>.<exchange>`` queue to the control exchange (``celery.pidbox``)
BINDINGS = "_kombu.binding.{exchange}"
DRAIN_RECORD = "orchestrator:fleet:drained:{hostname}"


class FleetError(OrchestratorError):
    """Fleet operation failed."""

    exit_code = 1


class UnknownWorker(FleetError):
    """No such worker."""


class NoReply(FleetError):
    """No worker answered."""

    exit_code = 2


class WaitTimeout(FleetError):
    """The worker did not finish in time."""

    exit_code = 2


@dataclass
class WorkerView:
    hostname: str
    pid: int | None
    pool: str
    concurrency: int | None
    processes: list[int]
    queues: list[str]
    active: list[dict[str, Any]] = field(default_factory=list)
    reserved: list[dict[str, Any]] = field(default_factory=list)
    uptime: int | None = None
    #: tasks the worker accepted since it started (its own ``stats`` count)
    processed: int | None = None
    last_heartbeat: str | None = None
    heartbeat_source: str = "reply"
    drained_queues: list[str] = field(default_factory=list)


def _task_summary(task: dict[str, Any]) -> dict[str, Any]:
    started = task.get("time_start")
    return {
        "id": task.get("id"),
        # the job's name for a job run (the runner's ``shadow_name``), else the task's
        "name": task.get("name"),
        "task": task.get("type") or task.get("name"),
        "started_at": datetime.fromtimestamp(started, UTC).isoformat() if started else None,
        "worker_pid": task.get("worker_pid"),
    }


class Fleet:
    """The fleet as seen through one Celery app and its broker."""

    def __init__(self, app: Celery, timeout: float = 1.0) -> None:
        self.app = app
        self.timeout = timeout
        options = app.conf.broker_transport_options or {}
        self.key_prefix = options.get("global_keyprefix", "")

    # ------------------------------------------------------------------ reading

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(
            self.app.conf.broker_url, socket_connect_timeout=3, socket_timeout=3
        )

    def ping(self, hostname: str | None = None) -> list[str]:
        """Hostnames that answered a ping (all workers, or the one named)."""
        destination = [hostname] if hostname else None
        replies = self.app.control.ping(
            destination=destination, timeout=self.timeout, limit=1 if hostname else None
        )
        return sorted(name for reply in replies for name in reply)

    def resolve(self, hostname: str) -> None:
        """Raise ``UnknownWorker`` / ``NoReply`` unless ``hostname`` answers."""
        if not hostname or "@" not in hostname:
            raise UnknownWorker(f"{hostname!r} is not a worker name (expected NAME@HOST)")
        if self.ping(hostname):
            return
        answered = self.ping()
        if not answered:
            raise NoReply(f"worker {hostname!r} did not answer, and neither did any other worker")
        raise UnknownWorker(
            f"worker {hostname!r} did not answer; workers that did: {', '.join(answered)}"
        )

    def bound_workers(self) -> list[str]:
        """The hostnames whose control queue is bound in Redis: the workers a broadcast should
        hear from. Knowing how many lets a broadcast return as soon as they have answered
        instead of always waiting its whole timeout. A worker killed without a clean stop may
        stay bound; then the broadcast waits its timeout, as it would anyway."""
        exchange = f"{self.app.conf.control_exchange}.pidbox"
        suffix = f".{exchange}"
        client = self.redis()
        try:
            members = client.smembers(f"{self.key_prefix}{BINDINGS.format(exchange=exchange)}")
        except redis.RedisError:
            return []  # the broadcast below says what is wrong with the broker
        finally:
            client.close()
        names = []
        for member in members:
            text = member.decode("utf-8", "replace") if isinstance(member, bytes) else member
            queue = text.rsplit(PRIORITY_SEP, 1)[-1]
            if queue.endswith(suffix):
                names.append(queue[: -len(suffix)])
        return sorted(names)

    def heartbeats(self, wait: float) -> dict[str, datetime]:
        """The latest ``worker-heartbeat`` instant per worker seen within ``wait`` seconds."""
        seen: dict[str, datetime] = {}
        if wait <= 0:
            return seen

        def on_heartbeat(event: dict[str, Any]) -> None:
            seen[event["hostname"]] = datetime.fromtimestamp(event["timestamp"], UTC)

        deadline = time.monotonic() + wait
        with self.app.connection_for_read() as connection:
            receiver = self.app.events.Receiver(
                connection, handlers={"worker-heartbeat": on_heartbeat}
            )
            with receiver.consumer_context() as (conn, _channel, _consumers):
                while (remaining := deadline - time.monotonic()) > 0:
                    try:
                        conn.drain_events(timeout=remaining)
                    except TimeoutError:  # socket.timeout is TimeoutError
                        break
        return seen

    def workers(self, hostname: str | None = None, heartbeat_wait: float = 0.0) -> list[WorkerView]:
        """Every worker that answered ``stats`` (or just ``hostname``), with its live state."""
        # A broadcast waits its whole timeout unless told how many replies to expect: one for a
        # named worker, else as many as are bound (``bound_workers``); after ``stats``, as many
        # as answered it.
        bound = [] if hostname else self.bound_workers()
        expected = 1 if hostname else (len(bound) or None)
        inspect = self.app.control.inspect(
            destination=[hostname] if hostname else None, timeout=self.timeout, limit=expected
        )
        stats = inspect.stats() or {}
        answered_at = datetime.now(UTC)
        if not stats:
            return []
        inspect = self.app.control.inspect(
            destination=sorted(stats), timeout=self.timeout, limit=len(stats)
        )
        active = inspect.active() or {}
        reserved = inspect.reserved() or {}
        queues = inspect.active_queues() or {}
        beats = self.heartbeats(heartbeat_wait)
        views = []
        for name in sorted(stats):
            info = stats[name]
            pool = info.get("pool", {})
            # After pool_grow/shrink the live process list is the truth; max-concurrency is
            # the start-up figure.
            concurrency = len(pool.get("processes", [])) or pool.get("max-concurrency")
            beat = beats.get(name)
            views.append(
                WorkerView(
                    hostname=name,
                    pid=info.get("pid"),
                    pool=pool.get("implementation", "?").rsplit(":", 1)[-1],
                    concurrency=concurrency if isinstance(concurrency, int) else None,
                    processes=list(pool.get("processes", [])),
                    queues=sorted(q["name"] for q in queues.get(name, [])),
                    active=[_task_summary(t) for t in active.get(name, [])],
                    reserved=[_task_summary(t) for t in reserved.get(name, [])],
                    uptime=info.get("uptime"),
                    processed=sum((info.get("total") or {}).values()),
                    last_heartbeat=(beat or answered_at).isoformat(),
                    heartbeat_source="event" if beat else "reply",
                    drained_queues=[q["name"] for q in self.drain_record(name)],
                )
            )
        return views

    def queue_depths(self, names: Iterable[str]) -> dict[str, Any]:
        """``{"queues": [{"name", "depth", "by_priority"}], "unacked": n}`` read from Redis."""
        names = sorted(set(names))
        client = self.redis()
        try:
            pipe = client.pipeline(transaction=False)
            for name in names:
                for step in PRIORITY_STEPS:
                    pipe.llen(self._queue_key(name, step))
            pipe.hlen(f"{self.key_prefix}unacked")
            counts = pipe.execute()
        except redis.RedisError as error:
            raise NoReply(f"cannot read queue depths from Redis: {error}") from error
        finally:
            client.close()
        queues = []
        for index, name in enumerate(names):
            row = counts[index * len(PRIORITY_STEPS) : (index + 1) * len(PRIORITY_STEPS)]
            by_priority = {str(step): n for step, n in zip(PRIORITY_STEPS, row, strict=True) if n}
            queues.append({"name": name, "depth": sum(row), "by_priority": by_priority})
        return {"queues": queues, "unacked": counts[-1]}

    def _queue_key(self, name: str, step: int) -> str:
        return (
            f"{self.key_prefix}{name}{PRIORITY_SEP}{step}" if step else f"{self.key_prefix}{name}"
        )

    def status(self, heartbeat_wait: float = 0.0) -> dict[str, Any]:
        """The whole live view: workers, and the depth of every queue any of them consumes."""
        views = self.workers(heartbeat_wait=heartbeat_wait)
        names = {self.app.conf.task_default_queue}
        for view in views:
            names.update(view.queues, view.drained_queues)
        return {"workers": [asdict(view) for view in views], **self.queue_depths(names)}

    # ------------------------------------------------------------------ acting

    def drain_record(self, hostname: str) -> list[dict[str, Any]]:
        client = self.redis()
        try:
            raw = client.get(DRAIN_RECORD.format(hostname=hostname))
        except redis.RedisError as error:
            raise NoReply(f"cannot read the drain record of {hostname!r}: {error}") from error
        finally:
            client.close()
        return json.loads(raw) if raw else []

    def _write_record(self, hostname: str, queues: list[dict[str, Any]] | None) -> None:
        client = self.redis()
        try:
            key = DRAIN_RECORD.format(hostname=hostname)
            if queues:
                client.set(key, json.dumps(queues))
            else:
                client.delete(key)
        except redis.RedisError as error:
            raise NoReply(f"cannot write the drain record of {hostname!r}: {error}") from error
        finally:
            client.close()

    def drain(
        self,
        hostname: str,
        timeout: float = 300.0,
        poll: float = 1.0,
        progress: Callable[[int, int, float], None] | None = None,
    ) -> dict[str, Any]:
        """Stop ``hostname`` consuming every queue, then wait for its active and reserved tasks."""
        self.resolve(hostname)
        inspect = self.app.control.inspect(destination=[hostname], timeout=self.timeout, limit=1)
        consumed = (inspect.active_queues() or {}).get(hostname, [])
        queues = [
            {
                "name": q["name"],
                "exchange": q["exchange"]["name"],
                "exchange_type": q["exchange"]["type"],
                "routing_key": q["routing_key"],
            }
            for q in consumed
        ]
        if queues:  # draining a drained worker must not forget what it consumed before
            self._write_record(hostname, queues)
        for queue in queues:
            self.app.control.cancel_consumer(
                queue["name"], destination=[hostname], reply=True, timeout=self.timeout, limit=1
            )
        logger.info("fleet: draining", extra={"worker": hostname, "queues": queues})
        started = time.monotonic()
        while True:
            view = self.workers(hostname)
            if not view:
                raise NoReply(f"worker {hostname!r} stopped answering while draining")
            busy, waiting = len(view[0].active), len(view[0].reserved)
            elapsed = time.monotonic() - started
            if progress:
                progress(busy, waiting, elapsed)
            if busy == 0 and waiting == 0:
                break
            if elapsed >= timeout:
                raise WaitTimeout(
                    f"worker {hostname!r} still has {busy} active and {waiting} reserved tasks "
                    f"after {timeout:g}s; it consumes nothing now (`fleet resume {hostname}` "
                    "undoes the drain)"
                )
            time.sleep(poll)
        return {
            "worker": hostname,
            "queues": [q["name"] for q in queues]
            or [q["name"] for q in self.drain_record(hostname)],
            "drained": True,
            "waited": round(time.monotonic() - started, 3),
        }

    def resume(self, hostname: str) -> dict[str, Any]:
        """Consume again the queues the last drain of ``hostname`` cancelled."""
        self.resolve(hostname)
        queues = self.drain_record(hostname)
        if not queues:
            raise UnknownWorker(f"worker {hostname!r} has no drain to undo: it was not drained")
        for queue in queues:
            replies = self.app.control.add_consumer(
                queue["name"],
                exchange=queue["exchange"],
                exchange_type=queue["exchange_type"],
                routing_key=queue["routing_key"],
                destination=[hostname],
                reply=True,
                timeout=self.timeout,
                limit=1,
            )
            if not replies:
                raise NoReply(f"worker {hostname!r} did not confirm consuming {queue['name']!r}")
        self._write_record(hostname, None)
        logger.info("fleet: resumed", extra={"worker": hostname, "queues": queues})
        return {"worker": hostname, "queues": [q["name"] for q in queues], "resumed": True}

    def scale(self, hostname: str, size: int, timeout: float = 30.0) -> dict[str, Any]:
        """Grow or shrink the prefork pool of ``hostname`` to ``size`` processes."""
        if size < 1:
            raise FleetError(f"cannot scale worker {hostname!r} to {size}: at least 1 process")
        self.resolve(hostname)
        before = self.workers(hostname)[0]
        current = len(before.processes)
        if not before.processes:
            raise FleetError(
                f"worker {hostname!r} runs the {before.pool} pool, which cannot grow or shrink"
            )
        delta = size - current
        if delta:
            command = self.app.control.pool_grow if delta > 0 else self.app.control.pool_shrink
            replies = command(
                abs(delta), destination=[hostname], reply=True, timeout=self.timeout, limit=1
            )
            errors = [r[hostname].get("error") for r in replies if hostname in r]
            if not replies:
                raise NoReply(f"worker {hostname!r} did not answer the scale request")
            if any(errors):
                raise FleetError(f"worker {hostname!r} refused to scale: {errors[0]}")
        deadline = time.monotonic() + timeout
        while True:
            now = self.workers(hostname)
            processes = len(now[0].processes) if now else -1
            if processes == size:
                break
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"worker {hostname!r} has {processes} processes, not {size}, after {timeout:g}s"
                )
            time.sleep(0.5)
        logger.info("fleet: scaled", extra={"worker": hostname, "from": current, "to": size})
        return {"worker": hostname, "from": current, "to": size}
