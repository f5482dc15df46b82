"""The database password from Secrets Manager during a rotation: one read at a time, at most one per interval,
and nobody waiting behind it (a fake secret that counts its reads across threads, and a fake clock)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from orders_core.adapters.secrets import SecretPassword
from orders_core.config import Settings
from orders_core.domain.ports import StoreUnavailable

INTERVAL_S = 5.0


class FakeSecret:
    """The secret: holds a password, answers when released, counts the reads."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.reads = 0
        self.reading = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.down = False
        self._lock = threading.Lock()

    def __call__(self) -> str:
        with self._lock:
            self.reads += 1
        self.reading.set()
        self.release.wait(30)  # a safety net: every test releases it
        if self.down:
            raise StoreUnavailable("Secrets Manager: connect timeout")
        return self.password


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def password_of(secret: FakeSecret, clock: Clock) -> SecretPassword:
    settings = Settings(pg_password_secret_id="db", pg_password_secret_min_interval_s=INTERVAL_S)
    return SecretPassword(settings, read=secret, clock=clock)


def test_threads_refused_together_read_the_secret_once_and_none_waits_behind_the_read(clock: Clock) -> None:
    # GIVEN a password read, then refused by PostgreSQL (rotated), and a slow Secrets Manager
    secret = FakeSecret("old")
    password = password_of(secret, clock)
    assert password.current() == "old"
    clock.now += 3600
    secret.password = "new"
    secret.release.clear()
    # WHEN eight threads, each refused with the old password, ask for the new one while it is being read
    with ThreadPoolExecutor(8) as threads:
        reader = threads.submit(password.current, "old")
        assert secret.reading.wait(10)
        others = [threads.submit(password.current, "old") for _ in range(7)]
        # THEN the others fail at once (the read is still held up), each to be retried
        for other in others:
            with pytest.raises(StoreUnavailable, match="being read"):
                other.result(timeout=10)
        secret.release.set()
        assert reader.result(timeout=10) == "new"
    # and one read was made, and the new password serves every later connection without another
    assert secret.reads == 2
    assert [password.current("old") for _ in range(5)] == ["new"] * 5
    assert secret.reads == 2


def test_a_failed_read_is_not_retried_before_the_interval(clock: Clock) -> None:
    secret = FakeSecret("pw")
    secret.down = True
    password = password_of(secret, clock)
    with pytest.raises(StoreUnavailable, match="connect timeout"):
        password.current()
    # Within the interval every caller fails at once, naming why, without asking Secrets Manager again
    for _ in range(10):
        with pytest.raises(StoreUnavailable, match="so soon: Secrets Manager: connect timeout"):
            password.current()
    assert secret.reads == 1
    clock.now += INTERVAL_S
    secret.down = False
    assert password.current() == "pw" and secret.reads == 2


def test_a_password_refused_moments_after_it_was_read_is_not_read_again_until_the_interval(clock: Clock) -> None:
    # GIVEN a rotation in progress: the role's password changed, the secret still holds the old one
    secret = FakeSecret("old")
    password = password_of(secret, clock)
    assert password.current() == "old"
    clock.now += 3600
    assert password.current(rejected="old") == "old" and secret.reads == 2  # re-read: still the old one
    # WHEN PostgreSQL keeps refusing it, THEN the secret is not asked again within the interval
    for _ in range(10):
        with pytest.raises(StoreUnavailable, match="so soon"):
            password.current(rejected="old")
    assert secret.reads == 2
    # and once the interval has passed and the secret holds the new password, it is read
    secret.password = "new"
    clock.now += INTERVAL_S
    assert password.current(rejected="old") == "new" and secret.reads == 3
