"""``models.bounded_traceback``: a run keeps at most ``TRACEBACK_LIMIT`` characters of its
traceback, the start (where it began) and the end (the exception) of a longer one."""

from __future__ import annotations

import pytest

from orchestrator.models import TRACEBACK_HEAD, TRACEBACK_LIMIT, bounded_traceback


@pytest.mark.parametrize("size", [0, 10, TRACEBACK_LIMIT])
def test_bounded_traceback__within_the_limit_kept_whole(size: int) -> None:
    """A traceback up to the limit is stored exactly as Celery formatted it."""
    text = "t" * size
    assert bounded_traceback(text) == text


@pytest.mark.parametrize("extra", [1, 999, 10 * TRACEBACK_LIMIT])
def test_bounded_traceback__longer_keeps_start_and_end_within_the_limit(extra: int) -> None:
    """Past the limit: the first ``TRACEBACK_HEAD`` characters, a marker saying how many were
    cut, and the end with the exception line; never more than the limit (the DB's check)."""
    text = "Traceback (most recent call last):\n" + "f" * (TRACEBACK_LIMIT + extra) + "\nBoom: end"
    kept = bounded_traceback(text)
    assert len(kept) <= TRACEBACK_LIMIT
    assert kept.startswith(text[:TRACEBACK_HEAD])
    assert kept.endswith("\nBoom: end")
    cut = int(kept[TRACEBACK_HEAD:].split("[… ", 1)[1].split(" ", 1)[0])
    tail = len(text) - TRACEBACK_HEAD - cut  # what the marker says was kept of the end
    assert kept.endswith(text[-tail:])
    assert kept[TRACEBACK_HEAD : len(kept) - tail].strip().startswith("[…")


def test_bounded_traceback__none_is_empty() -> None:
    """No traceback (a success, a revoke) is stored as the empty string."""
    assert bounded_traceback(None) == ""
