"""The chunker: every line in exactly one chunk, definitions kept whole, imports resolved."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from tasks.chunking import chunk_text, iter_source_files, module_name, python_imports

MODULE = '''"""Doc."""

import os
from . import sibling

X = 1


# helper comment
@decorator
def first(a):
    return a


class Second:
    def method(self):
        return os.sep
'''


def joined(chunks: list) -> str:
    return "".join(chunk.content for chunk in chunks)


def test_python__definitions_are_whole_chunks_with_their_comments() -> None:
    """The head (docstring, imports, constants) is one chunk; a function takes the comment and
    decorator above it; a class is one chunk; lines are numbered as in the file."""
    chunks = chunk_text("pkg/mod.py", MODULE)
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [
        (None, 1, 6), ("first", 7, 12), ("Second", 13, 17),
    ]  # fmt: skip
    assert chunks[1].content.startswith("\n\n# helper comment\n@decorator\ndef first")
    assert joined(chunks) == MODULE
    assert [c.index for c in chunks] == [0, 1, 2]


def test_python__long_definition_is_cut_into_windows() -> None:
    """A function longer than max_lines becomes several chunks of at most max_lines lines."""
    body = "def big():\n" + "".join(f"    x{i} = {i}\n" for i in range(25))
    chunks = chunk_text("big.py", body, max_lines=10)
    assert [(c.start_line, c.end_line) for c in chunks] == [(1, 10), (11, 20), (21, 26)]
    assert {c.symbol for c in chunks} == {"big"}
    assert joined(chunks) == body


def test_python__syntax_error_falls_back_to_windows() -> None:
    """A file that does not parse is still chunked, by lines."""
    chunks = chunk_text("broken.py", "def (:\n  pass\n")
    assert [(c.start_line, c.end_line, c.symbol) for c in chunks] == [(1, 2, None)]


@given(
    st.lists(st.text(alphabet="abc ()#:=\t'\"", max_size=30), max_size=120),
    st.integers(min_value=1, max_value=50),
    st.sampled_from(["f.py", "f.sql", "f.md"]),
)
def test_chunking__every_line_exactly_once(lines: list[str], max_lines: int, name: str) -> None:
    """For any text and window, the chunks are contiguous, in order, no longer than max_lines,
    and give back the text (up to its final newline)."""
    text = "\n".join(lines) + ("\n" if lines else "")
    chunks = chunk_text(name, text, max_lines=max_lines)
    expected_line = 1
    for chunk in chunks:
        assert chunk.start_line == expected_line
        assert chunk.end_line - chunk.start_line + 1 <= max_lines
        expected_line = chunk.end_line + 1
    assert joined(chunks) == text
    assert len({c.content_hash for c in chunks}) <= len(chunks)


def test_imports__absolute_relative_and_packages() -> None:
    """Absolute and relative imports resolve to module names from the importing module."""
    source = "import os.path\nfrom tasks import conf\nfrom . import libpq\nfrom ..x import y\n"
    assert python_imports(source, "tasks.backup") == [
        ("os.path", ""), ("tasks", "conf"), ("tasks", "libpq"), ("x", "y"),
    ]  # fmt: skip
    assert python_imports("from .backup import make_backup\n", "tasks", is_package=True) == [
        ("tasks.backup", "make_backup")
    ]
    assert module_name("tasks/__init__.py") == "tasks"
    assert module_name("tasks/backup.py") == "tasks.backup"


def test_source_files__skip_tool_and_data_directories(tmp_path: Path) -> None:
    """Only files in known languages outside .venv/.git/.data/__pycache__ are walked, sorted."""
    for relative in ("b.py", "a/c.sql", ".venv/x.py", "a/__pycache__/c.py", ".data/d.md",
                     "image.png", "z/README.md"):  # fmt: skip
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x\n")
    found = [p.relative_to(tmp_path).as_posix() for p in iter_source_files(tmp_path)]
    assert found == ["b.py", "a/c.sql", "z/README.md"]
