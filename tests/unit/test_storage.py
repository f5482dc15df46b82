"""What each PostgreSQL error means for the caller: the order (StoreRejected), time (StoreTimeout) or the
store (StoreUnavailable), and whether the connection is replaced."""

from __future__ import annotations

from typing import Any

import pytest
from pg8000.exceptions import DatabaseError, InterfaceError

from orders_core.adapters.postgres import OrderStore
from orders_core.config import Settings
from orders_core.domain.ports import StoreRejected, StoreTimeout, StoreUnavailable


class FailingConnection:
    """A connection whose every statement fails with ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def prepare(self, sql: str) -> FailingConnection:
        return self

    def run(self, **params: Any) -> list[list[Any]]:
        raise self.error

    def close(self) -> None:
        pass


def server_error(sqlstate: str) -> DatabaseError:
    return DatabaseError({"S": "ERROR", "C": sqlstate, "M": f"error {sqlstate}"})


@pytest.mark.parametrize(
    ("error", "raised", "connections_for_two_calls"),
    [
        (server_error("22P02"), StoreRejected, 1),  # invalid text representation: the order; keep the connection
        (server_error("23514"), StoreRejected, 1),  # check constraint: likewise
        (server_error("57014"), StoreTimeout, 1),  # statement timeout: split the batch; keep the connection
        (server_error("25006"), StoreUnavailable, 2),  # read-only: the store; a new connection next time
        (server_error("42501"), StoreUnavailable, 2),
        (server_error("42P01"), StoreUnavailable, 2),
        (server_error("55P03"), StoreUnavailable, 2),
        (server_error("26000"), StoreUnavailable, 2),
        (server_error("P0001"), StoreUnavailable, 2),  # a trigger's own error: not known to be about the data
        (server_error("08006"), StoreUnavailable, 4),  # connection failure: at once one more try, on a new one
        (server_error("57P01"), StoreUnavailable, 4),  # admin shutdown: likewise
        (server_error("40P01"), StoreUnavailable, 4),  # deadlock: likewise
        (InterfaceError("network error"), StoreUnavailable, 4),
        (DatabaseError("no SQLSTATE"), StoreUnavailable, 2),
    ],
)
def test_each_postgres_error_tells_the_caller_what_to_do_next(
    monkeypatch: pytest.MonkeyPatch, error: Exception, raised: type[Exception], connections_for_two_calls: int
) -> None:
    store = OrderStore(Settings())
    made: list[FailingConnection] = []

    def connect() -> FailingConnection:
        made.append(FailingConnection(error))
        return made[-1]

    monkeypatch.setattr(store, "connect", connect)
    for _ in range(2):
        with pytest.raises(raised) as caught:
            store.ping()
        assert type(caught.value) is raised
    assert len(made) == connections_for_two_calls
