"""The garbage collector's settings for a warm instance: set once, when its modules are loaded."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

# A batch of 1,000 orders makes some 100,000 objects that live until the batch is stored. At CPython's default
# (a young collection every 700 new objects) the collector ran hundreds of times a batch, promoting them all,
# and its full collections walked every module, class and function loaded at start: about a tenth of
# ingest_order's CPU (68 → 58-62 µs an order in-process). Cycles are rare here; memory waits a little longer.
YOUNG_COLLECTION_EVERY = 10_000
# While batches overlap the collector stays off; past this many new objects, the batch that ends collects the
# young ones at once, so garbage cycles (a caught exception and its frame) never pile up for long.
YOUNG_BOUND_WHILE_BUSY = 200_000

_lock = threading.Lock()
_in_hand = 0


def settle() -> None:
    """Leave what is loaded so far (modules, classes, settings) out of every later collection, and collect
    the young objects less often. Call once per process, after its imports."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)


@contextlib.contextmanager
def batch_in_hand() -> Iterator[None]:
    """No automatic collection while a batch is in hand (in any thread). Even at one young collection every
    10,000 objects, a batch's live objects were walked again and again and promoted into the older
    generations, whose collections walked them once more: about an eighth of ingest_order's CPU in a drain
    (82-104 against 96-120 µs an order, four paired drains). Its objects are freed by their reference counts
    when it ends; the collector only ever finds cycles, and it runs again as soon as no batch is in hand."""
    global _in_hand
    with _lock:
        _in_hand += 1
        gc.disable()
    try:
        yield
    finally:
        with _lock:
            _in_hand -= 1
            if _in_hand == 0:
                gc.enable()
            elif gc.get_count()[0] > YOUNG_BOUND_WHILE_BUSY:
                gc.collect(0)
