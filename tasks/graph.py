"""Graph populate: the dependency graph of the ingested Python code, as nodes and edges.

Nodes (origin ``code``) are the modules of the repository, their top-level functions and classes,
and the outside packages they import. Edges say that a module ``imports`` another module (or an
outside package), that a module ``defines`` a symbol, and that a symbol ``references`` another
symbol it can see by name: one of its own module, or one its module imports by name. This is
the graph ``platform.recalculate_all_pagerank()`` ranks.

The graph is rebuilt from the code chunks in one transaction and written as a difference:
nodes and edges that still exist are left alone, new ones are added, vanished ones removed, so a
second populate over unchanged code writes nothing and keeps the computed PageRank.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from celery import shared_task
from django.db import connection, transaction

from tasks import conf
from tasks.chunking import module_name, python_imports
from tasks.embedders import tokens

logger = logging.getLogger(__name__)

Node = tuple[str, str]  # (kind, name)
Edge = tuple[Node, Node, str]


def build_graph(chunks: list[tuple[str, str | None, str]]) -> tuple[set[Node], set[Edge]]:
    """Nodes and edges from (path, symbol, content) chunk rows of Python files."""
    modules: dict[str, str] = {}  # module name -> path
    by_module: dict[str, list[tuple[str | None, str]]] = defaultdict(list)
    for path, symbol, content in chunks:
        name = module_name(path)
        modules[name] = path
        by_module[name].append((symbol, content))
    symbols = {
        (module, symbol) for module, items in by_module.items() for symbol, _ in items if symbol
    }
    nodes: set[Node] = {("module", name) for name in modules}
    nodes |= {("symbol", f"{module}.{symbol}") for module, symbol in symbols}
    edges: set[Edge] = set()
    for module, items in by_module.items():
        source = "".join(content for _, content in items)
        visible = {symbol: f"{module}.{symbol}" for owner, symbol in symbols if owner == module}
        is_package = modules[module].endswith("__init__.py")
        for imported, name in python_imports(source, module, is_package):
            if imported in modules:
                edges.add((("module", module), ("module", imported), "imports"))
                if name and (imported, name) in symbols:
                    visible[name] = f"{imported}.{name}"
                elif name and f"{imported}.{name}" in modules:
                    edges.add((("module", module), ("module", f"{imported}.{name}"), "imports"))
            else:
                package = ("external", imported.split(".")[0])
                nodes.add(package)
                edges.add((("module", module), package, "imports"))
        for symbol, content in items:
            if not symbol:
                continue
            here = ("symbol", f"{module}.{symbol}")
            edges.add((("module", module), here, "defines"))
            for word in set(tokens(content)) & visible.keys():
                target = ("symbol", visible[word])
                if target != here:
                    edges.add((here, target, "references"))
    return nodes, edges


def populate(repo: str | None = None) -> dict[str, int]:
    """Rebuild the ``code`` graph from the Python chunks of ``repo``; return the differences."""
    repo = repo or conf.code_repo()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT path, symbol, content FROM platform.code_chunks "
            "WHERE repo = %s AND language = 'python' ORDER BY path, chunk_index",
            [repo],
        )
        nodes, edges = build_graph(list(cursor.fetchall()))
        kinds, names = zip(*sorted(nodes), strict=True) if nodes else ((), ())
        cursor.execute(
            "INSERT INTO platform.graph_nodes (origin, kind, name) "
            "SELECT 'code', k, n FROM unnest(%s::text[], %s::text[]) AS s(k, n) "
            "ON CONFLICT (origin, kind, name) DO NOTHING",
            [list(kinds), list(names)],
        )
        nodes_added = cursor.rowcount
        cursor.execute(
            "DELETE FROM platform.graph_nodes g WHERE g.origin = 'code' AND NOT EXISTS "
            "(SELECT 1 FROM unnest(%s::text[], %s::text[]) AS s(k, n) "
            " WHERE s.k = g.kind AND s.n = g.name)",
            [list(kinds), list(names)],
        )
        nodes_removed = cursor.rowcount
        rows = sorted((s[0], s[1], t[0], t[1], kind) for s, t, kind in edges)
        columns = [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * 5
        cursor.execute(
            "CREATE TEMP TABLE graph_batch ON COMMIT DROP AS "
            "SELECT s.id AS source_id, t.id AS target_id, e.kind "
            "  FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[]) "
            "       AS e(sk, sn, tk, tn, kind) "
            "  JOIN platform.graph_nodes s "
            "    ON s.origin = 'code' AND s.kind = e.sk AND s.name = e.sn "
            "  JOIN platform.graph_nodes t "
            "    ON t.origin = 'code' AND t.kind = e.tk AND t.name = e.tn",
            columns,
        )
        cursor.execute(
            "DELETE FROM platform.graph_edges e USING platform.graph_nodes s "
            "WHERE s.id = e.source_id AND s.origin = 'code' AND NOT EXISTS "
            "(SELECT 1 FROM graph_batch b WHERE b.source_id = e.source_id "
            " AND b.target_id = e.target_id AND b.kind = e.kind)"
        )
        edges_removed = cursor.rowcount
        cursor.execute(
            "INSERT INTO platform.graph_edges (source_id, target_id, kind) "
            "SELECT source_id, target_id, kind FROM graph_batch ON CONFLICT DO NOTHING"
        )
        edges_added = cursor.rowcount
        cursor.execute("DROP TABLE graph_batch")
    outcome = {
        "nodes": len(nodes),
        "edges": len(edges),
        "nodes_added": nodes_added,
        "nodes_removed": nodes_removed,
        "edges_added": edges_added,
        "edges_removed": edges_removed,
    }
    logger.info("graph populated", extra={"repo": repo, "outcome": outcome})
    return outcome


@shared_task(name="tasks.graph.populate_graph")
def populate_graph(repo: str | None = None) -> dict[str, int]:
    """Start-up and weekly graph populate from the ingested code."""
    return populate(repo)
