"""orders-dlq's choices, without a queue: which letters a redrive takes, how letters read."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orders_local.dlq_cli import REDRIVE_COUNT_HEADER, Letter, Selection, parse_since, peek_view, stats

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def letter(reason: str = "invalid", age_s: int = 60, redrives: int = 0, **body: Any) -> Letter:
    headers = [[REDRIVE_COUNT_HEADER, base64.b64encode(str(redrives).encode()).decode()]] if redrives else []
    return Letter(
        message_id=f"m-{reason}-{age_s}",
        receipt_handle="r",
        sent_at=NOW - timedelta(seconds=age_s),
        body={"reason": reason, "topic": "orders", "partition": 0, "offset": 7, "headers": headers, **body},
    )


def test_redrive_takes_every_reason_but_conflicts_by_default() -> None:
    selection = Selection()
    assert selection.why_not(letter("invalid")) is None
    assert selection.why_not(letter("store_rejected")) is None
    assert "conflict" in (selection.why_not(letter("conflict")) or "")
    assert Selection(include_conflicts=True).why_not(letter("conflict")) is None
    assert Selection(reasons=frozenset({"conflict"})).why_not(letter("conflict")) is None


def test_redrive_leaves_letters_of_other_reasons_older_ones_and_records_redriven_too_often() -> None:
    assert Selection(reasons=frozenset({"invalid"})).why_not(letter("not_json")) == "reason not selected"
    assert Selection(since=NOW - timedelta(minutes=5)).why_not(letter(age_s=3600)) == "older than --since"
    assert Selection(since=NOW - timedelta(minutes=5)).why_not(letter(age_s=60)) is None
    assert "redriven 3 times" in (Selection(max_redrives=3).why_not(letter(redrives=3)) or "")
    assert Selection(max_redrives=3).why_not(letter(redrives=2)) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("1d", NOW - timedelta(days=1)),
        ("2026-11-25T10:00:00", datetime(2026, 11, 25, 10, tzinfo=UTC)),
        ("2026-11-25T10:00:00+02:00", datetime(2026, 11, 25, 8, tzinfo=UTC)),
    ],
)
def test_since_takes_a_duration_or_a_moment(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


def test_stats_count_letters_by_reason_with_their_ages() -> None:
    letters = [letter("invalid", 10), letter("invalid", 300), letter("not_json", 50)]
    assert stats(letters, NOW) == {
        "invalid": {"count": 2, "oldest_age_s": 300, "newest_age_s": 10},
        "not_json": {"count": 1, "oldest_age_s": 50, "newest_age_s": 50},
    }


def test_peek_shows_text_values_as_text_and_others_in_base64() -> None:
    text = letter(value=base64.b64encode('{"order_uid": "é"}'.encode()).decode())
    binary = letter(value=base64.b64encode(b"\xff\xfe").decode())
    assert peek_view(text)["value"] == '{"order_uid": "é"}'
    assert peek_view(binary)["value_base64"] == "//4=" and "value" not in peek_view(binary)
