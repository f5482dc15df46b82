"""The harness's drain of the dead letters: what it removed stays counted when the queue dies halfway."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from devstack import stack
from orders_core.adapters.letters import encode_letter
from orders_core.config import Settings
from orders_core.domain.ports import DeadLetter


@dataclass
class Letter:
    body: str


class DyingMailbox:
    """Hands out one batch of letters (deleted on request), then fails as an endpoint that died."""

    def __init__(self, bodies: list[str]) -> None:
        self.waiting = [Letter(body) for body in bodies]
        self.deleted: list[Letter] = []

    def receive(self, count: int) -> list[Letter]:
        if self.deleted:
            raise ConnectionError("the endpoint died")
        return self.waiting[:count]

    def delete(self, letters: list[Letter]) -> None:
        self.deleted += letters
        self.waiting = [letter for letter in self.waiting if letter not in letters]

    def close(self) -> None:
        pass


def test_letters_removed_before_the_queue_died_are_kept_by_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    letters = [
        DeadLetter(reason="invalid", message="m", topic="orders", partition=0, offset=n, key=None, value=b"{}")
        for n in range(15)
    ]
    mailbox = DyingMailbox([encode_letter(letter) for letter in letters])
    monkeypatch.setattr(stack, "dead_letter_mailbox", lambda *args, **kwargs: mailbox)
    kept: list[dict[str, Any]] = []
    with pytest.raises(ConnectionError):
        stack.drain(Settings.model_construct(), into=kept)
    assert len(mailbox.deleted) == 10
    assert [letter["offset"] for letter in kept] == list(range(10))  # gone from the queue, so kept here
