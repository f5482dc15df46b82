"""Dead letters always fit SQS and are always accepted: bounded, ASCII, batched by bytes, a minimal fallback."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pytest

from orders_core.adapters.letters import encode_letter
from orders_core.adapters.sqs import DeadLetterQueue
from orders_core.config import Settings
from orders_core.domain.ports import DeadLetter, DeadLetterUnavailable

SQS_LIMIT = 256 * 1024  # bytes of a message, and of a whole batch (SendMessageBatch)
# Every character SQS accepts in a body; anything else is InvalidMessageContents.
SQS_ALLOWED = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def letter(**fields: Any) -> DeadLetter:
    base: dict[str, Any] = {
        "reason": "invalid",
        "message": "m",
        "topic": "orders",
        "partition": 0,
        "offset": 1,
        "key": b"k",
        "value": b"v",
    }
    return DeadLetter(**{**base, **fields})


class FakeSqs:
    """Answers SendMessageBatch like SQS; ``refuse`` picks bodies it refuses (SenderFault)."""

    def __init__(self, refuse: Any = lambda body: False, sender_fault: bool = True) -> None:
        self.batches: list[list[str]] = []
        self.refuse = refuse
        self.sender_fault = sender_fault

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        bodies = [entry["MessageBody"] for entry in Entries]
        assert len(bodies) <= 10 and sum(len(b.encode()) for b in bodies) <= SQS_LIMIT, "BatchRequestTooLong"
        failed = [
            {"Id": e["Id"], "SenderFault": self.sender_fault, "Code": "InvalidMessageContents"}
            for e in Entries
            if self.refuse(e["MessageBody"])
        ]
        self.batches.append([b for b, e in zip(bodies, Entries, strict=True) if not self.refuse(e["MessageBody"])])
        return {"Successful": [], "Failed": failed}


def queue(sqs: FakeSqs) -> DeadLetterQueue:
    return DeadLetterQueue(Settings(dlq_queue_url="http://queue"), client=sqs)


def test_the_largest_possible_letter_fits_whole_with_every_string_bounded() -> None:
    # What escapes longest: a pair of \u escapes, a lone surrogate, a non-character.
    worst = "\U0001f600\ud800\uffff" * 10_000
    huge = letter(
        reason=worst,
        message=worst,
        topic=worst,
        order_uid=worst,
        key=b"k" * 100_000,
        value=b"v" * 2_000_000,
        errors=[{"field": worst, "message": worst}] * 5_000,
        headers=tuple((worst[:500], b"\xff" * 4000) for _ in range(40)),
    )
    body = encode_letter(huge)
    assert len(body.encode()) <= SQS_LIMIT and body.isascii()
    fields = json.loads(body)
    assert fields["value_truncated"] and fields["key_truncated"] and fields["error_count"] == 5_000
    assert fields["headers_truncated"]
    assert 0 < len(fields["errors"]) <= 50 and all(len(e["field"]) <= 1000 for e in fields["errors"])
    assert len(fields["order_uid"]) <= 128 and len(fields["message"]) <= 1000 and len(fields["topic"]) <= 256


def test_characters_sqs_refuses_are_escaped_and_read_back() -> None:
    text = "\x00\x08\x1f\udfff\ud800\ufffe\uffff é \U0001f600"  # low then high: no pair
    body = encode_letter(letter(order_uid=text, message=text, errors=[{"field": text, "message": text}]))
    assert SQS_ALLOWED.fullmatch(body)
    assert json.loads(body)["order_uid"] == text


def test_a_batch_is_split_by_bytes_as_well_as_by_ten() -> None:
    sqs = FakeSqs()
    letters = [letter(offset=i, value=b"x" * 150_000) for i in range(5)] + [letter(offset=5 + i) for i in range(25)]
    queue(sqs).send(letters)
    assert [len(batch) for batch in sqs.batches] == [1, 1, 1, 1, 10, 10, 6]
    sent = [json.loads(body)["offset"] for batch in sqs.batches for body in batch]
    assert sent == list(range(30))


def test_a_letter_the_queue_refuses_is_sent_again_as_a_minimal_letter_naming_its_request() -> None:
    sqs = FakeSqs(refuse=lambda body: '"minimal"' not in body and json.loads(body)["offset"] == 2)
    letters = [letter(offset=i, value=f"value {i}".encode(), request_id="req-7") for i in range(4)]
    queue(sqs).send(letters)
    assert len(sqs.batches) == 2
    [minimal] = sqs.batches[1]
    assert json.loads(minimal) == {
        "reason": "invalid",
        "topic": "orders",
        "partition": 0,
        "offset": 2,
        "value_bytes": 7,
        "value_sha256": hashlib.sha256(b"value 2").hexdigest(),
        "request_id": "req-7",
        "minimal": True,
    }


class FlakySqs(FakeSqs):
    """Fails on its side (not the sender's fault) the entries of the first answer whose offset ``fail_once``
    picks, then takes everything: as SQS does when some entries of a batch hit a throttled partition."""

    def __init__(self, fail_once: Any) -> None:
        super().__init__()
        self.fail_once = fail_once
        self.calls = 0

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.calls += 1
        failing = self.calls == 1
        failed = [
            {"Id": e["Id"], "SenderFault": False, "Code": "InternalError"}
            for e in Entries
            if failing and self.fail_once(json.loads(e["MessageBody"])["offset"])
        ]
        refused = {f["Id"] for f in failed}
        self.batches.append([e["MessageBody"] for e in Entries if e["Id"] not in refused])
        return {"Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in refused], "Failed": failed}


def test_entries_of_a_batch_sqs_failed_are_sent_again_alone_so_none_is_duplicated() -> None:
    # GIVEN SQS that accepts 7 of a batch of 10 letters and fails the other 3 on its side
    sqs = FlakySqs(fail_once=lambda offset: offset in (2, 5, 8))
    # WHEN the ingest sends the 10 letters
    queue(sqs).send([letter(offset=i) for i in range(10)])
    # THEN only the 3 failed letters are sent again, and every letter is on the queue exactly once
    sent = [json.loads(body)["offset"] for batch in sqs.batches for body in batch]
    assert [len(batch) for batch in sqs.batches] == [7, 3]
    assert sorted(sent) == list(range(10))


def test_a_record_s_headers_are_kept_whole_however_many_they_are_while_they_fit() -> None:
    headers = (*((f"h{i}", bytes([i]) * 40) for i in range(24)), ("", b""), ("\udcff-name", b"\x00\xff"))
    fields = json.loads(encode_letter(letter(headers=headers)))
    assert not fields["headers_truncated"]
    assert [(name, base64.b64decode(value)) for name, value in fields["headers"]] == list(headers)
    # Headers too large for a letter are left out, and the letter says so (the redrive reads the record back).
    too_many = tuple((f"h{i}", b"v" * 1000) for i in range(20))
    cut = json.loads(encode_letter(letter(headers=too_many)))
    assert cut["headers_truncated"] and 0 < len(cut["headers"]) < 20


def test_a_queue_failing_on_its_side_names_the_letters_not_sent() -> None:
    sqs = FakeSqs(refuse=lambda body: True, sender_fault=False)
    letters = [letter(offset=i) for i in range(12)]
    with pytest.raises(DeadLetterUnavailable) as caught:
        queue(sqs).send(letters)
    assert caught.value.unsent == letters  # the first batch failed: all twelve are to be redelivered


def test_the_queue_client_talks_to_the_endpoint_of_its_settings_not_of_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a process whose environment names one endpoint (a test session's, say)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    # WHEN a tool makes a client from settings that name another
    from orders_core.adapters.sqs import make_sqs_client

    client = make_sqs_client(Settings(aws_endpoint_url="http://127.0.0.1:4566"))
    # THEN it talks to that one
    assert client.meta.endpoint_url == "http://127.0.0.1:4566"
