"""Demo data, so that every job of the shipped manifest has visible work on a fresh system.

``seed_demo_data`` (a start-up job) installs a team of agents, a backlog of tasks with a history
of finished ones (for the metrics view), latency samples, and the code analysis findings that
pattern learning feeds on; it is idempotent (keyed by names, and by ``source = 'demo'``).
``simulate_activity`` plays the agents: it finishes some assigned tasks and tops the backlog up,
so task assignment, metrics refresh and knowledge updates keep having something to do. Both are
deterministic: the same state gives the same outcome.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper

from tasks import code_ingest, registry_sync

logger = logging.getLogger(__name__)

#: (name, role, capabilities, max_concurrent)
AGENTS: tuple[tuple[str, str, list[str], int], ...] = (
    ("atlas", "database engineer", ["sql", "ops"], 3),
    ("beacon", "python engineer", ["python", "error-handling"], 3),
    ("cipher", "security reviewer", ["security", "error-handling"], 2),
    ("delta", "documentation writer", ["documentation"], 2),
    ("echo", "maintainer", ["maintenance", "complexity", "python"], 2),
    ("fable", "generalist", [], 1),
)
CAPABILITIES = ("sql", "python", "documentation", "error-handling", "security", "ops", None)
BACKLOG = 24


def _add_tasks(cursor: CursorWrapper, count: int, offset: int) -> None:
    cursor.execute(
        "INSERT INTO platform.agent_tasks (title, required_capability, priority, source) "
        "SELECT 'demo task ' || g, (%s::text[])[1 + g %% %s], g %% 10, 'demo' "
        "FROM generate_series(%s, %s) g",
        [list(CAPABILITIES), len(CAPABILITIES), offset + 1, offset + count],
    )


def seed() -> dict[str, object]:
    """Install the demo data unless it is there already."""
    outcome: dict[str, object] = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM platform.code_chunks")
        if cursor.fetchone()[0] == 0:
            outcome["code"] = code_ingest.ingest()
    outcome["analysis"] = registry_sync.analyze_repository()
    with transaction.atomic(), connection.cursor() as cursor:
        names, roles, capabilities, limits = zip(*AGENTS, strict=True)
        cursor.execute(
            "INSERT INTO platform.agents (name, role, capabilities, max_concurrent) "
            "SELECT n, r, string_to_array(c, ','), m "
            "FROM unnest(%s::text[], %s::text[], %s::text[], %s::int[]) AS x(n, r, c, m) "
            "ON CONFLICT (name) DO NOTHING",
            [list(names), list(roles), [",".join(c) for c in capabilities], list(limits)],
        )
        outcome["agents_added"] = cursor.rowcount
        cursor.execute("SELECT count(*) FROM platform.agent_tasks WHERE source = 'demo'")
        if cursor.fetchone()[0] == 0:
            _add_tasks(cursor, BACKLOG, 0)
            # A history of finished work, spread over the past two weeks, for the metrics.
            cursor.execute(
                "INSERT INTO platform.agent_tasks (title, priority, source, status, agent_id, "
                "assigned_at, completed_at) "
                "SELECT 'demo history ' || g, 0, 'demo', "
                "       CASE WHEN g %% 6 = 0 THEN 'failed' ELSE 'completed' END, a.id, "
                "       now() - make_interval(hours => g * 5) - make_interval(mins => g %% 50), "
                "       now() - make_interval(hours => g * 5) "
                "FROM generate_series(1, 60) g "
                "JOIN platform.agents a ON a.name = (%s::text[])[1 + g %% %s]",
                [list(names), len(names)],
            )
            cursor.execute(
                "INSERT INTO platform.metric_samples (agent_id, metric, value, recorded_at) "
                "SELECT a.id, 'latency_ms', 20 + (a.id * 7 + g * 13) %% 180, "
                "       now() - make_interval(hours => g) "
                "FROM platform.agents a, generate_series(1, 24) g WHERE a.name = ANY(%s)",
                [list(names)],
            )
            outcome["tasks_added"] = BACKLOG + 60
        else:
            outcome["tasks_added"] = 0
    logger.info("demo data seeded", extra={"agents_added": outcome["agents_added"]})
    return outcome


def simulate() -> dict[str, int]:
    """Finish the oldest assigned demo tasks (every fifth one fails) and refill the backlog."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "WITH done AS (SELECT id FROM platform.agent_tasks "
            "  WHERE status = 'assigned' AND source IN ('demo', 'work-plan') "
            "  ORDER BY assigned_at, id LIMIT 5 FOR UPDATE SKIP LOCKED) "
            "UPDATE platform.agent_tasks t SET completed_at = now(), "
            "  status = CASE WHEN t.id %% 5 = 0 THEN 'failed' ELSE 'completed' END, "
            "  result = jsonb_build_object('by', 'simulate_activity') "
            "FROM done WHERE t.id = done.id",
            [],
        )
        finished = cursor.rowcount
        cursor.execute(
            "INSERT INTO platform.metric_samples (agent_id, metric, value) "
            "SELECT agent_id, 'latency_ms', 20 + (id * 37) %% 180 FROM platform.agent_tasks "
            "WHERE result ->> 'by' = 'simulate_activity' AND completed_at = now()",
            [],
        )
        cursor.execute(
            "SELECT count(*), coalesce(max(id), 0) FROM platform.agent_tasks "
            "WHERE status = 'pending' AND source = 'demo'"
        )
        pending, last = cursor.fetchone()
        added = max(BACKLOG - int(pending), 0)
        if added:
            _add_tasks(cursor, added, int(last))
    outcome = {"finished": finished, "added": added}
    logger.info("demo activity", extra={"outcome": outcome})
    return outcome


@shared_task(name="tasks.demo.seed_demo_data")
def seed_demo_data() -> dict[str, object]:
    """Start-up: seed the demo data (idempotent)."""
    return seed()


@shared_task(name="tasks.demo.simulate_activity")
def simulate_activity() -> dict[str, int]:
    """Every few minutes: the demo agents finish work and new work arrives."""
    return simulate()
