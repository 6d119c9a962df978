"""Benchmark: the catalog's heavy jobs, PageRank in SQL and code-chunk embedding.

Run from the repository root with the services up (``make services``, or any profile via
``ORCHESTRATOR_PROFILE``): ``.venv/bin/python bench/catalog.py [--nodes N] [--edges M]
[--chunks C]``.

Everything happens in one transaction that is rolled back at the end, so the database is left
as it was; the graph and chunk tables are emptied inside it first (other sessions wait on them
for the duration).

1. PageRank: a random graph of N nodes and M distinct edges (targets skewed towards low ids,
   so ranks differ) is generated in SQL, then ``platform.recalculate_all_pagerank(0.85, 20, 0)``
   runs exactly 20 iterations. The anchor, measured on the same graph in the same run, is
   networkx: ``nx.pagerank`` (scipy's sparse power iteration, 20 iterations) on a ``DiGraph``
   of the fetched edges; fetching and building the graph are timed apart, and the ratio is
   against ``nx.pagerank`` alone (the strictest reading). The ranks are checked against a plain
   Python power iteration with the same rules (largest difference of a rank). With
   ``--previous`` the function as migration 0003 defined it is timed too, on the same graph
   (its SQL file is run inside the same rolled-back transaction).
2. Embedding: C code chunks (windows of this project's own source) are inserted, then embedded
   with the default hashing embedder: the pure embedding rate (cold token memo), and the whole
   job (``tasks.embeddings.embed_table``: claim, embed, COPY, UPDATE). The stock way is the
   same features hashed with a plain per-token loop (blake2b for every token occurrence, no
   memo, no counting), checked to give the same vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402
import networkx as nx  # noqa: E402  # bench-only (requirements-dev.txt)

django.setup()

from django.db import connection, transaction  # noqa: E402

from tasks import embedders  # noqa: E402
from tasks.chunking import chunk_text, iter_source_files  # noqa: E402
from tasks.embeddings import embed_table  # noqa: E402

PAGERANK_TARGET_SECONDS = 10.0
PAGERANK_TARGET_RATIO = 2.0  # at most twice nx.pagerank's time
EMBED_TARGET_RATE = 2000.0


class Rollback(Exception):
    """Raised to leave the benchmark's transaction without committing anything."""


def run(sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def python_pagerank(
    edges: list[tuple[int, int]], nodes: list[int], iterations: int, damping: float = 0.85
) -> dict[int, float]:
    """The stock way: power iteration over Python dicts, same rules as the SQL function."""
    n = len(nodes)
    targets: dict[int, list[int]] = defaultdict(list)
    for source, target in edges:
        targets[source].append(target)
    rank = dict.fromkeys(nodes, 1.0 / n)
    for _ in range(iterations):
        dangling = sum(rank[node] for node in nodes if node not in targets)
        base = (1 - damping) / n + damping * dangling / n
        incoming = dict.fromkeys(nodes, 0.0)
        for source, outs in targets.items():
            share = rank[source] / len(outs)
            for target in outs:
                incoming[target] += share
        rank = {node: base + damping * incoming[node] for node in nodes}
    return rank


def bench_pagerank(nodes: int, edges: int, previous: bool) -> None:
    run("TRUNCATE platform.graph_nodes, platform.graph_edges CASCADE")
    started = time.perf_counter()
    run(
        "INSERT INTO platform.graph_nodes (origin, kind, name) "
        "SELECT 'bench', 'node', 'n' || g FROM generate_series(1, %s) g",
        [nodes],
    )
    low = run("SELECT min(id) FROM platform.graph_nodes")[0][0]
    run(
        "INSERT INTO platform.graph_edges (source_id, target_id, kind) "
        "SELECT DISTINCT %s + floor(random() * %s)::bigint, "
        "       %s + floor(power(random(), 2) * %s)::bigint, 'link' "
        "  FROM generate_series(1, %s) ON CONFLICT DO NOTHING",
        [low, nodes, low, nodes, int(edges * 1.06)],
    )
    run(
        "DELETE FROM platform.graph_edges WHERE ctid IN (SELECT ctid FROM platform.graph_edges "
        "OFFSET %s)",
        [edges],
    )
    count = run("SELECT count(*) FROM platform.graph_edges")[0][0]
    print(f"graph generated in SQL: {nodes:,} nodes, {count:,} edges "
          f"({time.perf_counter() - started:.1f} s)")  # fmt: skip

    started = time.perf_counter()
    row = run("SELECT * FROM platform.recalculate_all_pagerank(0.85, 20, 0)")[0]
    sql_seconds = time.perf_counter() - started
    print(
        f"recalculate_all_pagerank: {row[2]} iterations in {sql_seconds:.2f} s "
        f"({count * row[2] / sql_seconds:,.0f} edge-visits/s) - target under "
        f"{PAGERANK_TARGET_SECONDS:.0f} s and {PAGERANK_TARGET_RATIO:.0f}x networkx"
    )
    stored = dict(run("SELECT id, pagerank FROM platform.graph_nodes"))

    started = time.perf_counter()
    fetched = [
        (int(s), int(t)) for s, t in run("SELECT source_id, target_id FROM platform.graph_edges")
    ]
    ids = [int(i) for (i,) in run("SELECT id FROM platform.graph_nodes")]
    fetch_seconds = time.perf_counter() - started
    nx_seconds, build_seconds = networkx_pagerank(fetched, ids)
    print(
        f"anchor, networkx {nx.__version__}: nx.pagerank {nx_seconds:.2f} s (DiGraph built in "
        f"{build_seconds:.2f} s, edges fetched in {fetch_seconds:.2f} s); SQL / nx.pagerank = "
        f"{sql_seconds / nx_seconds:.2f}x, SQL / (build + nx.pagerank) = "
        f"{sql_seconds / (nx_seconds + build_seconds):.2f}x"
    )
    expected = python_pagerank(fetched, ids, 20)
    difference = max(abs(stored[node] - rank) for node, rank in expected.items())
    print(f"largest rank difference from a Python power iteration: {difference:.1e}")
    if previous:
        run((ROOT / "sql_jobs/sql/0005_pagerank_arrays.reverse.sql").read_text())
        run("DROP TABLE IF EXISTS pg_temp.pr_edge, pg_temp.pr_key")  # the new one's, same name
        started = time.perf_counter()
        run("SELECT * FROM platform.recalculate_all_pagerank(0.85, 20, 0)")
        old_seconds = time.perf_counter() - started
        print(f"previous function (migration 0003): {old_seconds:.2f} s; the new one is "
              f"{old_seconds / sql_seconds:.1f}x faster")  # fmt: skip
    if sql_seconds > PAGERANK_TARGET_SECONDS or sql_seconds > PAGERANK_TARGET_RATIO * nx_seconds:
        print("PAGERANK TARGET MISSED")


def networkx_pagerank(edges: list[tuple[int, int]], nodes: list[int]) -> tuple[float, float]:
    """networkx's PageRank on the same graph, exactly 20 iterations: (pagerank s, build s).

    ``tol=0`` never converges, so nx.pagerank runs all 20 iterations and then raises
    ``PowerIterationFailedConvergence``; the work timed is the same as a run that returns.
    """
    started = time.perf_counter()
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from(edges)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with contextlib.suppress(nx.PowerIterationFailedConvergence):  # expected: see above
        nx.pagerank(graph, alpha=0.85, max_iter=20, tol=0)
    return time.perf_counter() - started, build_seconds


def naive_embed(text: str, dim: int) -> list[float]:
    """The stock way: one blake2b per token occurrence, no memo, counted in a plain dict."""
    counts: dict[str, int] = {}
    buckets: dict[str, tuple[int, float]] = {}
    for token in embedders.tokens(text):
        digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
        buckets[token] = (digest % dim, 1.0 if digest >> 63 else -1.0)
        counts[token] = counts.get(token, 0) + 1
    vector = [0.0] * dim
    for token, count in counts.items():
        bucket, sign = buckets[token]
        vector[bucket] += sign * (1.0 + math.log(count))
    norm = math.sqrt(math.fsum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector


def source_windows(count: int) -> list[str]:
    windows: list[str] = []
    files = [p for p in iter_source_files(ROOT) if p.suffix == ".py"]
    while len(windows) < count:
        for path in files:
            for chunk in chunk_text(path, path.read_text(encoding="utf-8"), max_lines=40):
                windows.append(f"{chunk.content}# copy {len(windows)}\n")
                if len(windows) == count:
                    return windows
    return windows


def bench_embedding(count: int) -> None:
    texts = source_windows(count)
    embedder = embedders.HashingEmbedder(256)
    embedders.clear_cache()
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    print(f"hashing embedder, {count:,} chunks (cold memo): {seconds:.2f} s = "
          f"{count / seconds:,.0f} chunks/s - target {EMBED_TARGET_RATE:,.0f}/s")  # fmt: skip

    started = time.perf_counter()
    naive = [naive_embed(text, 256) for text in texts]
    naive_seconds = time.perf_counter() - started
    same = all(
        max(abs(a - b) for a, b in zip(left, right, strict=True)) < 1e-12
        for left, right in zip(vectors, naive, strict=True)
    )
    print(f"stock (per-token loop, no memo): {naive_seconds:.2f} s = {count / naive_seconds:,.0f} "
          f"chunks/s; ours is {naive_seconds / seconds:.2f}x; same vectors: {same}")  # fmt: skip

    run("TRUNCATE platform.code_chunks")
    run(
        "INSERT INTO platform.code_chunks (repo, path, chunk_index, language, start_line, "
        "end_line, content, content_hash) SELECT 'bench', 'p' || i, 0, 'python', 1, 40, t, "
        "md5(t) FROM unnest(%s::text[]) WITH ORDINALITY AS x(t, i)",
        [texts],
    )
    embedders.clear_cache()
    started = time.perf_counter()
    outcome = embed_table("code_chunks", embedder=embedder, batch_size=1000)
    job_seconds = time.perf_counter() - started
    print(f"embedding job end to end (claim, embed, COPY, UPDATE): {outcome['embedded']:,} rows "
          f"in {job_seconds:.2f} s = {count / job_seconds:,.0f} rows/s")  # fmt: skip
    if count / seconds < EMBED_TARGET_RATE:
        print("EMBEDDING TARGET MISSED")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=1_000_000)
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument(
        "--previous", action="store_true", help="also time migration 0003's PageRank"
    )
    parser.add_argument("--skip-embedding", action="store_true")
    args = parser.parse_args()
    try:
        with transaction.atomic():
            bench_pagerank(args.nodes, args.edges, args.previous)
            if not args.skip_embedding:
                bench_embedding(args.chunks)
            raise Rollback
    except Rollback:
        print("(rolled back: the database is as it was)")


if __name__ == "__main__":
    main()
