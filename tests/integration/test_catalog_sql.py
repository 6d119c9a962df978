"""The SQL functions of the shipped catalog, on real data in the real PostgreSQL.

Each function is called the way pg_cron calls it (``SELECT platform.f()``) and its outcome is
asserted row by row (PageRank has its own module): task assignment under eight truly concurrent
connections, retention at the exact cut-off, and the learning chain
(analysis -> patterns -> central -> agent knowledge -> metrics), each run twice to show that a
second run with nothing new changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection

from tests.integration.platform_db import clean_platform, connect, empty_platform, fetch, scalar

__all__ = ("clean_platform", "empty_platform")


def test_whole_table_recomputes__second_concurrent_run_skips() -> None:
    """While one connection is inside PageRank, metrics refresh or knowledge update (its
    transaction open), the same call on another connection returns at once, doing nothing."""
    with connect() as holder, connect() as other:
        holder.execute("SELECT * FROM platform.recalculate_all_pagerank()")
        holder.execute("SELECT platform.refresh_performance_metrics()")
        holder.execute("SELECT platform.update_agent_knowledge()")
        assert other.execute("SELECT * FROM platform.recalculate_all_pagerank()").fetchall() == []
        assert other.execute("SELECT platform.refresh_performance_metrics()").fetchone() == (None,)
        assert other.execute("SELECT platform.update_agent_knowledge()").fetchone() == (0,)
        holder.rollback()
        other.rollback()
        # Once the first transaction has ended, the lock is gone with it.
        assert other.execute("SELECT nodes FROM platform.recalculate_all_pagerank()").fetchone()
        other.rollback()


# --------------------------------------------------------------------------- task assignment


def add_agents(cursor: Any, agents: Sequence[tuple[str, list[str], int]]) -> None:
    cursor.executemany(
        "INSERT INTO platform.agents (name, role, capabilities, max_concurrent) "
        "VALUES (%s, 'worker', %s, %s)",
        agents,
    )


def add_tasks(cursor: Any, tasks: Sequence[tuple[str, str | None, int]]) -> None:
    cursor.executemany(
        "INSERT INTO platform.agent_tasks (title, required_capability, priority) "
        "VALUES (%s, %s, %s)",
        tasks,
    )


def test_assign_pending_tasks__capability_priority_and_capacity(empty_platform: None) -> None:
    """Tasks go to agents that have the capability, highest priority first, never beyond an
    agent's capacity; a task nobody can do stays pending; a second run assigns nothing more."""
    with connection.cursor() as cursor:
        add_agents(cursor, [("sql-1", ["sql"], 2), ("py-1", ["python"], 1)])
        add_tasks(
            cursor,
            [("low sql", "sql", 1), ("high sql", "sql", 9), ("mid sql", "sql", 5),
             ("py", "python", 0), ("rust", "rust", 99), ("any", None, 3)],
        )  # fmt: skip
    assert scalar("SELECT platform.assign_pending_tasks()") == 3
    rows = dict(
        fetch(
            "SELECT t.title, coalesce(a.name, t.status) FROM platform.agent_tasks t "
            "LEFT JOIN platform.agents a ON a.id = t.agent_id"
        )
    )
    # sql-1 takes the two best it can do, 'high sql' (9) and 'mid sql' (5); py-1 has one slot
    # and 'any' (3) outranks 'py' (0).
    assert rows == {
        "high sql": "sql-1", "mid sql": "sql-1", "any": "py-1", "py": "pending",
        "low sql": "pending", "rust": "pending",
    }  # fmt: skip
    assert dict(fetch("SELECT name, status FROM platform.agents")) == {
        "sql-1": "busy",
        "py-1": "busy",
    }
    assert scalar("SELECT platform.assign_pending_tasks()") == 0
    assert scalar("SELECT count(*) FROM platform.task_assignments") == 3


def test_assign_pending_tasks__eight_concurrent_callers_never_double_assign(
    clean_platform: None,
) -> None:
    """Eight connections call assign_pending_tasks() at once, repeatedly, while capacity is freed
    in between: every assignment in the append-only log is of a distinct task, the reported
    counts add up to the log, and no agent ever holds more than its capacity."""
    with connect(autocommit=True) as conn, conn.cursor() as cursor:
        add_agents(cursor, [(f"agent-{i}", ["sql", "python"], 3) for i in range(10)])
        add_tasks(
            cursor, [(f"task-{i}", ("sql", "python", None)[i % 3], i % 7) for i in range(600)]
        )

    callers = 8
    rounds = 12
    barrier = threading.Barrier(callers + 1)
    reported = [0] * callers
    errors: list[BaseException] = []

    def caller(index: int) -> None:
        try:
            with connect(autocommit=True) as conn:
                for _ in range(rounds):
                    barrier.wait(timeout=60)
                    reported[index] += conn.execute(
                        "SELECT platform.assign_pending_tasks()"
                    ).fetchone()[0]
                    barrier.wait(timeout=60)
        except BaseException as error:  # noqa: BLE001 - handed to the main thread and re-raised
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    over_capacity = []
    with connect(autocommit=True) as conn:
        for _ in range(rounds):
            barrier.wait(timeout=60)  # all callers run now
            barrier.wait(timeout=60)  # all callers are done with this round
            over_capacity += conn.execute(
                "SELECT a.name, count(*) FROM platform.agents a JOIN platform.agent_tasks t "
                "ON t.agent_id = a.id AND t.status = 'assigned' GROUP BY a.name "
                "HAVING count(*) > max(a.max_concurrent)"
            ).fetchall()
            # Agents finish two tasks each between rounds, freeing capacity for the next.
            conn.execute(
                "UPDATE platform.agent_tasks SET status = 'completed', completed_at = now() "
                "WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
                "(PARTITION BY agent_id ORDER BY id) AS k FROM platform.agent_tasks "
                "WHERE status = 'assigned') x WHERE k <= 2)"
            )
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        logged, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT task_id) FROM platform.task_assignments"
        ).fetchone()
        touched = conn.execute(
            "SELECT count(*) FROM platform.agent_tasks WHERE status <> 'pending'"
        ).fetchone()[0]
    assert over_capacity == []
    assert logged == distinct == touched == sum(reported)
    # 10 agents x 3 slots in the first round, then 2 freed per agent per round.
    assert logged == 30 + 20 * (rounds - 1)


# --------------------------------------------------------------------------- retention

RETENTION_CASES = {
    "cleanup_old_jobs": (
        "INSERT INTO platform.agent_tasks (title, status, completed_at) "
        "VALUES (%s, 'completed', now() - %s::interval)",
        "SELECT title FROM platform.agent_tasks",
        "30 days",
    ),
    "cleanup_unused_artifacts": (
        "INSERT INTO platform.knowledge_artifacts (artifact_type, name, source, content, "
        "content_hash, updated_at) VALUES ('learned_pattern', %s, 't', '{}', 'h', "
        "now() - %s::interval)",
        "SELECT name FROM platform.knowledge_artifacts",
        "90 days",
    ),
    "cleanup_obsolete_code_chunks": (
        "INSERT INTO platform.code_chunks (repo, path, chunk_index, language, start_line, "
        "end_line, content, content_hash, seen_at) VALUES ('r', %s, 0, 'python', 1, 1, 'x', "
        "'h', now() - %s::interval)",
        "SELECT path FROM platform.code_chunks",
        "14 days",
    ),
    "archive_backup_metadata": (
        "INSERT INTO platform.backup_metadata (kind, database, path, status, started_at) "
        "VALUES ('hourly', 'db', %s, 'succeeded', now() - %s::interval)",
        "SELECT path FROM platform.backup_metadata",
        "90 days",
    ),
}


@pytest.mark.parametrize("function", sorted(RETENTION_CASES))
def test_retention__deletes_exactly_what_is_older_than_the_cutoff(
    empty_platform: None, function: str
) -> None:
    """Rows one second past the default cut-off go; rows exactly at it, or younger, stay; a
    second run deletes nothing; an explicit shorter age moves the cut-off."""
    insert, names, default_age = RETENTION_CASES[function]
    ages = {
        "older": f"{default_age} 1 second",
        "much-older": "1000 days",
        "at-cutoff": default_age,
        "younger": f"{default_age} -1 second",
        "fresh": "0 seconds",
    }
    with connection.cursor() as cursor:
        cursor.executemany(insert, list(ages.items()))
    assert scalar(f"SELECT platform.{function}()") == 2
    assert {row[0] for row in fetch(names)} == {"at-cutoff", "younger", "fresh"}
    assert scalar(f"SELECT platform.{function}()") == 0
    assert scalar(f"SELECT platform.{function}(%s::interval)", ["1 day"]) == 2
    assert {row[0] for row in fetch(names)} == {"fresh"}


def test_retention__backup_records_are_archived_not_lost(empty_platform: None) -> None:
    """archive_backup_metadata moves old records into backup_archive; running ones stay."""
    fetch(
        "INSERT INTO platform.backup_metadata (kind, database, path, status, started_at) VALUES "
        "('daily', 'db', 'old.dump', 'succeeded', now() - interval '100 days'), "
        "('daily', 'db', 'stuck.dump', 'running', now() - interval '100 days')"
    )
    assert scalar("SELECT platform.archive_backup_metadata()") == 1
    assert fetch("SELECT path, status FROM platform.backup_archive") == [("old.dump", "succeeded")]
    assert fetch("SELECT path FROM platform.backup_metadata") == [("stuck.dump",)]


def test_retention__artifacts_in_use_are_kept(empty_platform: None) -> None:
    """An old learned-pattern artifact that agents still use, or of another type, is kept."""
    fetch(
        "INSERT INTO platform.knowledge_artifacts (artifact_type, name, source, content, "
        "content_hash, updated_at, usage_count) VALUES "
        "('learned_pattern', 'used', 't', '{}', 'h', now() - interval '1 year', 2), "
        "('template_guide', 'guide', 't', '{}', 'h', now() - interval '1 year', 0)"
    )
    assert scalar("SELECT platform.cleanup_unused_artifacts()") == 0


# --------------------------------------------------------------------------- learning chain


def add_findings(findings: Sequence[tuple[str, str, str, str]]) -> None:
    """(category, rule, path, fingerprint) rows of analysis results."""
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO platform.analysis_results (analyzer, category, rule, path, message, "
            "fingerprint) VALUES ('test', %s, %s, %s, 'found', %s)",
            findings,
        )


def patterns() -> dict[str, tuple[int, int]]:
    return {
        key: (occurrences, version)
        for key, occurrences, version in fetch(
            "SELECT pattern_key, occurrences, version FROM platform.learned_patterns"
        )
    }


def test_learn_patterns__counts_each_finding_once_and_promotes_frequent(
    empty_platform: None,
) -> None:
    """Five 'docs' findings and two 'errors' findings become two patterns; only the one seen
    three times or more becomes a knowledge artifact; a second run learns nothing; a new finding
    bumps its pattern's count and version and promotes it."""
    add_findings([("docs", "missing-docstring", f"p{i % 3}.py", f"d{i}") for i in range(5)])
    add_findings([("errors", "broad-except", "x.py", f"e{i}") for i in range(2)])

    assert scalar("SELECT platform.learn_patterns_from_analysis()") == 7
    assert patterns() == {
        "docs:missing-docstring:python": (5, 1),
        "errors:broad-except:python": (2, 1),
    }
    assert fetch("SELECT name, content->>'occurrences' FROM platform.knowledge_artifacts") == [
        ("docs:missing-docstring:python", "5")
    ]
    assert scalar("SELECT count(*) FROM platform.analysis_results WHERE learned_at IS NULL") == 0

    assert scalar("SELECT platform.learn_patterns_from_analysis()") == 0
    assert patterns()["errors:broad-except:python"] == (2, 1)

    add_findings([("errors", "broad-except", "y.py", "e9")])
    assert scalar("SELECT platform.learn_patterns_from_analysis()") == 1
    assert patterns()["errors:broad-except:python"] == (3, 2)
    assert scalar("SELECT count(*) FROM platform.knowledge_artifacts") == 2


def test_learn_patterns__small_batches_add_up(empty_platform: None) -> None:
    """Learning in batches of 4 counts 10 findings exactly once across three runs."""
    add_findings([("docs", "missing-docstring", "a.py", f"b{i}") for i in range(10)])
    runs = [scalar("SELECT platform.learn_patterns_from_analysis(4)") for _ in range(4)]
    assert runs == [4, 4, 2, 0]
    assert patterns() == {"docs:missing-docstring:python": (10, 3)}


def test_sync_learning__sends_changed_patterns_once(empty_platform: None) -> None:
    """The sync sends every pattern not yet sent, nothing on a second run, and a pattern again
    (with its new count) once learning has changed it."""
    add_findings([("docs", "missing-docstring", "a.py", f"d{i}") for i in range(3)])
    add_findings([("errors", "broad-except", "a.py", "e0")])
    fetch("SELECT platform.learn_patterns_from_analysis()")

    assert scalar("SELECT platform.sync_learning_to_centralcloud('alpha')") == 2
    assert scalar("SELECT platform.sync_learning_to_centralcloud('alpha')") == 0
    assert fetch(
        "SELECT instance, pattern_key, occurrences FROM central.learned_patterns ORDER BY 2"
    ) == [
        ("alpha", "docs:missing-docstring:python", 3),
        ("alpha", "errors:broad-except:python", 1),
    ]
    add_findings([("errors", "broad-except", "b.py", "e1")])
    fetch("SELECT platform.learn_patterns_from_analysis()")
    assert scalar("SELECT platform.sync_learning_to_centralcloud('alpha')") == 1
    assert (
        scalar(
            "SELECT occurrences FROM central.learned_patterns "
            "WHERE pattern_key = 'errors:broad-except:python'"
        )
        == 2
    )
    assert scalar("SELECT count(*) FROM central.learned_patterns") == 2


def test_update_agent_knowledge__summarises_and_marks_artifacts_used(empty_platform: None) -> None:
    """Each agent's knowledge lists the patterns of its capabilities (all for an agent without
    any) and its task record; artifacts referenced by agents get a usage count; a second run
    changes nothing."""
    add_findings([("docs", "missing-docstring", "a.py", f"d{i}") for i in range(4)])
    add_findings([("errors", "broad-except", "a.py", f"e{i}") for i in range(3)])
    fetch("SELECT platform.learn_patterns_from_analysis()")
    with connection.cursor() as cursor:
        add_agents(cursor, [("doc-bot", ["docs"], 1), ("generalist", [], 1)])
        add_tasks(cursor, [("t", None, 0)])
    fetch(
        "UPDATE platform.agent_tasks SET status = 'completed', completed_at = now(), "
        "agent_id = (SELECT id FROM platform.agents WHERE name = 'doc-bot')"
    )

    assert scalar("SELECT platform.update_agent_knowledge()") == 2
    knowledge = {
        name: json.loads(value)
        for name, value in fetch("SELECT name, knowledge FROM platform.agents")
    }
    assert [p["pattern"] for p in knowledge["doc-bot"]["patterns"]] == [
        "docs:missing-docstring:python"
    ]
    assert knowledge["doc-bot"]["tasks"] == {"completed": 1, "failed": 0, "active": 0}
    assert [p["pattern"] for p in knowledge["generalist"]["patterns"]] == [
        "docs:missing-docstring:python",
        "errors:broad-except:python",
    ]
    assert dict(fetch("SELECT name, usage_count FROM platform.knowledge_artifacts")) == {
        "docs:missing-docstring:python": 2,
        "errors:broad-except:python": 1,
    }
    assert scalar("SELECT platform.update_agent_knowledge()") == 0


def test_refresh_performance_metrics__aggregates_per_agent(empty_platform: None) -> None:
    """The view counts each agent's completed, failed and active tasks, its success rate and
    mean latency; refreshing again (now concurrently) gives the same rows."""
    with connection.cursor() as cursor:
        add_agents(cursor, [("a", [], 5), ("b", [], 5)])
        cursor.execute(
            "INSERT INTO platform.agent_tasks (title, status, agent_id, assigned_at, "
            "completed_at) SELECT 't', s, (SELECT id FROM platform.agents WHERE name = 'a'), "
            "now() - interval '60 seconds', CASE WHEN s = 'assigned' THEN NULL ELSE now() END "
            "FROM unnest(ARRAY['completed', 'completed', 'completed', 'failed', 'assigned']) s"
        )
        cursor.execute(
            "INSERT INTO platform.metric_samples (agent_id, metric, value) "
            "SELECT id, 'latency_ms', v FROM platform.agents, unnest(ARRAY[10.0, 30.0]) v "
            "WHERE name = 'a'"
        )
    assert scalar("SELECT platform.refresh_performance_metrics()") == 2
    query = (
        "SELECT agent_name, tasks_total, tasks_completed, tasks_failed, tasks_active, "
        "success_rate, round(avg_completion_seconds), avg_latency_ms "
        "FROM platform.performance_metrics ORDER BY agent_name"
    )
    first = fetch(query)
    assert [tuple(map(str, row)) for row in first] == [
        ("a", "5", "3", "1", "1", "0.7500", "60", "20.0"),
        ("b", "0", "0", "0", "0", "None", "None", "None"),
    ]
    assert scalar("SELECT platform.refresh_performance_metrics()") == 2
    assert fetch(query) == first


def test_collect_vector_stats__counts_per_model_and_stale_rows(empty_platform: None) -> None:
    """Stats group embeddings by table, model and dimension, and count stale rows (missing or
    computed from older text) apart."""
    fetch(
        "INSERT INTO platform.code_chunks (repo, path, chunk_index, language, start_line, "
        "end_line, content, content_hash, embedding, embedding_model, embedding_dim, "
        "embedded_hash) VALUES "
        "('r', 'a', 0, 'python', 1, 1, 'x', 'h1', '{3,4}', 'm', 2, 'h1'), "
        "('r', 'a', 1, 'python', 1, 1, 'y', 'h2', '{0,1}', 'm', 2, 'old'), "
        "('r', 'a', 2, 'python', 1, 1, 'z', 'h3', NULL, NULL, NULL, NULL)"
    )
    assert scalar("SELECT platform.collect_vector_stats()") == 2
    rows = fetch(
        "SELECT table_name, embedding_model, rows, stale_rows, avg_norm FROM "
        "platform.vector_stats ORDER BY embedding_model NULLS LAST"
    )
    assert rows == [("code_chunks", "m", 2, 1, 3.0), ("code_chunks", None, 1, 1, None)]


def test_code_chunks__embedding_must_match_its_dimension(empty_platform: None) -> None:
    """A vector whose length differs from its declared dimension is refused by the table."""
    from django.db import IntegrityError

    with pytest.raises(IntegrityError, match="code_chunks_embedding_shape"):
        fetch(
            "INSERT INTO platform.code_chunks (repo, path, chunk_index, language, start_line, "
            "end_line, content, content_hash, embedding, embedding_model, embedding_dim) "
            "VALUES ('r', 'a', 0, 'python', 1, 1, 'x', 'h', '{1,2,3}', 'm', 2)"
        )
