"""The garbage collector's settings for a warm instance: set once, when its modules are loaded."""

from __future__ import annotations

import gc

# A batch of 1,000 orders makes some 100,000 objects that live until the batch is stored. At CPython's default
# (a young collection every 700 new objects) the collector ran hundreds of times a batch, promoting them all,
# and its full collections walked every module, class and function loaded at start: about a tenth of
# ingest_order's CPU (68 → 58-62 µs an order in-process). Cycles are rare here; memory waits a little longer.
YOUNG_COLLECTION_EVERY = 10_000


def settle() -> None:
    """Leave what is loaded so far (modules, classes, settings) out of every later collection, and collect
    the young objects less often. Call once per process, after its imports."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
