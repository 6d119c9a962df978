"""``manage.py fleet status | ping | drain W | resume W | scale W N [--format json]``.

The operator's handle on the Celery workers (logic in ``orchestrator.engines.celery.fleet``).
Exit codes: 0 done; 1 bad input or an unknown worker; 2 no worker answered, or a drain/scale did
not finish within ``--timeout``. With ``--format json`` stdout holds exactly one JSON document;
drain progress then goes to stderr. Quiet by default and coloured only on a terminal, as every
manage.py command (``orchestrator.cli.command``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from orchestrator.cli.command import HelpFormatter, OperatorCommand
from orchestrator.cli.terminal import Cell, table
from orchestrator.engines.celery.fleet import Fleet, FleetError

EPILOG = """\
exit status:
  0  done
  1  bad input, or an unknown worker
  2  no worker answered, or a drain/scale did not finish within --timeout; also a
     command line argparse rejects, as for every manage.py command

With --format json, stdout holds exactly one JSON document (drain progress goes to stderr).
-v 2 shows the INFO logs on stderr; colour only on a terminal (--no-color, --force-color).
"""


class Command(OperatorCommand):
    help = "Inspect and operate the Celery worker fleet."
    epilog = EPILOG

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=("text", "json"), default="text")
        parser.add_argument(
            "--reply-timeout",
            type=float,
            default=1.0,
            help="seconds to wait for workers' replies to each broadcast (default 1)",
        )
        commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        status = commands.add_parser(
            "status", formatter_class=HelpFormatter, help="workers, their tasks, and queue depths"
        )
        status.add_argument(
            "--heartbeat-wait",
            type=float,
            default=2.5,
            help="seconds to listen for worker-heartbeat events (0: use the reply time)",
        )
        ping = commands.add_parser(
            "ping", formatter_class=HelpFormatter, help="which workers answer"
        )
        drain = commands.add_parser(
            "drain",
            formatter_class=HelpFormatter,
            help="stop a worker consuming and wait for its tasks",
        )
        drain.add_argument("worker", help="worker hostname, e.g. worker1@host")
        drain.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
        resume = commands.add_parser(
            "resume", formatter_class=HelpFormatter, help="consume again the queues a drain stopped"
        )
        resume.add_argument("worker")
        scale = commands.add_parser(
            "scale",
            formatter_class=HelpFormatter,
            help="grow or shrink a worker's pool to N processes",
        )
        scale.add_argument("worker")
        scale.add_argument("size", type=int, metavar="N")
        scale.add_argument("--timeout", type=float, default=30.0)
        for sub in (status, ping, drain, resume, scale):
            # Accepted after the action too; SUPPRESS keeps a main-parser --format from being
            # overwritten by the sub-parser's default.
            sub.add_argument("--format", choices=("text", "json"), default=argparse.SUPPRESS)
            self.add_common_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        from project.celery import app

        self.as_json = (options.get("format") or "text") == "json"
        fleet = Fleet(app, timeout=options["reply_timeout"])
        action = options["action"]
        try:
            if action == "status":
                result = fleet.status(heartbeat_wait=options["heartbeat_wait"])
                self._emit(result, self._status_text)
                if not result["workers"]:
                    raise CommandError("no worker answered", returncode=2)
            elif action == "ping":
                answered = fleet.ping()
                if not answered:
                    raise CommandError("no worker answered the ping", returncode=2)
                self._emit({"workers": answered}, lambda r: [f"{h}: pong" for h in r["workers"]])
            elif action == "drain":
                result = fleet.drain(
                    options["worker"], timeout=options["timeout"], progress=self._progress
                )
                self._emit(
                    result,
                    lambda r: [f"{r['worker']}: drained (was consuming {', '.join(r['queues'])})"],
                )
            elif action == "resume":
                result = fleet.resume(options["worker"])
                self._emit(
                    result, lambda r: [f"{r['worker']}: consuming {', '.join(r['queues'])} again"]
                )
            elif action == "scale":
                result = fleet.scale(options["worker"], options["size"], timeout=options["timeout"])
                self._emit(
                    result, lambda r: [f"{r['worker']}: pool {r['from']} -> {r['to']} processes"]
                )
        except FleetError as error:
            raise CommandError(str(error), returncode=error.exit_code) from error

    def _emit(self, result: dict[str, Any], text: Any) -> None:
        if self.as_json:
            self.stdout.write(json.dumps(result, indent=2, sort_keys=True))
        else:
            for line in text(result):
                self.stdout.write(line)

    def _progress(self, active: int, reserved: int, elapsed: float) -> None:
        line = f"  {elapsed:5.1f}s: {active} active, {reserved} reserved"
        (self.stderr if self.as_json else self.stdout).write(line)

    def _status_text(self, result: dict[str, Any]) -> list[str]:
        """A table of workers, each one's active tasks under it, then a table of queues."""
        lines: list[str] = []
        if not result["workers"]:
            lines.append(self.style.ERROR("no worker answered"))
        else:
            rows: list[list[Cell | str]] = []
            for w in result["workers"]:
                queues = ", ".join(w["queues"]) or "-"
                drained = ", ".join(w["drained_queues"])
                rows.append(
                    [
                        w["hostname"],
                        str(w["pid"]),
                        f"{w['pool']} x{w['concurrency']}",
                        f"{w['uptime']}s",
                        f"{w['last_heartbeat']} ({w['heartbeat_source']})",
                        str(len(w["active"])),
                        str(len(w["reserved"])),
                        Cell(f"{queues} (drained: {drained})", self.style.WARNING)
                        if drained
                        else queues,
                    ]
                )
            headers = ("WORKER", "PID", "POOL", "UP", "HEARTBEAT", "ACTIVE", "RESERVED", "QUEUES")
            lines.extend(table(headers, rows, style=self.style, right=frozenset({1, 3, 5, 6})))
            for w in result["workers"]:
                lines.extend(
                    f"  {w['hostname']}: {t['name']} {t['id']} since {t['started_at']}"
                    for t in w["active"]
                )
        depths: list[list[Cell | str]] = [[q["name"], str(q["depth"])] for q in result["queues"]]
        lines.extend(table(("QUEUE", "DEPTH"), depths, style=self.style, right=frozenset({1})))
        lines.append(f"unacknowledged messages: {result['unacked']}")
        return lines
