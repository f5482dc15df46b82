"""PostgreSQL adapter: every SQL statement of the service lives in this module.

pg8000 connections are not thread-safe, so each thread keeps its own, made on first use and replaced once
when the server dropped it. All queries are parameterised.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import pg8000.native
from pg8000.exceptions import DatabaseError, InterfaceError
from pydantic import ValidationError

from orders_core.adapters.secrets import SecretPassword
from orders_core.domain.model import CANONICAL_VERSION, Order, ValidOrder
from orders_core.domain.ports import OrderSummary, StoreOutcome, StoreRejected, StoreTimeout, StoreUnavailable

# SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation) are about the order itself:
# storing it again will fail again. Every other SQLSTATE is about the store (read-only, privileges, a missing
# table, a lock, a prepared statement, authentication, shutdown, ...): nothing is wrong with the order.
_DATA_SQLSTATE_CLASSES = ("22", "23")
# Of those, the ones a new connection may cure at once: connection exception, insufficient resources, system
# error, transaction rollback (deadlock, serialization), operator intervention (shutdown).
_RECONNECT_SQLSTATE_CLASSES = ("08", "53", "58", "40", "57P")
_STATEMENT_TIMEOUT = "57014"  # query_canceled: statement_timeout ran out
_AUTH_REJECTED = "28P01"  # invalid_password: wrong password (e.g. rotated since it was read)

log = logging.getLogger(__name__)
_T = TypeVar("_T")


# PostgreSQL's SSLRequest: a length of 8, then the request code; the server answers one byte, S or N.
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


@functools.cache
def _prefer_tls() -> ssl.SSLContext:
    """What pg8000 makes for every connection it is given no context for: encrypted when the server offers it,
    nothing verified (libpq's sslmode=prefer). Made once a process, at its first connection (a lookup answered
    from a cache never needs one): pg8000 makes it with ssl.create_default_context(), which loads the system's
    CA certificates that a context verifying nothing never reads, 45 ms of CPU a connection here."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _encrypted_if_offered(sock: socket.socket, host: str) -> socket.socket:
    """The connection as pg8000 leaves it when given no context: TLS if the server takes it, else as it was."""
    sock.sendall(_SSL_REQUEST)
    if sock.recv(1) == b"S":
        return _prefer_tls().wrap_socket(sock, server_hostname=host)
    return sock


def content_sha256(order_json: bytes) -> str:
    return hashlib.sha256(order_json).hexdigest()


# A batch is written with COPY, the fastest way PostgreSQL takes rows (several times a multi-row INSERT's speed
# here). COPY cannot skip a row that is already there: a batch holding an order stored before (a redelivery),
# or racing another writer of one, is refused with a unique violation. Most batches hold none, so the first
# try copies the whole batch without looking (the look cost PostgreSQL 2-3 ms a batch of 1,000, a twentieth of
# its work); a refused batch is written again, its orders stored before found first, in the same
# transaction, and only the others copied. The refused try costs at most the orders table's rows copied
# before the stored one (the orders table is copied first, the others hold its orders' parts).
COPY_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": (
        "order_uid", "track_number", "entry", "locale", "internal_signature", "customer_id", "delivery_service",
        "shardkey", "sm_id", "date_created", "oof_shard", "content_sha256", "content_hash_version",
    ),
    "deliveries": ("order_uid", "name", "phone", "zip", "city", "address", "region", "email"),
    "payments": (
        "order_uid", "transaction", "request_id", "currency", "provider", "amount", "payment_dt", "bank",
        "delivery_cost", "goods_total", "custom_fee",
    ),
    "items": (
        "order_uid", "position", "chrt_id", "track_number", "price", "rid", "name", "sale", "size", "total_price",
        "nm_id", "brand", "status",
    ),
}  # fmt: skip
COPY_STATEMENTS = {table: f"COPY {table} ({', '.join(columns)}) FROM STDIN" for table, columns in COPY_COLUMNS.items()}
_UNIQUE_VIOLATION = "23505"
# A stored order costs the first try (copied without looking), a race with another writer one more; a refusal
# after that is about the rows themselves.
_WRITE_ATTEMPTS = 4

# COPY's text format: a backslash, a tab (the delimiter), a newline or a carriage return inside a value is
# written as an escape.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class _Escaped:
    """An order, or a part of one, whose every value reads as text escaped for COPY."""

    __slots__ = ("_part",)

    def __init__(self, part: Any) -> None:
        self._part = part

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._part, name)
        if isinstance(value, (str, int)):
            return str(value).translate(_COPY_ESCAPES)
        if isinstance(value, list):
            return [_Escaped(item) for item in value]
        return _Escaped(value)


# One row of each table, in COPY_COLUMNS' order (a unit test holds them to it). f-strings: twice as fast as
# joining the values, and this runs for every order stored.
def _order_row(o: Any, sha: str) -> str:
    return (
        f"{o.order_uid}\t{o.track_number}\t{o.entry}\t{o.locale}\t{o.internal_signature}\t{o.customer_id}\t"
        f"{o.delivery_service}\t{o.shardkey}\t{o.sm_id}\t{o.date_created}\t{o.oof_shard}\t\\\\x{sha}\t"
        f"{CANONICAL_VERSION}"
    )


def _delivery_row(uid: str, d: Any) -> str:
    return f"{uid}\t{d.name}\t{d.phone}\t{d.zip}\t{d.city}\t{d.address}\t{d.region}\t{d.email}"


def _payment_row(uid: str, p: Any) -> str:
    return (
        f"{uid}\t{p.transaction}\t{p.request_id}\t{p.currency}\t{p.provider}\t{p.amount}\t{p.payment_dt}\t"
        f"{p.bank}\t{p.delivery_cost}\t{p.goods_total}\t{p.custom_fee}"
    )


def _item_row(uid: str, position: int, i: Any) -> str:
    return (
        f"{uid}\t{position}\t{i.chrt_id}\t{i.track_number}\t{i.price}\t{i.rid}\t{i.name}\t{i.sale}\t{i.size}\t"
        f"{i.total_price}\t{i.nm_id}\t{i.brand}\t{i.status}"
    )


def copy_rows(orders: Sequence[tuple[ValidOrder, str]]) -> dict[str, bytes]:
    """The four tables' rows of ``orders`` (each with its content hash), in COPY's text format."""
    rows: dict[str, list[str]] = {table: [] for table in COPY_COLUMNS}
    orders_rows, deliveries, payments, items = rows.values()
    for order, sha in orders:
        # JSON writes each of those characters with a backslash: an order whose canonical form has none has
        # no value to escape (most orders).
        o: Any = _Escaped(order.content) if b"\\" in order.canonical_json else order.content
        uid = o.order_uid
        orders_rows.append(_order_row(o, sha))
        deliveries.append(_delivery_row(uid, o.delivery))
        payments.append(_payment_row(uid, o.payment))
        items += [_item_row(uid, position, item) for position, item in enumerate(o.items)]  # faster than a generator
    return {table: ("\n".join(lines) + "\n").encode() for table, lines in rows.items()}


# The uids travel as one comma-separated text (no uid holds a comma): pg8000 escapes an array's elements one
# by one in Python, which cost as much as writing the orders.
_STORED_HASHES = """
SELECT order_uid, encode(content_sha256, 'hex'), content_hash_version
FROM orders WHERE order_uid = ANY(string_to_array(:uids, ','))
"""

_ORDER_JSON = """
SELECT json_build_object(
    'order_uid', o.order_uid, 'track_number', o.track_number, 'entry', o.entry,
    'delivery', json_build_object('name', d.name, 'phone', d.phone, 'zip', d.zip, 'city', d.city,
                                  'address', d.address, 'region', d.region, 'email', d.email),
    'payment', json_build_object('transaction', p.transaction, 'request_id', p.request_id,
                                 'currency', p.currency, 'provider', p.provider, 'amount', p.amount,
                                 'payment_dt', p.payment_dt, 'bank', p.bank,
                                 'delivery_cost', p.delivery_cost, 'goods_total', p.goods_total,
                                 'custom_fee', p.custom_fee),
    'items', (SELECT json_agg(json_build_object(
                  'chrt_id', i.chrt_id, 'track_number', i.track_number, 'price', i.price, 'rid', i.rid,
                  'name', i.name, 'sale', i.sale, 'size', i.size, 'total_price', i.total_price,
                  'nm_id', i.nm_id, 'brand', i.brand, 'status', i.status) ORDER BY i.position)
              FROM items i WHERE i.order_uid = o.order_uid),
    'locale', o.locale, 'internal_signature', o.internal_signature, 'customer_id', o.customer_id,
    'delivery_service', o.delivery_service, 'shardkey', o.shardkey, 'sm_id', o.sm_id,
    'date_created', to_char(o.date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    'oof_shard', o.oof_shard
)::text
FROM orders o JOIN deliveries d USING (order_uid) JOIN payments p USING (order_uid)
WHERE o.order_uid = :uid
"""

_RECENT_ORDERS = """
SELECT o.order_uid, o.track_number,
       to_char(o.date_created AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       p.amount, p.currency, (SELECT count(*) FROM items i WHERE i.order_uid = o.order_uid)
FROM orders o JOIN payments p USING (order_uid)
ORDER BY o.ingested_at DESC, o.date_created DESC, o.order_uid
LIMIT :limit
"""


def _served_form(stored: str) -> bytes:
    """A stored order as it is served: its canonical JSON. One stored under older rules that today's model
    refuses is still an order that was taken: it is served as stored (compact JSON, the canonical timestamp)
    rather than answered with an error, and the refusal is logged for whoever tightened the rules."""
    try:
        return Order.model_validate_json(stored).to_json()
    except ValidationError as exc:
        document = json.loads(stored)
        log.warning(
            "order %s no longer passes the model (%d errors); served as stored",
            document.get("order_uid"),
            exc.error_count(),
        )
        created = document.get("date_created")
        if isinstance(created, str) and created.endswith(".000000Z"):  # as Order's timestamps are written
            document["date_created"] = created.removesuffix(".000000Z") + "Z"
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _server_error(error: DatabaseError) -> tuple[str, str]:
    """The SQLSTATE and message of an error the server sent (``("", text)`` for one pg8000 raised itself)."""
    details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    return str(details.get("C", "")), str(details.get("M", error))


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """What the store needs: where PostgreSQL is, how long to wait, and where its password comes from."""

    pg_host: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_database: str
    pg_timeout_s: float
    pg_statement_timeout_s: float
    pg_lock_timeout_s: float
    pg_password_secret_id: str | None
    pg_password_secret_min_interval_s: float
    pg_password_secret_timeout_s: float
    aws_region: str
    aws_endpoint_url: str | None


class OrderStore:
    """Orders in PostgreSQL: batch insert, lookup by uid, the newest orders."""

    def __init__(
        self,
        settings: PostgresSettings,
        on_connections: Callable[[int], None] | None = None,
        *,
        secret: SecretPassword | None = None,
    ) -> None:
        """``on_connections`` is told the count of open connections (one per thread that asked) as it changes."""
        self._settings = settings
        self._local = threading.local()
        if secret is None and settings.pg_password_secret_id:
            secret = SecretPassword(settings)
        self._secret = secret
        self._on_connections = on_connections
        self._connections = 0
        self._connections_lock = threading.Lock()

    def _count_connection(self, change: int) -> None:
        if self._on_connections is not None:
            with self._connections_lock:
                self._connections += change
                self._on_connections(self._connections)

    def _password(self, rejected: str | None = None) -> str:
        """PGPASSWORD, or the secret's password (read again once PostgreSQL ``rejected`` the one read)."""
        if self._secret is None:
            return self._settings.pg_password
        return self._secret.current(rejected)

    def connect(self) -> pg8000.native.Connection:
        s = self._settings

        # The server must give up first, so that a slow statement is reported as a timeout (and its batch
        # split) rather than as a dropped connection.
        timeout = max(s.pg_timeout_s, s.pg_statement_timeout_s + 1)

        def open_with(password: str) -> pg8000.native.Connection:
            # pg8000's own socket keeps Nagle's algorithm on: the last small message of a statement (a COPY's
            # end, a query after a large parameter) then waits for the server's delayed ACK, 40 ms on Linux.
            sock = socket.create_connection((s.pg_host, s.pg_port), timeout)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
                sock = _encrypted_if_offered(sock, s.pg_host)
                return pg8000.native.Connection(
                    user=s.pg_user,
                    password=password,
                    host=s.pg_host,
                    port=s.pg_port,
                    database=s.pg_database,
                    sock=sock,
                    ssl_context=False,  # negotiated above
                    timeout=timeout,
                    application_name="orders",
                    startup_params={
                        "statement_timeout": str(round(s.pg_statement_timeout_s * 1000)),
                        "lock_timeout": str(round(s.pg_lock_timeout_s * 1000)),
                        # No statement of ours runs long enough for compiling it to pay. PostgreSQL compiles a
                        # plan it reckons costly, and the listing's is reckoned so once the items table grew
                        # with no ANALYZE since: 150 ms to compile the first time, 5 ms each after, for a query
                        # that runs in 0.3 ms.
                        "jit": "off",
                    },
                )
            except BaseException:
                sock.close()
                raise

        try:
            password = self._password()
            try:
                return open_with(password)
            except DatabaseError as exc:
                if _server_error(exc)[0] != _AUTH_REJECTED or self._secret is None:
                    raise
                # Rotated since we read it: the secret holds the new password (or soon will: retried then).
                return open_with(self._password(rejected=password))
        except (InterfaceError, OSError, DatabaseError) as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {s.pg_host}:{s.pg_port}: {exc}") from exc

    def _attempt(self, work: Callable[[pg8000.native.Connection], _T]) -> _T:
        """Run ``work`` on this thread's connection, made on first use.

        Raises ``StoreRejected`` (the data), ``StoreTimeout`` or ``StoreUnavailable`` (the store). On a dropped
        connection it reconnects and tries once more: all work given here is safe to repeat (reads, or writes
        that skip orders already stored).
        """
        for attempt in (1, 2):
            try:
                local = self._local
                if getattr(local, "conn", None) is None:
                    local.conn, local.prepared = self.connect(), {}
                    self._count_connection(+1)
                return work(local.conn)
            except DatabaseError as exc:
                sqlstate, message = _server_error(exc)
                if sqlstate.startswith(_DATA_SQLSTATE_CLASSES):
                    raise StoreRejected(f"PostgreSQL refused the orders: {message} ({sqlstate})", sqlstate) from exc
                if sqlstate == _STATEMENT_TIMEOUT:
                    raise StoreTimeout(f"PostgreSQL statement timed out: {message} ({sqlstate})") from exc
                # The connection may be what is wrong (a setting, a stale prepared statement): start afresh.
                self._drop_connection()
                if attempt == 2 or not sqlstate.startswith(_RECONNECT_SQLSTATE_CLASSES):
                    raise StoreUnavailable(f"PostgreSQL cannot store now: {message} ({sqlstate or '?'})") from exc
            except (InterfaceError, OSError) as exc:
                self._drop_connection()
                if attempt == 2:
                    raise StoreUnavailable(f"PostgreSQL connection failed: {exc}") from exc
        raise AssertionError("unreachable")

    def _run(self, sql: str, **params: Any) -> list[list[Any]]:
        """Run one statement on this thread's connection, prepared once per connection."""

        def run(conn: pg8000.native.Connection) -> list[list[Any]]:
            statement = self._local.prepared.get(sql)
            if statement is None:
                statement = self._local.prepared[sql] = conn.prepare(sql)
            rows: list[list[Any]] = statement.run(**params)
            return rows

        return self._attempt(run)

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            self._count_connection(-1)
            with contextlib.suppress(Exception):  # the connection is already broken; closing is best effort
                conn.close()

    def close(self) -> None:
        self._drop_connection()

    def ping(self) -> None:
        self._run("SELECT 1")

    def store_orders(self, orders: Sequence[ValidOrder]) -> list[StoreOutcome]:
        """Store a batch in one transaction; returns each order's outcome, in the order given.

        Orders stored before are kept as they are. Two orders with one uid in a batch: the first one wins,
        as if they had come one by one.
        """
        if not orders:
            return []
        shas = [content_sha256(order.canonical_json) for order in orders]
        first: dict[str, tuple[ValidOrder, str]] = {}
        for order, sha in zip(orders, shas, strict=True):
            first.setdefault(order.order_uid, (order, sha))
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                write = functools.partial(self._in_transaction, orders=first, look_first=attempt > 1)
                stored_before = self._attempt(write)
                break
            except StoreRejected as exc:
                if exc.sqlstate != _UNIQUE_VIOLATION or attempt == _WRITE_ATTEMPTS:
                    raise
                log.info("an order of this batch is stored already; writing the batch again, the stored ones left")
        stored_sha = {uid: sha for uid, (_, sha) in first.items() if uid not in stored_before}
        stored_sha |= self._canonical_hashes(stored_before)
        if len(stored_sha) < len(first):  # deleted since: retry the batch
            raise StoreUnavailable("orders changed while being stored; retry the batch")

        outcomes: list[StoreOutcome] = []
        seen: set[str] = set()
        for order, sha in zip(orders, shas, strict=True):
            uid = order.order_uid
            if sha != stored_sha[uid]:
                outcomes.append(StoreOutcome.CONFLICT)
            elif uid not in stored_before and uid not in seen:
                outcomes.append(StoreOutcome.STORED)
            else:
                outcomes.append(StoreOutcome.DUPLICATE)
            seen.add(uid)
        return outcomes

    def _in_transaction(
        self,
        conn: pg8000.native.Connection,
        orders: dict[str, tuple[ValidOrder, str]],
        *,
        look_first: bool = True,
        commit: bool = True,
    ) -> dict[str, tuple[str, int]]:
        """Copy the orders not stored yet (``look_first``: found first; else all of them, refused with a unique
        violation if one is stored), in one transaction committed (or always rolled back); returns the hash and
        its canonical form's version of each order that was stored before."""
        conn.run("START TRANSACTION")
        try:
            stored_before: dict[str, tuple[str, int]] = {}
            if look_first:
                # The batch's uids are found by probing the primary key, whatever the statistics say: a table
                # that grew since it was last analysed (a bulk load, or faster than autovacuum looks) reads as
                # small to the planner, which then reads it whole for each batch (20 ms a batch at 200,000
                # orders, growing with every order stored). Only for this transaction.
                conn.run("SET LOCAL enable_seqscan = off")
                rows = conn.run(_STORED_HASHES, uids=",".join(orders))
                stored_before = {uid: (sha, version) for uid, sha, version in rows}
            new = [pair for uid, pair in orders.items() if uid not in stored_before]
            if new:
                for table, data in copy_rows(new).items():
                    conn.run(COPY_STATEMENTS[table], stream=[data])
            conn.run("COMMIT" if commit else "ROLLBACK")
        except BaseException:
            with contextlib.suppress(Exception):  # a broken connection has nothing to roll back
                conn.run("ROLLBACK")
            raise
        return stored_before

    def _canonical_hashes(self, stored: dict[str, tuple[str, int]]) -> dict[str, str]:
        """The content hash of each stored order, in today's canonical form."""
        hashes: dict[str, str] = {}
        for uid, (sha, version) in stored.items():
            if version != CANONICAL_VERSION:  # hashed in another canonical form: re-canonicalise the stored order
                document = self.get_order_json(uid)
                if document is None:
                    continue
                sha = content_sha256(document)
            hashes[uid] = sha
        return hashes

    def refusal_of(self, order: ValidOrder) -> StoreRejected | None:
        """How PostgreSQL refuses ``order`` for its content, or None when it takes it: tried on a connection of
        its own, in a transaction that is always rolled back, so nothing is ever stored."""
        conn = self.connect()
        try:
            self._in_transaction(conn, {order.order_uid: (order, content_sha256(order.canonical_json))}, commit=False)
        except DatabaseError as exc:
            sqlstate, message = _server_error(exc)
            if sqlstate.startswith(_DATA_SQLSTATE_CLASSES):
                return StoreRejected(f"PostgreSQL refused the orders: {message} ({sqlstate})", sqlstate)
            raise StoreUnavailable(f"PostgreSQL cannot store now: {message} ({sqlstate or '?'})") from exc
        except (InterfaceError, OSError) as exc:
            raise StoreUnavailable(f"PostgreSQL connection failed: {exc}") from exc
        finally:
            with contextlib.suppress(Exception):  # a broken connection cannot be closed cleanly
                conn.close()
        return None

    def get_order_json(self, order_uid: str) -> bytes | None:
        """The stored order as canonical JSON, or None when there is no such order (one query)."""
        rows = self._run(_ORDER_JSON, uid=order_uid)
        if not rows:
            return None
        return _served_form(rows[0][0])

    def recent_orders(self, limit: int) -> list[OrderSummary]:
        rows = self._run(_RECENT_ORDERS, limit=limit)
        return [OrderSummary(*row) for row in rows]


def migrate(settings: PostgresSettings) -> str:
    """Apply the migrations not applied yet (``orders-setup`` locally, the stack's provisioning in the cloud)."""
    conn = OrderStore(settings).connect()
    try:
        applied = apply_migrations(conn)
    finally:
        conn.close()
    return f"applied {', '.join(applied)}" if applied else "schema up to date"


def apply_migrations(conn: pg8000.native.Connection) -> list[str]:
    """Apply the versioned SQL files not applied yet, each in its own transaction; returns their names.

    An advisory lock makes concurrent runs (several processes starting at once) wait for each other.
    """
    # The ingest's timeouts are for orders; a migration (or waiting for another one) may take longer.
    conn.run("SET statement_timeout = 0")
    conn.run("SET lock_timeout = 0")
    conn.run("SELECT pg_advisory_lock(727274)")
    try:
        conn.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {row[0] for row in conn.run("SELECT version FROM schema_migrations")}
        done: list[str] = []
        scripts = sorted(
            (f for f in resources.files("orders_core.adapters.migrations").iterdir() if f.name.endswith(".sql")),
            key=lambda f: f.name,
        )
        for script in scripts:
            version = int(script.name.split("_", 1)[0])
            if version in applied:
                continue
            conn.run("START TRANSACTION")
            try:
                conn.run(script.read_text(encoding="utf-8"))
                conn.run(
                    "INSERT INTO schema_migrations (version, name) VALUES (:version, :name)",
                    version=version,
                    name=script.name,
                )
                conn.run("COMMIT")
            except Exception:
                conn.run("ROLLBACK")
                raise
            done.append(script.name)
        return done
    finally:
        conn.run("SELECT pg_advisory_unlock(727274)")
