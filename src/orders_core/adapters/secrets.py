"""Secrets Manager adapter: the database password, read at run time so that a rotation reaches running functions.

A rotation is when it matters most that reading the secret costs little: every connection the old password
opened is refused at once, and every thread wants the new one. So at most one read is in flight per
instance, with a short timeout and no retries, and a read comes at most once every
``PG_PASSWORD_SECRET_MIN_INTERVAL_S``; while one is in flight or the last just failed, the other callers do
not queue behind it: they fail at once with ``StoreUnavailable`` (a lookup answers 503, an ingest batch is
retried), and try again on their next request.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Protocol

from orders_core.domain.ports import StoreUnavailable


class SecretSettings(Protocol):
    """Where the database password's secret is, and how often and how long to ask for it."""

    @property
    def pg_password_secret_id(self) -> str | None: ...
    @property
    def pg_password_secret_min_interval_s(self) -> float: ...
    @property
    def pg_password_secret_timeout_s(self) -> float: ...
    @property
    def aws_region(self) -> str: ...
    @property
    def aws_endpoint_url(self) -> str | None: ...


def read_secret_password(settings: SecretSettings) -> str:
    """The ``password`` of the JSON secret ``PG_PASSWORD_SECRET_ID`` (an RDS secret's shape): one request,
    given up after ``PG_PASSWORD_SECRET_TIMEOUT_S`` to connect and as long again to answer."""
    # Imported here: boto3 is a good part of a cold start, and only a deployment whose password is a secret needs it.
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    timeout = settings.pg_password_secret_timeout_s
    config = Config(
        connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 1, "mode": "standard"}
    )
    client = boto3.client(
        "secretsmanager", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url or None, config=config
    )
    try:
        secret = client.get_secret_value(SecretId=settings.pg_password_secret_id)["SecretString"]
    except (BotoCoreError, ClientError) as exc:
        raise StoreUnavailable(f"cannot read the database password from Secrets Manager: {exc}") from exc
    try:
        password = json.loads(secret)["password"]
    except (ValueError, TypeError, KeyError):
        password = None
    if not isinstance(password, str):
        # Retried like an outage: fixing the secret is enough, no record is refused for it.
        raise StoreUnavailable('the database secret is not JSON with a string "password"')
    return password


class SecretPassword:
    """The password every thread of an instance connects with: read once, and again when PostgreSQL refused
    the one read (a rotation), one read at a time and at most once per interval."""

    def __init__(
        self,
        settings: SecretSettings,
        read: Callable[[], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read or (lambda: read_secret_password(settings))
        self._interval_s = settings.pg_password_secret_min_interval_s
        self._clock = clock
        self._lock = threading.Lock()  # held to look and to claim a read; never while reading
        self._password: str | None = None
        self._reading = False
        self._last_read_at: float | None = None
        self._last_failure: str | None = None

    def current(self, rejected: str | None = None) -> str:
        """The password to connect with; one other than ``rejected``, the one PostgreSQL just refused, if the
        secret holds one. Raises ``StoreUnavailable`` rather than wait for another thread's read."""
        with self._lock:
            if self._password is not None and self._password != rejected:
                return self._password
            if self._reading:
                raise StoreUnavailable("the database password is being read from Secrets Manager; retry shortly")
            now = self._clock()
            if self._last_read_at is not None and now - self._last_read_at < self._interval_s:
                why = self._last_failure or "PostgreSQL refuses the password the secret held moments ago"
                raise StoreUnavailable(f"not reading the database secret again so soon: {why}")
            self._reading, self._last_read_at = True, now
        try:
            password = self._read()
        except StoreUnavailable as exc:
            with self._lock:
                self._reading, self._last_failure = False, str(exc)
            raise
        except BaseException:
            with self._lock:
                self._reading = False
            raise
        with self._lock:
            self._password, self._reading, self._last_failure = password, False, None
        return password
