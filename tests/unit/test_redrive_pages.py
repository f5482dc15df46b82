"""orders-dlq's redrive, page by page, with a fake queue and a fake Kafka: each letter acted on once, a run ends at
the size the queue had when it began, deletes SQS fails are tried again, and a crash between produce and delete
does not produce twice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from orders_core.adapters.kafka_dlq import _offsets, _Partition, _ranges
from orders_core.adapters.sqs import SqsMailbox
from orders_core.config import Settings
from orders_core.domain.ports import ReceivedLetter
from orders_local.dlq_cli import Ledger, Letter, Produced, Reading, Selection, redrive


def body(offset: int, reason: str = "invalid") -> str:
    return json.dumps(
        {
            "reason": reason,
            "topic": "orders",
            "partition": 0,
            "offset": offset,
            "key": None,
            "value": "",
            "value_bytes": 0,
            "headers": [],
            "headers_truncated": False,
        }
    )


class FakeSqsClient:
    """SQS as seen by one reader whose hold is short: every receive hands out the next letters, and again
    some already received (back in view); the first delete of each entry fails (SQS's ``Failed``)."""

    def __init__(self, count: int) -> None:
        self.messages = {f"m{i}": body(i) for i in range(count)}
        self.cursor = 0
        self.deleted: list[str] = []
        self.delete_failed_once: set[str] = set()
        self.handles = 0

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:
        return {
            "Attributes": {
                "ApproximateNumberOfMessages": str(len(self.messages)),
                "ApproximateNumberOfMessagesNotVisible": "0",
            }
        }

    def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        ids = list(self.messages)
        again = ids[: min(2, self.cursor)] if MaxNumberOfMessages > 2 else []  # back in view after the hold
        fresh = ids[self.cursor : self.cursor + MaxNumberOfMessages - len(again)]
        self.cursor += len(fresh)
        messages = []
        for message_id in [*again, *fresh][:MaxNumberOfMessages]:
            self.handles += 1
            messages.append(
                {
                    "MessageId": message_id,
                    "Body": self.messages[message_id],
                    "ReceiptHandle": f"{message_id}#{self.handles}",
                    "Attributes": {"SentTimestamp": "1000"},
                }
            )
        return {"Messages": messages}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        failed = []
        for entry in Entries:
            message_id = entry["ReceiptHandle"].split("#")[0]
            if message_id not in self.delete_failed_once:
                self.delete_failed_once.add(message_id)
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                self.deleted.append(message_id)
        return {"Failed": failed}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Failed": []}


class FakeReplayer:
    """Kafka that commits every page, except the pages ``fail`` picks."""

    def __init__(self, ledger: Ledger, fail: Any = lambda sources: False) -> None:
        self.ledger = ledger
        self.produced: list[str] = []
        self.fail = fail

    def produce(self, jobs: Sequence[tuple[str, str, Produced, int]]) -> tuple[set[str], dict[str, str]]:
        sources = [source for source, *_ in jobs]
        if self.fail(sources):
            return set(), {source: "broker down" for source in sources}
        for source, _topic, _record, redrives in jobs:
            self.produced.append(source)
            self.ledger.note(source, {"to": f"orders-0@{1000 + len(self.produced)}", "redrives": redrives})
        return set(sources), {}


def no_rebuild(_settings: Settings, letter: Letter) -> Produced:
    return None, b"", []


def test_a_large_queue_whose_letters_come_back_into_view_is_redriven_once_each_and_every_letter_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("orders_core.adapters.sqs.RETRY_PAUSE_S", 0.0)
    # GIVEN 1,000 letters on a queue that hands back letters already received, and fails each delete once
    client = FakeSqsClient(1000)
    mailbox = SqsMailbox(Settings(dlq_queue_url="http://queue"), client=client)
    ledger = Ledger(Settings())
    replayer = FakeReplayer(ledger)
    # WHEN one redrive runs
    report = redrive(Settings(), Reading(mailbox), replayer, ledger, Selection(), no_rebuild)
    # THEN each record is produced once, each letter deleted once (its failed delete tried again), nothing left
    assert sorted(replayer.produced) == sorted(f"orders-0@{i}" for i in range(1000))
    assert sorted(client.deleted) == sorted(client.messages) and report.not_deleted == []
    assert len(report.redriven) == 1000 and report.duplicates == []


class ListMailbox:
    """A mailbox that grows while it is read: a letter arrives with each page taken."""

    def __init__(self, count: int) -> None:
        self.letters = [ReceivedLetter(f"m{i}", body(i), 0, f"h{i}") for i in range(count)]
        self.cursor = 0
        self.deleted: list[str] = []

    def describe(self) -> str:
        return "a list"

    def size(self) -> int:
        return len(self.letters) - self.cursor

    def receive(self, most: int) -> list[ReceivedLetter]:
        page = self.letters[self.cursor : self.cursor + most]
        self.cursor += len(page)
        self.letters.append(ReceivedLetter(f"late{len(self.letters)}", body(len(self.letters)), 0, "h"))
        return page

    def delete(self, letters: Sequence[ReceivedLetter]) -> list[ReceivedLetter]:
        self.deleted += [letter.letter_id for letter in letters]
        return []

    def release(self, letters: Sequence[ReceivedLetter]) -> list[ReceivedLetter]:
        return []

    def close(self) -> None:
        pass


def test_a_run_stops_at_the_size_the_queue_had_when_it_began() -> None:
    mailbox = ListMailbox(250)
    ledger = Ledger(Settings())
    report = redrive(Settings(), Reading(mailbox), FakeReplayer(ledger), ledger, Selection(), no_rebuild)
    assert len(report.redriven) == 250 and len(mailbox.deleted) == 250


def test_letters_of_a_page_kafka_did_not_commit_stay_and_a_later_run_does_not_produce_twice() -> None:
    # GIVEN a first run whose second page Kafka fails, and letters whose records were produced but not deleted
    mailbox = ListMailbox(300)
    ledger = Ledger(Settings())
    first = FakeReplayer(ledger, fail=lambda sources: "orders-0@150" in sources)
    report = redrive(Settings(), Reading(mailbox), first, ledger, Selection(), no_rebuild)
    assert len(report.failed) == 100 and len(report.redriven) == 200
    # WHEN the same letters are read again (a run that stopped before deleting), and the failed ones
    again = ListMailbox(300)
    second = FakeReplayer(ledger)
    report = redrive(Settings(), Reading(again), second, ledger, Selection(), no_rebuild)
    # THEN only the records never produced are produced; the others' letters are deleted as already redriven
    assert sorted(second.produced) == sorted(f"orders-0@{i}" for i in range(100, 200))
    assert len(report.already) == 200 and len(again.deleted) == 300


def test_a_record_redriven_as_often_as_allowed_is_left_alone_whatever_its_headers() -> None:
    ledger = Ledger(Settings())
    ledger.note("orders-0@1", {"to": "orders-0@7", "redrives": 3})
    letter = Letter.of(ReceivedLetter("m", body(7), 0, "h"), ledger)
    assert letter.redrives == 3 and "redriven 3 times" in (Selection(max_redrives=3).why_not(letter) or "")


def test_kafka_letters_deleted_beyond_one_kept_are_remembered_in_the_commit() -> None:
    state = _Partition(committed=10, end=20, deleted=set())
    state.position = 20
    state.kept = {12}
    state.deleted = {10, 11, 13, 14, 15, 17}
    point, beyond = state.commit_point()
    assert point == 12 and _ranges(beyond) == "13-15,17"
    assert _offsets("13-15,17") == {13, 14, 15, 17}
