"""Fault tests: real faults injected into the real PostgreSQL, with ingest_order driven in-process (its
functions-framework adapter) as in the functions tier, and the dead-letter queue read back from moto."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import flask.testing
import functions_framework
import pg8000.native
import pytest

from orders_core import bootstrap as runtime
from orders_core.config import Settings, get_settings
from tests.support.roles import INGEST_PASSWORD, INGEST_ROLE

# Short server-side limits, so a fault shows quickly; far above what a statement of a few orders takes.
STATEMENT_TIMEOUT_S, LOCK_TIMEOUT_S = "2", "0.5"


@pytest.fixture(scope="session")
def connect_admin(stack_env: dict[str, str]) -> Callable[[], pg8000.native.Connection]:
    """New sessions of the test user (the superuser), to inject faults and to look at what was stored."""
    settings = Settings()  # before any test changes PGUSER

    def connect() -> pg8000.native.Connection:
        return pg8000.native.Connection(
            settings.pg_user,
            host=settings.pg_host,
            port=settings.pg_port,
            database=settings.pg_database,
            password=settings.pg_password,
            timeout=30,
        )

    return connect


@pytest.fixture(scope="session")
def ingest_role(connect_admin: Callable[[], pg8000.native.Connection]) -> str:
    """A role that owns nothing: the test user is the superuser, whom no REVOKE or read-only setting stops."""
    admin = connect_admin()
    admin.run(
        "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders_ingest') THEN "
        f"CREATE ROLE {INGEST_ROLE} LOGIN PASSWORD '{INGEST_PASSWORD}'; END IF; END$$"
    )
    admin.run(f"GRANT SELECT, INSERT ON orders, deliveries, payments, items TO {INGEST_ROLE}")
    admin.close()
    return INGEST_ROLE


@pytest.fixture
def settings(stack_env: dict[str, str], ingest_role: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The function's settings: the ingest role, short timeouts; fresh clients (and so fresh connections)."""
    monkeypatch.setenv("PGUSER", ingest_role)
    monkeypatch.setenv("PGPASSWORD", INGEST_PASSWORD)
    monkeypatch.setenv("PG_STATEMENT_TIMEOUT_S", STATEMENT_TIMEOUT_S)
    monkeypatch.setenv("PG_LOCK_TIMEOUT_S", LOCK_TIMEOUT_S)
    runtime.reset()
    yield get_settings()
    runtime.reset()


@pytest.fixture
def admin(connect_admin: Callable[[], pg8000.native.Connection]) -> Iterator[pg8000.native.Connection]:
    conn = connect_admin()
    yield conn
    conn.close()


@pytest.fixture
def client(settings: Settings) -> flask.testing.FlaskClient:
    return functions_framework.create_app(target="http_entry", source="functions/ingest_order/main.py").test_client()
