"""Hostile manifests: alias bombs, deep nesting, huge files, NUL bytes, non-UTF-8, broken YAML.

Each is refused within seconds with a located error, never a traceback.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.errors import ManifestInvalid, OrchestratorError
from orchestrator.manifest import load_manifest, load_manifest_text


def hostile(data: str | bytes, **kwargs: object) -> list[str]:
    started = time.monotonic()
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest_text(data, path="jobs.yaml", **kwargs)
    assert time.monotonic() - started < 5, "hostile input must be refused within seconds"
    for error in caught.value.errors:
        assert isinstance(error, OrchestratorError)
        assert error.path == "jobs.yaml"
        assert error.line is not None
    return [str(error) for error in caught.value.errors]


def test_hostile__alias_bomb() -> None:
    """A billion-laughs document is refused at its first anchor, before any expansion."""
    lines = ["version: 1", 'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    lines.append("jobs: *a9")
    assert hostile("\n".join(lines)) == [
        "jobs.yaml:2: anchors (&a0) and aliases are not allowed in a manifest"
    ]


def test_hostile__alias_without_anchor() -> None:
    """Aliases are refused even when no anchor is involved."""
    assert hostile("version: 1\njobs: *x\n") == [
        "jobs.yaml:2: aliases (*x) are not allowed in a manifest"
    ]


def test_hostile__deep_nesting() -> None:
    """Nesting that would crash libyaml's recursive composer is refused at the limit."""
    assert hostile("version: 1\njobs: " + "[" * 200_000 + "]" * 200_000) == [
        "jobs.yaml:2: nesting deeper than 32 levels"
    ]


def test_hostile__size_cap() -> None:
    """Files above the cap are refused before parsing."""
    assert hostile("version: 1\njobs: {}\n# " + "x" * 2000, max_bytes=1024) == [
        "jobs.yaml:1: the file is 2022 bytes; manifests are limited to 1024 bytes"
    ]


def test_hostile__sixteen_mebibytes_refused_quickly(tmp_path: Path) -> None:
    """A file over the default 16 MiB cap is refused without reading it all."""
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"version: 1\njobs: {}\n" + b"#" * (17 * 1024 * 1024))
    with pytest.raises(ManifestInvalid, match="manifests are limited to 16777216 bytes"):
        load_manifest(path)


def test_hostile__nul_and_non_utf8() -> None:
    """NUL bytes and undecodable bytes are refused with the line they are on."""
    assert hostile(b"version: 1\njobs:\n  a\x00: {}\n") == [
        "jobs.yaml:3: NUL byte in the file (is it UTF-16 or binary?)"
    ]
    assert hostile(b"version: 1\njobs:\n  caf\xe9: {}\n") == [
        "jobs.yaml:3: not UTF-8: byte 0xe9 cannot be decoded"
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "jobs.yaml:1: the manifest is empty; it needs 'version: 1' and 'jobs'"),
        ("- version: 1\n", "jobs.yaml:1: the manifest must be a mapping, got a list"),
        ("just text\n", "jobs.yaml:1: the manifest must be a mapping, got a string"),
        ("version: 1\njobs: {}\n---\nversion: 1\n",
         "jobs.yaml:3: a manifest is one YAML document; found a second one"),
        ("version: 1\njobs: !!python/object:os.system {}\n",
         "jobs.yaml:2: the YAML tag 'tag:yaml.org,2002:python/object:os.system' is not allowed "
         "in a manifest"),
        ("version: 1\njobs:\n  a: {schedule: '@daily'\n", "jobs.yaml:4: invalid YAML: did not "
         "find expected ',' or '}' while parsing a flow mapping"),
        ("version: 1\n\tjobs: {}\n", "jobs.yaml:2: invalid YAML: found a tab character that "
         "violates indentation while scanning a plain scalar"),
        ("version: 1\njobs: {}\nx: \x07\n", "jobs.yaml:3: invalid YAML: control characters are "
         "not allowed"),
    ],
)  # fmt: skip
def test_hostile__malformed_documents(text: str, error: str) -> None:
    """Non-mappings, several documents, foreign tags and broken YAML: one located error."""
    assert hostile(text) == [error]


def test_hostile__huge_value_is_not_echoed_whole() -> None:
    """An error about a 5 MB value quotes its start and end, not all of it."""
    (error,) = hostile(
        b"version: 1\njobs:\n  a: {on: startup, task: tasks.knowledge.migrate, timezone: '"
        + b"x" * (5 * 1024 * 1024)
        + b"'}\n"
    )
    assert error.startswith("jobs.yaml:3: job 'a': timezone: unknown time zone 'xxx")
    assert " ... " in error
    assert len(error) < 1100
