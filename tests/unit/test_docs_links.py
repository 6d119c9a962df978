"""The README and docs/ link only inside the repository, and every link lands somewhere.

A clone has only the repository: a link to a sibling folder of the checkout (``../shared/...``)
or to a file that moved is a dead end for a reader, so both fail here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: ``[text](target)`` and ``![alt](target)``; ``[name]: target`` reference definitions.
INLINE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.MULTILINE)
EXTERNAL = ("http://", "https://", "mailto:")


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _prose(text: str) -> str:
    """The text outside fenced code blocks (a link-like string in code is not a link)."""
    return re.sub(r"^(```|~~~).*?^\1[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def links(path: Path) -> list[str]:
    text = _prose(path.read_text())
    return INLINE.findall(text) + REFERENCE.findall(text)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower-case, punctuation dropped, '-' for each space."""
    found: set[str] = set()
    for line in _prose(path.read_text()).splitlines():
        if match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            found.add(slug)
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    problems: list[str] = []
    for target in links(path):
        if target.startswith(EXTERNAL):
            continue
        location, _, fragment = target.partition("#")
        resolved = (path.parent / location).resolve() if location else path
        where = f"{path.relative_to(root)}: {target}"
        if not resolved.is_relative_to(root):
            problems.append(f"{where}: points outside the repository")
        elif not resolved.exists():
            problems.append(f"{where}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            problems.append(f"{where}: no heading #{fragment}")
    return problems


def test_docs__the_reference_documents_exist() -> None:
    """docs/ holds the manifest reference, the architecture and the operations guide."""
    names = {path.name for path in documents()}
    assert {"README.md", "manifest.md", "architecture.md", "operations.md"} <= names


def test_docs__every_relative_link_resolves_inside_the_repository() -> None:
    """Every relative link of README.md and docs/*.md names a file of the repository (and a
    heading of it when it has a #fragment); none leaves the repository."""
    problems = [problem for path in documents() for problem in broken_links(path)]
    assert problems == []


def test_docs__no_document_refers_to_the_checkout_s_siblings() -> None:
    """No document mentions ``../shared`` or another path above the repository, linked or not."""
    offenders = [
        str(path.relative_to(ROOT)) for path in documents() if "../shared" in path.read_text()
    ]
    assert offenders == []


def test_docs__the_link_checker_catches_a_dead_and_an_escaping_link(tmp_path: Path) -> None:
    """The checker itself reports a missing file, a path outside the repository and a missing
    heading, accepts a good link with its anchor and ignores links inside code blocks, so the
    test above cannot pass vacuously."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A newcomer's route\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "[gone](docs/missing.md) [out](../outside.md) [anchor](docs/a.md#nope)\n"
        "[ok](docs/a.md#a-newcomers-route) [web](https://example.com/x)\n"
        "```\n[code](nowhere.md)\n```\n"
    )
    assert [problem.rsplit(": ", 1)[1] for problem in broken_links(readme, tmp_path)] == [
        "no such file",
        "points outside the repository",
        "no heading #nope",
    ]
