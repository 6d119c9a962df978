"""Hold Python's cyclic garbage collector off while a manifest is built.

Loading and classifying a manifest allocates millions of small objects that all stay alive
(nodes, specs, placements) and form no garbage cycles. With the collector on, every few
thousand allocations trigger a collection that walks the growing heap, which makes loading
super-linear: at 100,000 jobs PyYAML's own C loader spends two thirds of its time in the
collector. Reference counting still frees everything that is not a cycle, so memory does not
grow while collection is paused; the collector is restored when the block ends, error or not.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the block; re-enable it afterwards only if it was
    enabled on entry (so nested blocks, and callers that disabled it themselves, are safe)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
