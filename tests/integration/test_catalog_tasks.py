"""The Celery tasks of the shipped catalog, run for real against the test database.

Most tests call the task functions in-process (their database work rolls back with the test);
one sends tasks through Redis to a real worker process and reads their results back. Every
idempotent job is run twice and shown to change nothing the second time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tasks import cache, code_ingest, demo, embedders, embeddings, graph, registry_sync, startup
from tasks import templates as template_tasks
from tests.integration.platform_db import PLATFORM_TABLES, clean_platform, empty_platform

__all__ = ("clean_platform", "empty_platform")


def fetch(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# --------------------------------------------------------------------------- templates


def test_template_sync__idempotent_by_content_hash(empty_platform: None, tmp_path: Path) -> None:
    """A first sync creates every template; a second writes nothing; an edit updates just that
    template (and makes its embedding stale); a deleted file removes its template."""
    directory = write_tree(
        tmp_path / "t",
        {"sql/a.sql": "SELECT 1;\n", "celery/b.py": "x = 1\n", "top.md": "# hi\n"},
    )
    assert template_tasks.sync_directory(directory) == {
        "created": 3, "updated": 0, "removed": 0, "unchanged": 0,
    }  # fmt: skip
    assert fetch("SELECT name, kind, language FROM platform.templates ORDER BY name") == [
        ("celery/b.py", "celery", "python"), ("sql/a.sql", "sql", "sql"),
        ("top.md", "general", "markdown"),
    ]  # fmt: skip
    assert template_tasks.sync_directory(directory)["unchanged"] == 3
    assert embeddings.embed_table("templates")["embedded"] == 3

    (directory / "sql/a.sql").write_text("SELECT 2;\n")
    (directory / "top.md").unlink()
    assert template_tasks.sync_directory(directory) == {
        "created": 0, "updated": 1, "removed": 1, "unchanged": 1,
    }  # fmt: skip
    assert embeddings.embed_table("templates")["embedded"] == 1
    assert fetch("SELECT body FROM platform.templates WHERE name = 'sql/a.sql'") == [
        ("SELECT 2;\n",)
    ]


def test_template_sync__empty_directory_deletes_nothing(
    empty_platform: None, tmp_path: Path
) -> None:
    """A missing or empty template directory is an error, not an order to delete everything."""
    directory = write_tree(tmp_path / "t", {"a.sql": "SELECT 1;\n"})
    template_tasks.sync_directory(directory)
    (directory / "a.sql").unlink()
    with pytest.raises(template_tasks.TemplateSourceMissing, match="holds no templates"):
        template_tasks.sync_directory(directory)
    with pytest.raises(template_tasks.TemplateSourceMissing, match="does not exist"):
        template_tasks.sync_directory(tmp_path / "nowhere")
    assert fetch("SELECT count(*) FROM platform.templates") == [(1,)]


def test_shipped_templates_and_knowledge_load(empty_platform: None) -> None:
    """The sample templates and JSON knowledge shipped in tasks/ load, and load once."""
    synced = template_tasks.sync_templates()
    assert synced["created"] >= 5
    migrated = startup.knowledge_migration()
    assert migrated["created"] >= 4
    assert startup.knowledge_migration()["unchanged"] == migrated["artifacts"]
    assert template_tasks.sync_templates()["unchanged"] == synced["created"]


# --------------------------------------------------------------------------- ingest + embed

PACKAGE = {
    "pkg/__init__.py": "",
    "pkg/store.py": (
        '"""Storage."""\n\nimport json\n\n\ndef save(item):\n    """Save."""\n'
        "    return json.dumps(item)\n\n\ndef load(text):\n    return json.loads(text)\n"
    ),
    "pkg/api.py": (
        "from pkg.store import save\n\n\ndef handle(request):\n"
        "    try:\n        return save(request)\n    except Exception:\n        return None\n"
    ),
    "README.md": "# pkg\n\nSaves things.\n",
}


def test_ingest_and_embed__chunks_vectors_and_switching_models(
    empty_platform: None, tmp_path: Path, settings: Any
) -> None:
    """Ingest chunks the tree; embedding fills every chunk with a unit vector of the declared
    model and dimension; re-ingesting unchanged code changes nothing and re-embeds nothing; an
    edited file re-embeds only its changed chunk; switching the embedder re-embeds all."""
    root = write_tree(tmp_path / "src", PACKAGE)
    first = code_ingest.ingest(root, repo="demo-repo")
    assert first["files"] == 4
    assert first["created"] == first["chunks"] > 4
    rows = fetch(
        "SELECT path, symbol FROM platform.code_chunks WHERE repo = 'demo-repo' "
        "AND symbol IS NOT NULL ORDER BY path, chunk_index"
    )
    assert rows == [("pkg/api.py", "handle"), ("pkg/store.py", "save"), ("pkg/store.py", "load")]

    settings.ORCHESTRATOR_EMBEDDING_DIM = 64
    done = embeddings.embed_table("code_chunks", batch_size=2)
    assert (done["embedded"], done["model"], done["dim"]) == (first["chunks"], "hashing-v1-d64", 64)
    norms = fetch(
        "SELECT embedding_model, embedding_dim, round((SELECT sum(x * x) FROM "
        "unnest(embedding) x)::numeric, 4) FROM platform.code_chunks"
    )
    assert set(norms) == {("hashing-v1-d64", 64, 1)}
    assert embeddings.embed_table("code_chunks")["embedded"] == 0

    assert code_ingest.ingest(root, repo="demo-repo")["unchanged"] == first["chunks"]
    (root / "pkg/api.py").write_text(PACKAGE["pkg/api.py"].replace("None", "{}"))
    again = code_ingest.ingest(root, repo="demo-repo")
    assert (again["updated"], again["created"]) == (1, 0)
    assert embeddings.embed_table("code_chunks")["embedded"] == 1

    settings.ORCHESTRATOR_EMBEDDING_DIM = 32
    assert embeddings.embed_table("code_chunks")["embedded"] == first["chunks"]
    assert fetch("SELECT DISTINCT embedding_model FROM platform.code_chunks") == [
        ("hashing-v1-d32",)
    ]


def test_embeddings__nearest_chunk_is_the_lexically_closest(
    empty_platform: None, tmp_path: Path
) -> None:
    """Cosine similarity over the stored real[] vectors ranks the chunk about saving first for a
    query about saving json."""
    root = write_tree(tmp_path / "src", PACKAGE)
    code_ingest.ingest(root, repo="demo-repo")
    embeddings.embed_table("code_chunks")
    query = embedders.get_embedder().embed(["def save(item): json.dumps"])[0]
    best = fetch(
        "SELECT symbol FROM platform.code_chunks ORDER BY (SELECT sum(a * b) FROM "
        "unnest(embedding, %s::real[]) AS v(a, b)) DESC LIMIT 1",
        [query],
    )
    assert best == [("save",)]


# --------------------------------------------------------------------------- graph, registry


def test_graph_populate__modules_symbols_and_references(
    empty_platform: None, tmp_path: Path
) -> None:
    """The graph has the modules, their symbols and the outside packages; api imports store,
    handle references save; a second populate changes nothing and keeps computed ranks."""
    code_ingest.ingest(write_tree(tmp_path / "src", PACKAGE), repo="demo-repo")
    outcome = graph.populate("demo-repo")
    assert outcome["nodes_added"] == outcome["nodes"]
    edges = set(
        fetch(
            "SELECT s.kind || ':' || s.name, e.kind, t.kind || ':' || t.name "
            "FROM platform.graph_edges e JOIN platform.graph_nodes s ON s.id = e.source_id "
            "JOIN platform.graph_nodes t ON t.id = e.target_id"
        )
    )
    assert edges == {
        ("module:pkg.api", "imports", "module:pkg.store"),
        ("module:pkg.store", "imports", "external:json"),
        ("module:pkg.api", "defines", "symbol:pkg.api.handle"),
        ("module:pkg.store", "defines", "symbol:pkg.store.save"),
        ("module:pkg.store", "defines", "symbol:pkg.store.load"),
        ("symbol:pkg.api.handle", "references", "symbol:pkg.store.save"),
    }
    fetch("SELECT * FROM platform.recalculate_all_pagerank()")
    ranks = fetch("SELECT name, pagerank FROM platform.graph_nodes ORDER BY name")
    again = graph.populate("demo-repo")
    assert again["nodes_added"] == again["nodes_removed"] == 0
    assert again["edges_added"] == again["edges_removed"] == 0
    assert fetch("SELECT name, pagerank FROM platform.graph_nodes ORDER BY name") == ranks


def test_registry_sync__findings_feed_learning_and_snapshots_dedupe(
    empty_platform: None, tmp_path: Path
) -> None:
    """The analyzers find the missing docstrings and the broad except; a second sync adds no
    finding and no snapshot; pattern learning then counts the findings."""
    code_ingest.ingest(write_tree(tmp_path / "src", PACKAGE), repo="demo-repo")
    first = registry_sync.sync("demo-repo")
    assert first["stored"] is True
    assert first["analysis"]["missing-docstring"] == 2  # load, handle (save has one)
    assert first["analysis"]["broad-except"] == 1
    second = registry_sync.sync("demo-repo")
    assert (second["stored"], second["analysis"]["new_findings"]) == (False, 0)
    assert fetch("SELECT count(*) FROM platform.registry_snapshots") == [(1,)]
    summary = json.loads(fetch("SELECT summary FROM platform.registry_snapshots")[0][0])
    assert "tasks.backup.backup_database" in summary["celery_tasks"]
    assert fetch("SELECT platform.learn_patterns_from_analysis()") == [(3,)]


# --------------------------------------------------------------------------- start-up, demo


def platform_state() -> dict[str, object]:
    """Row counts of every platform table and the content that start-up jobs write."""
    state: dict[str, object] = {}
    for table in PLATFORM_TABLES:
        state[table] = fetch(f"SELECT count(*) FROM {table}")[0][0]
    state["chunks"] = fetch(
        "SELECT md5(string_agg(path || chunk_index || content_hash || embedded_hash, ',' "
        "ORDER BY path, chunk_index)) FROM platform.code_chunks"
    )
    state["artifacts"] = fetch(
        "SELECT artifact_type, name, content_hash FROM platform.knowledge_artifacts ORDER BY 1, 2"
    )
    state["tasks"] = fetch(
        "SELECT title, status, source FROM platform.agent_tasks ORDER BY title, id"
    )
    state["graph"] = fetch("SELECT count(*) FROM platform.graph_edges")
    return state


def test_startup_jobs__twice_is_the_same_state(empty_platform: None) -> None:
    """Knowledge migration, templates data load, planning seed, RAG setup (on this project's
    own source tree) and the demo seed, run twice, leave the database exactly as once."""
    jobs = (
        startup.knowledge_migration, startup.templates_data_load, startup.planning_seed,
        startup.rag_setup, demo.seed_demo_data,
    )  # fmt: skip
    for job in jobs:
        job()
    once = platform_state()
    for job in jobs:
        job()
    assert platform_state() == once
    assert once["platform.code_chunks"] > 100
    assert once["platform.work_plan_items"] == len(startup.WORK_PLAN)
    assert once["platform.agents"] == len(demo.AGENTS)
    assert once["platform.analysis_results"] > 0
    assert fetch("SELECT count(*) FROM platform.code_chunks WHERE embedding IS NULL") == [(0,)]


def test_demo_activity__every_sql_job_has_work(empty_platform: None) -> None:
    """After the demo seed, each continuous SQL job does visible work, and simulated agents
    free capacity so the next assignment round assigns again."""
    demo.seed()
    assert fetch("SELECT platform.learn_patterns_from_analysis() > 0") == [(True,)]
    assert fetch("SELECT platform.sync_learning_to_centralcloud() > 0") == [(True,)]
    assert fetch("SELECT platform.assign_pending_tasks() > 0") == [(True,)]
    assert fetch("SELECT platform.update_agent_knowledge() > 0") == [(True,)]
    assert fetch("SELECT platform.refresh_performance_metrics()") == [(len(demo.AGENTS),)]
    assert demo.simulate()["finished"] == 5
    assert fetch("SELECT platform.assign_pending_tasks() > 0") == [(True,)]


def test_cache_clear__drops_loaded_embedders() -> None:
    """Clearing caches empties the embedder cache and memoised token buckets."""
    embedders.get_embedder().embed(["warm the cache"])
    assert cache.clear()["embedder_entries"] > 0
    assert cache.clear()["embedder_entries"] == 0


# --------------------------------------------------------------------------- real worker


def test_worker__runs_catalog_tasks_through_redis(clean_platform: None, celery_worker: Any) -> None:
    """A real worker has every catalog task registered under its module path, and runs the
    template sync and planning seed sent through Redis, committing their rows."""
    from project.celery import app

    registered = app.control.inspect([celery_worker.hostname], timeout=5).registered()
    names = set(registered[celery_worker.hostname])
    assert {
        "tasks.backup.backup_database", "tasks.templates.sync_templates",
        "tasks.code_ingest.ingest_code", "tasks.embeddings.embed_code_chunks",
        "tasks.embeddings.embed_templates", "tasks.graph.populate_graph",
        "tasks.cache.clear_caches", "tasks.registry_sync.sync_registry",
        "tasks.startup.knowledge_migration", "tasks.startup.templates_data_load",
        "tasks.startup.planning_seed", "tasks.startup.rag_setup", "tasks.demo.seed_demo_data",
        "tasks.demo.simulate_activity",
    } <= names  # fmt: skip

    synced = app.send_task("tasks.templates.sync_templates").get(timeout=60)
    assert synced["created"] >= 5
    seeded = app.send_task("tasks.startup.planning_seed").get(timeout=60)
    assert seeded == {
        "items_added": len(startup.WORK_PLAN),
        "tasks_created": len(startup.WORK_PLAN),
    }
    assert fetch("SELECT count(*) FROM platform.agent_tasks WHERE source = 'work-plan'") == [
        (len(startup.WORK_PLAN),)
    ]
