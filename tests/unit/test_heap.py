"""The collector while batches are in hand: off, on again after the last, and never letting cycles pile up."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from orders_core import heap

pytestmark = pytest.mark.unit


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    (gc.enable if enabled else gc.disable)()


def test_the_collector_is_off_while_a_batch_is_in_hand_and_on_again_after() -> None:
    gc.enable()
    with heap.batch_in_hand():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_on_again_after_a_batch_that_failed() -> None:
    gc.enable()
    with pytest.raises(RuntimeError), heap.batch_in_hand():
        raise RuntimeError("the store went away")
    assert gc.isenabled()


def test_overlapping_batches_keep_the_collector_off_until_the_last_ends() -> None:
    gc.enable()
    first, second = heap.batch_in_hand(), heap.batch_in_hand()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert not gc.isenabled()  # the second batch is still in hand
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_garbage_cycles_are_collected_when_a_batch_ends_beside_others_after_many_new_objects() -> None:
    gc.enable()
    with heap.batch_in_hand():
        with heap.batch_in_hand():
            cycle = weakref.ref(_Node())
            survivors = [[] for _ in range(heap.YOUNG_BOUND_WHILE_BUSY + 1)]  # new objects, still alive
            assert cycle() is not None  # nothing collects while batches are in hand
        assert cycle() is None  # the batch that ended collected the young objects: the other is still in hand
        assert not gc.isenabled()
        del survivors


def test_a_few_new_objects_while_batches_overlap_cost_no_collection() -> None:
    gc.enable()
    gc.collect()
    with heap.batch_in_hand():
        with heap.batch_in_hand():
            cycle = weakref.ref(_Node())
        assert cycle() is not None
    gc.collect()
    assert cycle() is None
