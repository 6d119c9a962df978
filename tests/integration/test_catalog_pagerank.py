"""``platform.recalculate_all_pagerank()`` on real graphs, against a reference computed in Python.

The reference is a plain power iteration with the same damping and dangling-node rule; the SQL
must match it to 1e-6 on a known graph and on random ones, and a second run must change nothing.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence

import pytest
from django.db import connection

from tests.integration.platform_db import clean_platform, empty_platform, fetch, scalar

__all__ = ("clean_platform", "empty_platform")


def reference_pagerank(
    nodes: Sequence[int],
    edges: Sequence[tuple[int, int]],
    damping: float = 0.85,
    max_iterations: int = 20,
    tolerance: float = 1e-6,
) -> tuple[dict[int, float], int]:
    """Textbook power iteration: dangling mass spread evenly, parallel edges counted once."""
    n = len(nodes)
    targets: dict[int, set[int]] = defaultdict(set)
    for source, target in edges:
        targets[source].add(target)
    rank = dict.fromkeys(nodes, 1.0 / n)
    iterations = 0
    change = float("inf")
    while iterations < max_iterations and change >= tolerance:
        dangling = sum(rank[node] for node in nodes if not targets.get(node))
        base = (1 - damping) / n + damping * dangling / n
        incoming = dict.fromkeys(nodes, 0.0)
        for source, outs in targets.items():
            share = rank[source] / len(outs)
            for target in outs:
                incoming[target] += share
        new = {node: base + damping * incoming[node] for node in nodes}
        change = sum(abs(new[node] - rank[node]) for node in nodes)
        rank = new
        iterations += 1
    return rank, iterations


def load_graph(names: Sequence[str], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for name in names:
        ids[name] = scalar(
            "INSERT INTO platform.graph_nodes (origin, kind, name) VALUES ('test', 'node', %s) "
            "RETURNING id",
            [name],
        )
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO platform.graph_edges (source_id, target_id, kind) VALUES (%s, %s, %s)",
            [(ids[source], ids[target], kind) for source, target, kind in edges],
        )
    return ids


def stored_ranks(ids: dict[str, int]) -> dict[str, float]:
    by_id = dict(fetch("SELECT id, pagerank FROM platform.graph_nodes"))
    return {name: by_id[node] for name, node in ids.items()}


def test_pagerank__cycle_is_uniform(empty_platform: None) -> None:
    """On a directed 3-cycle every node has rank exactly 1/3, and the run converges."""
    ids = load_graph("abc", [("a", "b", "x"), ("b", "c", "x"), ("c", "a", "x")])
    nodes, edges, iterations, delta, converged = fetch(
        "SELECT * FROM platform.recalculate_all_pagerank()"
    )[0]
    assert (nodes, edges, converged) == (3, 3, True)
    assert iterations == 1
    assert delta < 1e-12
    for rank in stored_ranks(ids).values():
        assert rank == pytest.approx(1 / 3, abs=1e-12)


KNOWN_NODES = ("a", "b", "c", "d", "e", "f", "g")
# 'e' is dangling, 'f' points at itself, a->b exists twice (two kinds), 'g' has no edges at all.
KNOWN_EDGES = (
    ("a", "b", "imports"), ("a", "b", "calls"), ("a", "c", "imports"), ("b", "c", "imports"),
    ("c", "a", "imports"), ("c", "e", "imports"), ("d", "c", "imports"), ("d", "a", "calls"),
    ("f", "f", "calls"), ("f", "e", "imports"),
)  # fmt: skip


def test_pagerank__known_graph_matches_python_reference(empty_platform: None) -> None:
    """With dangling, isolated, self-looping and doubled edges, the 20-iteration ranks equal a
    Python power iteration to 1e-9, sum to 1, and a converged run matches to 1e-6."""
    ids = load_graph(KNOWN_NODES, KNOWN_EDGES)
    edges = [(ids[s], ids[t]) for s, t, _ in KNOWN_EDGES]
    expected, expected_iterations = reference_pagerank(list(ids.values()), edges)

    row = fetch("SELECT * FROM platform.recalculate_all_pagerank()")[0]
    assert row[:3] == (7, 9, expected_iterations)
    ranks = stored_ranks(ids)
    for name, node in ids.items():
        assert ranks[name] == pytest.approx(expected[node], abs=1e-9), name
    assert sum(ranks.values()) == pytest.approx(1.0, abs=1e-12)
    assert ranks["c"] > ranks["a"] > ranks["g"]

    converged, _ = reference_pagerank(
        list(ids.values()), edges, max_iterations=10_000, tolerance=1e-15
    )
    fetch("SELECT * FROM platform.recalculate_all_pagerank(0.85, 1000, 1e-13)")
    ranks = stored_ranks(ids)
    for name, node in ids.items():
        assert ranks[name] == pytest.approx(converged[node], abs=1e-6), name


def test_pagerank__random_graph_matches_reference_and_is_idempotent(empty_platform: None) -> None:
    """A seeded random graph of 300 nodes / 2,000 edges matches the reference to 1e-6 for another
    damping factor; a second run leaves every rank as it was, and each run is recorded."""
    rng = random.Random(7)  # noqa: S311 - a reproducible test graph, not a secret
    names = [f"n{index}" for index in range(300)]
    edges = [(rng.choice(names), rng.choice(names[:150]), "link") for _ in range(2000)]
    ids = load_graph(names, sorted(set(edges)))
    expected, _ = reference_pagerank(
        list(ids.values()), [(ids[s], ids[t]) for s, t, _ in edges], damping=0.9,
        max_iterations=50, tolerance=1e-9,
    )  # fmt: skip

    fetch("SELECT * FROM platform.recalculate_all_pagerank(0.9, 50, 1e-9)")
    first = stored_ranks(ids)
    fetch("SELECT * FROM platform.recalculate_all_pagerank(0.9, 50, 1e-9)")
    second = stored_ranks(ids)
    for name, node in ids.items():
        assert first[name] == pytest.approx(expected[node], abs=1e-6)
        assert second[name] == pytest.approx(first[name], abs=1e-12)
    assert scalar("SELECT count(*) FROM platform.pagerank_runs") == 2


def test_pagerank__empty_graph_and_bad_arguments(empty_platform: None) -> None:
    """An empty graph is a recorded no-op; a damping factor of 1 is refused with a reason."""
    assert fetch("SELECT * FROM platform.recalculate_all_pagerank()") == [(0, 0, 0, 0.0, True)]
    from django.db import DatabaseError

    with pytest.raises(DatabaseError, match="need 0 <= damping < 1"):
        fetch("SELECT * FROM platform.recalculate_all_pagerank(1.0)")


def test_pagerank__ids_with_gaps_match_reference(empty_platform: None) -> None:
    """Node ids with gaps (deleted nodes, so keys cannot be ``id - min + 1``) give the same
    ranks as the reference, and only the remaining nodes are ranked."""
    rng = random.Random(11)  # noqa: S311 - a reproducible test graph, not a secret
    names = [f"n{index}" for index in range(200)]
    edges = sorted({(rng.choice(names), rng.choice(names[:80]), "link") for _ in range(900)})
    ids = load_graph(names, edges)
    gone = {name for index, name in enumerate(names) if index % 7 == 3}
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM platform.graph_nodes WHERE id = ANY(%s)", [[ids[name] for name in gone]]
        )
    kept = {name: node for name, node in ids.items() if name not in gone}
    kept_edges = [(kept[s], kept[t]) for s, t, _ in edges if s in kept and t in kept]
    expected, expected_iterations = reference_pagerank(list(kept.values()), kept_edges)

    row = fetch("SELECT * FROM platform.recalculate_all_pagerank()")[0]
    assert row[:3] == (len(kept), len(set(kept_edges)), expected_iterations)
    ranks = stored_ranks(kept)
    for name, node in kept.items():
        assert ranks[name] == pytest.approx(expected[node], abs=1e-9), name
    assert sum(ranks.values()) == pytest.approx(1.0, abs=1e-12)
