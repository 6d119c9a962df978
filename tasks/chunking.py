"""Split source files into chunks for code search: pure functions, no database.

Python files are cut at top-level definitions (a function or class with its decorators and the
comments above it is one chunk; the statements between definitions are grouped), other files
into fixed windows of lines. Every line of a file belongs to exactly one chunk, in order, so
joining the chunks gives the file back: nothing is lost and nothing is counted twice. A chunk
longer than ``max_lines`` is cut into windows.
"""

from __future__ import annotations

import ast
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LANGUAGES = {
    ".py": "python",
    ".sql": "sql",
    ".md": "markdown",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".sh": "shell",
    ".txt": "text",
    ".html": "html",
}
SKIPPED_DIRS = frozenset(
    {".git", ".venv", "venv", ".data", "node_modules", "__pycache__", ".ruff_cache",
     ".pytest_cache", ".mypy_cache", "build", "dist"}
)  # fmt: skip
MAX_FILE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    start_line: int
    end_line: int
    symbol: str | None
    content: str

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


def language_of(path: str | Path) -> str | None:
    return LANGUAGES.get(Path(path).suffix.lower())


def iter_source_files(root: Path) -> Iterator[Path]:
    """Files under ``root`` in a known language, skipping tool and data directories, sorted."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS and not d.startswith("."))
        for name in sorted(files):
            path = Path(directory) / name
            if language_of(path) and path.stat().st_size <= MAX_FILE_BYTES:
                yield path


def _spans(lines: list[str], max_lines: int) -> list[tuple[int, int, str | None]]:
    """(first, last, symbol) line spans, 1-based inclusive, for a Python module's lines."""
    try:
        tree = ast.parse("\n".join(lines))
    except (SyntaxError, ValueError):
        return [(1, len(lines), None)]
    starts: list[tuple[int, str | None]] = []
    previous_was_definition = True
    previous_end = 0
    for node in tree.body:
        is_definition = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            # The comments and blank lines right above a definition belong to it.
            while first - 1 > previous_end and (
                not lines[first - 2].strip() or lines[first - 2].lstrip().startswith("#")
            ):
                first -= 1
            starts.append((first, node.name))
        elif previous_was_definition:
            starts.append((node.lineno, None))
        previous_was_definition = is_definition
        previous_end = node.end_lineno or node.lineno
    if not starts:
        return [(1, len(lines), None)]
    # Comments and blank lines before a definition belong to it; the file's head to the first.
    bounds = [1] + [start for start, _ in starts[1:]]
    spans = []
    for position, (_, symbol) in enumerate(starts):
        first = bounds[position]
        last = bounds[position + 1] - 1 if position + 1 < len(starts) else len(lines)
        if last >= first:
            spans.append((first, last, symbol))
    return spans


def chunk_lines(lines: list[str], max_lines: int = 60) -> list[tuple[int, int, str | None]]:
    return [
        (start, min(start + max_lines - 1, len(lines)), None)
        for start in range(1, len(lines) + 1, max_lines)
    ]


def chunk_text(path: str | Path, text: str, max_lines: int = 80) -> list[Chunk]:
    """The chunks of one file's text (see the module docstring)."""
    if max_lines < 1:
        raise ValueError("max_lines must be at least 1")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not open another line
    if not lines:
        return []
    if language_of(path) == "python":
        spans = _spans(lines, max_lines)
    else:
        spans = chunk_lines(lines, max_lines)
    chunks: list[Chunk] = []
    for first, last, symbol in spans:
        for start in range(first, last + 1, max_lines):
            end = min(start + max_lines - 1, last)
            content = "\n".join(lines[start - 1 : end]) + "\n"
            chunks.append(Chunk(len(chunks), start, end, symbol, content))
    return chunks


def module_name(relative: str | Path) -> str:
    """``tasks/backup.py`` -> ``tasks.backup``; ``tasks/__init__.py`` -> ``tasks``."""
    parts = list(Path(relative).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_imports(source: str, module: str, is_package: bool = False) -> list[tuple[str, str]]:
    """(module, name) pairs a Python source imports: ``import a.b`` gives ``("a.b", "")``,
    ``from a import b`` gives ``("a", "b")``; relative imports are resolved against ``module``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".") if package else []
                anchor = anchor[: len(anchor) - (node.level - 1)] if node.level > 1 else anchor
                base = ".".join([*anchor, base] if base else anchor)
            found.extend((base, alias.name) for alias in node.names if base)
    return found
