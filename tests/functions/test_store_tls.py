"""The store's connections are encrypted whenever PostgreSQL offers TLS (as libpq's sslmode=prefer), and plain
when it does not: against a PostgreSQL of the test's own, before and after TLS is turned on."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import services
from orders_core.adapters.postgres import OrderStore
from orders_core.config import Settings


@pytest.fixture
def own_folder(work_dir: Path) -> Iterator[Path]:
    """A folder the server's user can reach (pytest's own temporary folders are private to this user)."""
    folder = work_dir / f"tls-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_postgres(own_folder: Path) -> Iterator[services.Service]:
    server = services.postgres(own_folder).start()
    yield server
    server.kill()


def turn_tls_on(server: services.Service, data: Path) -> None:
    """A self-signed certificate in the data folder (owned by the server's user), then ``ssl = on``, reloaded."""
    key, certificate = data / "server.key", data / "server.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    for path in (key, certificate):
        path.chmod(0o600)
        if os.getuid() == 0:  # the server runs as the postgres user then (infra/native/postgres.sh)
            shutil.chown(path, "postgres", "postgres")
    admin = services.connect_db(server.port)
    admin.run("ALTER SYSTEM SET ssl = on")
    admin.run("SELECT pg_reload_conf()")
    admin.close()


def encrypted(settings: Settings) -> bool:
    store = OrderStore(settings)
    try:
        [[ssl]] = store.connect().run("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        return bool(ssl)
    finally:
        store.close()


def test_the_store_encrypts_its_connections_when_postgresql_offers_tls_and_not_otherwise(
    own_postgres: services.Service, own_folder: Path
) -> None:
    settings = Settings(pg_host="127.0.0.1", pg_port=own_postgres.port)
    assert not encrypted(settings)
    turn_tls_on(own_postgres, own_folder / "postgres-data")
    assert encrypted(settings)
    # Every connection, not only the first in the process
    assert encrypted(settings)
