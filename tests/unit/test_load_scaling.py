"""Loading at scale: the YAML node budget grows with the file, SQL bodies are parsed once per
process, and the garbage collector is held off while loading and classifying, then restored."""

from __future__ import annotations

import gc

import pytest

from orchestrator import sql_analysis
from orchestrator.classifier import classify_all
from orchestrator.errors import ManifestInvalid
from orchestrator.gc_pause import gc_paused
from orchestrator.manifest import load_manifest_text
from orchestrator.yaml_source import (
    BYTES_PER_NODE,
    DEFAULT_MAX_NODES,
    YamlProblem,
    compose,
    node_limit,
)
from tests.unit.conftest import engines


def jobs_text(count: int) -> str:
    lines = ["version: 1", "jobs:"]
    for index in range(count):
        lines += [f"  job-{index}:", '    schedule: "0 * * * *"', f"    sql: SELECT {index}"]
    return "\n".join(lines) + "\n"


def test_node_limit__scales_with_the_file() -> None:
    """Small files get the fixed budget; a larger file one node per BYTES_PER_NODE bytes."""
    assert node_limit(10) == DEFAULT_MAX_NODES
    big = DEFAULT_MAX_NODES * BYTES_PER_NODE * 3
    assert node_limit(big) == DEFAULT_MAX_NODES * 3


def test_compose__node_budget_error_is_located_and_explained() -> None:
    """Filler denser than the budget is refused at the line where the budget runs out, and
    the message says what the budget is."""
    text = b"a:\n" + b"- 1\n" * 50
    with pytest.raises(YamlProblem) as caught:
        compose(text, max_nodes=20)
    assert caught.value.line == 19  # the 21st node: the mapping, its key, then 18 items
    assert "more than 20 YAML nodes" in caught.value.message
    assert f"one per {BYTES_PER_NODE} bytes" in caught.value.message


def test_compose__large_manifest_is_not_refused_for_its_node_count() -> None:
    """More nodes than the fixed budget are accepted when the file is large enough to hold them
    at one node per BYTES_PER_NODE bytes (the same nodes padded with a comment), and refused
    when packed denser."""
    dense = b"x: [" + b"1," * (DEFAULT_MAX_NODES + 10) + b"1]\n"  # 1,000,014 nodes, ~2 MB
    with pytest.raises(YamlProblem, match="YAML nodes"):
        compose(dense)
    padded = dense + b"#" + b"-" * (len(dense) * 2) + b"\n"  # the same nodes in ~6 MB
    root = compose(padded)
    assert root is not None
    assert len(root.items[1].items) == DEFAULT_MAX_NODES + 11


def test_analyse_sql__each_body_parsed_once_beyond_any_lru_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """20,000 distinct bodies (more than the old LRU's 16,384) are each parsed once, however
    many times they are looked up."""
    sql_analysis.clear_cache()
    calls: list[str] = []
    real = sql_analysis._analyse

    def counting(sql: str) -> sql_analysis.SqlFacts:
        calls.append(sql)
        return real(sql)

    monkeypatch.setattr(sql_analysis, "_analyse", counting)
    bodies = [f"SELECT {index}" for index in range(20_000)]
    for _ in range(3):
        for body in bodies:
            sql_analysis.analyse_sql(body)
    assert len(calls) == 20_000
    sql_analysis.clear_cache()


def test_gc_paused__restores_the_collector_even_on_error() -> None:
    """The collector is off inside the block and back on after it, also when it raises; a
    collector disabled by the caller stays disabled."""
    inside: list[bool] = []

    def failing() -> None:
        with gc_paused():
            with gc_paused():
                inside.append(gc.isenabled())
            inside.append(gc.isenabled())
            raise RuntimeError("boom")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        failing()
    assert inside == [False, False]
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_load_and_classify__collector_off_inside_and_restored_after_errors(
    monkeypatch: pytest.MonkeyPatch, caps: object
) -> None:
    """Loading and classifying run with the collector off; an invalid manifest leaves it on."""
    seen: list[bool] = []
    real = sql_analysis._analyse

    def spy(sql: str) -> sql_analysis.SqlFacts:
        seen.append(gc.isenabled())
        return real(sql)

    sql_analysis.clear_cache()
    monkeypatch.setattr(sql_analysis, "_analyse", spy)
    manifest = load_manifest_text(jobs_text(3))
    assert seen == [False, False, False]
    assert gc.isenabled()
    placements, errors = classify_all(manifest.jobs, engines(caps))
    assert not errors
    assert len(placements) == 3
    assert gc.isenabled()
    with pytest.raises(ManifestInvalid):
        load_manifest_text("version: 1\njobs: {a: {schedule: nope, sql: SELECT}}\n")
    with pytest.raises(ManifestInvalid):
        load_manifest_text(b"version: 1\njobs: [\n")
    assert gc.isenabled()
    sql_analysis.clear_cache()
