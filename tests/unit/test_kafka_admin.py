"""How orders-setup compares an existing topic with the settings: each difference named, with what changes it."""

from __future__ import annotations

import pytest

from orders_core.adapters.kafka_admin import topic_differences


@pytest.mark.parametrize(
    ("asked", "found", "said"),
    [
        ((3, 1), (3, 1), []),
        ((6, 1), (3, 1), ["3 partitions, fewer than KAFKA_TOPIC_PARTITIONS=6"]),
        ((3, 1), (12, 1), ["12 partitions, more than KAFKA_TOPIC_PARTITIONS=3"]),
        ((3, 3), (3, 1), ["replication factor 1, not KAFKA_TOPIC_REPLICATION_FACTOR=3"]),
        ((6, 3), (3, 2), ["3 partitions, fewer", "replication factor 2, not"]),
    ],
)
def test_each_difference_of_an_existing_topic_is_named(
    asked: tuple[int, int], found: tuple[int, int], said: list[str]
) -> None:
    differences = topic_differences(*asked, *found)
    assert len(differences) == len(said)
    assert all(difference.startswith(start) for difference, start in zip(differences, said, strict=True))
