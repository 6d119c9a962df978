"""Text output of the operator commands: tables sized to their content, colour by meaning.

Colour comes from Django's ``command.style``, which is already plain when stdout is not a
terminal and follows ``--no-color``/``--force-color`` and ``DJANGO_COLORS``; this module only
says which of Django's roles means what (``ACTION_ROLES``, ``STATE_ROLES``, ``RUN_ROLES``), so
a palette an operator set for Django applies here too.

Tables measure the plain text of each cell, pad it, and colour only the text, so escape codes
never shift a column; the last column is not padded (no trailing blanks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Style = Callable[[str], str]

#: plan actions -> Django style role: create green, update yellow, delete red, drift magenta
ACTION_ROLES = {
    "create": "SUCCESS",
    "update": "WARNING",
    "drift": "HTTP_SERVER_ERROR",
    "delete": "ERROR",
}
#: job states (orchestrator.status.State) -> role; states not listed are printed plain
STATE_ROLES = {
    "active": "SUCCESS",
    "paused": "WARNING",
    "drift": "HTTP_SERVER_ERROR",
    "orphaned": "ERROR",
}
#: run statuses (orchestrator.models.RunStatus) -> role
RUN_ROLES = {
    "succeeded": "SUCCESS",
    "failed": "ERROR",
    "lost": "ERROR",
    "missed": "ERROR",
    "running": "WARNING",
    "queued": "WARNING",
    "retried": "WARNING",
    "skipped": "NOTICE",
}
#: the header row of a table
HEADER_ROLE = "MIGRATE_LABEL"


def plain(text: str) -> str:
    return text


def role(style: Any, name: str | None) -> Style:
    """The style function of a Django role, or no styling when ``name`` is None."""
    return getattr(style, name) if name else plain


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    style: Style = plain


def table(
    headers: Sequence[str] | None,
    rows: Sequence[Sequence[Cell | str]],
    *,
    style: Any,
    right: frozenset[int] = frozenset(),
) -> list[str]:
    """Lines of a table whose columns are as wide as their widest cell (header included).

    ``right``: the indexes of columns aligned right (numbers). Cells may be ``Cell`` (text and
    its style) or plain strings. ``headers`` None: no header line.
    """
    grid = [[cell if isinstance(cell, Cell) else Cell(cell) for cell in row] for row in rows]
    if headers is not None:
        grid.insert(0, [Cell(text, role(style, HEADER_ROLE)) for text in headers])
    if not grid:
        return []
    widths = [max(len(row[index].text) for row in grid) for index in range(len(grid[0]))]
    return [_line(row, widths, right) for row in grid]


def _line(row: Sequence[Cell], widths: Sequence[int], right: frozenset[int]) -> str:
    parts = []
    last = len(row) - 1
    for index, cell in enumerate(row):
        gap = " " * (widths[index] - len(cell.text))
        if index in right:
            parts.append(gap + cell.style(cell.text))
        elif index == last:
            parts.append(cell.style(cell.text))
        else:
            parts.append(cell.style(cell.text) + gap)
    return "  ".join(parts).rstrip()
