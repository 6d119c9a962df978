"""Per-job reuse: a job is kept from the last load only when its own text, the rest of the file
outside ``jobs`` and the cache's context are all unchanged; a kept job that moved gets its new
lines when it is materialised, and ``defaults``' lines stay where they are."""

from __future__ import annotations

import pickle
import textwrap

from orchestrator.job_sources import JobSource, SourceIndex
from orchestrator.manifest import Manifest, load_manifest_text
from orchestrator.placed_manifest import PlacedManifest, dumps
from orchestrator.plan import Placed
from orchestrator.schedules import EngineSchedule

TEXT = """\
version: 1
defaults:
  queue: low
jobs:
  first:
    schedule: "0 1 * * *"
    sql: SELECT 1
  second:
    schedule: "0 2 * * *"
    sql: |
      SELECT 2
  third:
    schedule: "0 3 * * *"
    task: tasks.backup.backup_database
"""


def load(text: str, known: dict[str, JobSource] | None = None, context: str = "c") -> tuple[
    Manifest, SourceIndex
]:  # fmt: skip
    index = SourceIndex(context, known)
    manifest = load_manifest_text(textwrap.dedent(text), path="jobs.yaml", reuse=index)
    return manifest, index


def sources(index: SourceIndex) -> dict[str, JobSource]:
    return dict(index.fresh) | {name: source for name, (source, _) in index.hits.items()}


def test_sources__unchanged_jobs_are_kept_and_only_the_edited_one_is_validated() -> None:
    """A first load keeps nothing and records every job; after an edit of one job's SQL only
    that job is validated again, the others are hits, and the order names all three."""
    manifest, first = load(TEXT)
    assert [job.name for job in manifest.jobs] == ["first", "second", "third"]
    assert not first.hits
    assert set(first.fresh) == {"first", "second", "third"}
    edited = TEXT.replace("SELECT 2", "SELECT 22")
    manifest, second = load(edited, sources(first))
    assert [job.name for job in manifest.jobs] == ["second"]
    assert set(second.hits) == {"first", "third"}
    assert second.order == ["first", "second", "third"]
    assert second.fresh["second"].digest != first.fresh["second"].digest


def test_sources__a_moved_job_is_kept_with_its_new_line() -> None:
    """Inserting a job above the others keeps them (their text is the same) and reports the
    line their key is at now; a removed job is simply absent from the order."""
    _, first = load(TEXT)
    inserted = TEXT.replace(
        "jobs:\n", 'jobs:\n  zero:\n    schedule: "0 0 * * *"\n    sql: SELECT 0\n'
    ).replace('  third:\n    schedule: "0 3 * * *"\n    task: tasks.backup.backup_database\n', "")
    manifest, second = load(inserted, sources(first))
    assert [job.name for job in manifest.jobs] == ["zero"]
    assert second.order == ["zero", "first", "second"]
    assert second.hits["first"] == (first.fresh["first"], 8)
    assert second.hits["second"][1] == 11


def test_sources__a_renamed_job_is_validated_again() -> None:
    """A job's name is part of its text: renamed, it is a new job."""
    _, first = load(TEXT)
    manifest, second = load(TEXT.replace("  third:", "  third-renamed:"), sources(first))
    assert [job.name for job in manifest.jobs] == ["third-renamed"]
    assert set(second.hits) == {"first", "second"}


def test_sources__defaults_context_or_indentation_change_keeps_nothing() -> None:
    """What a job inherits (``defaults``), the cache's context and a job's indentation are part
    of its digest: changing any re-validates every job."""
    _, first = load(TEXT)
    known = sources(first)
    for text, context in (
        (TEXT.replace("queue: low", "queue: high"), "c"),
        (TEXT, "other context"),
        ("\n" + TEXT, "c"),  # defaults one line lower: inherited lines move
        (TEXT.replace("\n  ", "\n   "), "c"),
    ):
        manifest, index = load(text, known, context)
        assert not index.hits, (text, context)
        assert len(manifest.jobs) == 3


def test_sources__flow_style_jobs_are_never_kept() -> None:
    """In a flow mapping the text of a job is not delimited by lines: nothing is reused."""
    text = 'version: 1\njobs: {a: {schedule: "0 1 * * *", sql: SELECT 1},\n  b: {on: startup, task: tasks.knowledge.migrate}}\n'  # noqa: E501
    _, first = load(text)
    assert not first.fresh
    manifest, second = load(text, {"a": JobSource("x", 2, 2)})
    assert not second.hits
    assert len(manifest.jobs) == 2


def placed_from(manifest: Manifest) -> PlacedManifest:
    jobs = [
        Placed(spec=spec, engine="celery", schedule=EngineSchedule(kind="startup"))
        for spec in manifest.jobs
    ]
    return PlacedManifest(
        jobs,
        hashes={job.spec.name: f"h-{job.spec.name}" for job in jobs},
        rendered={job.spec.name: {"n": job.spec.name} for job in jobs},
    )


def test_combine__kept_jobs_are_shifted_and_inherited_lines_stay() -> None:
    """A kept job's key and own fields move by the shift, a field inherited from defaults keeps
    the defaults line; hashes, rendered state and order come through, and a round trip through
    the cache's pickle keeps the shift."""
    manifest, first = load(TEXT)
    old = pickle.loads(dumps(placed_from(manifest)))  # noqa: S301 - our own bytes
    inserted = TEXT.replace("jobs:\n", "jobs:\n  zero:\n    on: startup\n    sql: SELECT 0\n")
    new_manifest, second = load(inserted, sources(first))
    fresh = placed_from(new_manifest)
    shifts = {
        name: (line - source.line, source.line, source.end)
        for name, (source, line) in second.hits.items()
    }
    combined = PlacedManifest.combine(second.order, fresh, old, shifts, ())
    assert [name for name, _ in combined.names()] == ["zero", "first", "second", "third"]
    assert combined.hashes["third"] == "h-third"
    assert combined.rendered["first"] == {"n": "first"}
    for view in (combined, pickle.loads(dumps(combined))):  # noqa: S301
        spec = view.get("first").spec
        assert (spec.line, spec.line_of("schedule"), spec.line_of("sql")) == (8, 9, 10)
        assert spec.line_of("queue") == 3  # from defaults: not moved
        assert view.get("third").spec.line == 15
        assert view.get("zero").spec.line == 5
