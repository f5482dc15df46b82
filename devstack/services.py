"""Real services for the tests and the benchmarks, started with the native runner's scripts, on free ports
and in folders of their own, so that a running `make up` is never disturbed.

A function runs exactly as its `Procfile` line says (the same command, target and settings), with the line's
port variable set to a free port: the runner's ports are declared in the `Procfile` alone."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pg8000.native

from devstack import ROOT
from orders_core.config import Settings

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def answers_ok(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own http URLs
            return bool(answer.status == 200)
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


class Service:
    """One long-running process: started, stopped (SIGTERM, or its own stop signal), killed (SIGKILL), restarted."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        port: int,
        log_dir: Path,
        ready: Callable[[], bool] | None = None,
        start_timeout: float = 60.0,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **env}
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self._ready = ready or (lambda: port_open(port))
        self.start_timeout = start_timeout
        self.stop_signal = stop_signal
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_until(self._alive_and_ready, self.start_timeout, self.name)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{self.name} did not start; log:\n{self.log_tail()}") from None
        return self

    def _alive_and_ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log:\n{self.log_tail()}")
        return self._ready()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process is None:
            return None
        self.signal(self.stop_signal)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            code = self.process.wait()
        self.process = None
        return code

    def kill(self) -> None:
        if self.process is not None:
            self.signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def connect_db(port: int, timeout: float = 10.0) -> pg8000.native.Connection:
    """A connection to the test database on ``port``, with the credentials of the settings."""
    settings = Settings()
    return pg8000.native.Connection(
        settings.pg_user, password=settings.pg_password, port=port, database=settings.pg_database, timeout=timeout
    )


def postgres(work: Path, replica_of: int | None = None) -> Service:
    """PostgreSQL on a free port; with ``replica_of`` (a primary's port), a streaming replica of it."""
    port = free_port()
    name = "postgres" if replica_of is None else "postgres-replica"
    data = work / f"{name}-data"  # postgres.sh creates it, owned by the postgres user when run as root
    env = {"PG_DATA_DIR": str(data), "PGPORT": str(port), "PG_SHARED_BUFFERS": "128MB"}
    if replica_of is not None:
        env["PG_REPLICA_OF"] = f"127.0.0.1:{replica_of}"

    def accepts_connections() -> bool:
        try:
            connect_db(port, timeout=2).close()
        except Exception:
            return False
        return True

    # SIGINT, PostgreSQL's fast shutdown: its SIGTERM waits for every client to hang up (a pool never does).
    return Service(
        name, [str(ROOT / "infra/native/postgres.sh")], env, port, work, accepts_connections, stop_signal=signal.SIGINT
    )


def memcached(work: Path) -> Service:
    return procfile_process("memcached", {"MEMCACHED_MEMORY_MB": "64"}, work)


@dataclass(frozen=True)
class SaslSslListener:
    """The test broker's second listener: SASL_SSL, a SCRAM user, and a CA made when the broker starts."""

    port: int
    ca_location: Path
    username: str = "orders"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16), repr=False)

    @classmethod
    def for_broker(cls, work: Path) -> SaslSslListener:
        return cls(free_port(), work / "kafka-data" / "tls" / "ca.pem")

    def broker_env(self) -> dict[str, str]:
        return {
            "KAFKA_SASL_SSL_PORT": str(self.port),
            "KAFKA_SCRAM_USER": self.username,
            "KAFKA_SCRAM_PASSWORD": self.password,
        }

    def client_env(self) -> dict[str, str]:
        """The settings of a client that logs in with SCRAM-SHA-512 and trusts the broker's CA."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{self.port}",
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": self.username,
            "KAFKA_SASL_PASSWORD": self.password,
            "KAFKA_SSL_CA_LOCATION": str(self.ca_location),
        }


def kafka(work: Path, sasl_ssl: SaslSslListener | None = None) -> Service:
    """The broker on a free PLAINTEXT port; with ``sasl_ssl``, also that listener (a second or so more to start)."""
    port, controller = free_port(), free_port()
    env = {
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller),
        "KAFKA_DATA_DIR": str(work / "kafka-data"),
        **(sasl_ssl.broker_env() if sasl_ssl else {}),
    }
    return Service("kafka", [str(ROOT / "infra/native/kafka.sh"), "run"], env, port, work, start_timeout=180)


def moto(work: Path) -> Service:
    port = free_port()
    return Service("aws", ["moto_server", "-H", "127.0.0.1", "-p", str(port)], {}, port, work)


def sqs(work: Path) -> Service:
    """The local SQS of `make up` (ElasticMQ), its queues and messages on disk in ``work/sqs-data``.

    Ready when it answers ``/health``; the queues on disk are restored just after, so a test polls for them.
    """
    port = free_port()
    env = {"AWS_PORT": str(port), "SQS_DATA_DIR": str(work / "sqs-data")}
    healthy = partial(answers_ok, f"http://127.0.0.1:{port}/health")
    return Service("sqs", [str(ROOT / "infra/native/sqs.sh"), "run"], env, port, work, healthy, start_timeout=120)


def procfile() -> dict[str, str]:
    """The native runner's processes: name -> shell command."""
    lines = (line.partition(":") for line in (ROOT / "Procfile").read_text().splitlines())
    return {name.strip(): command.strip() for name, _, command in lines if name.strip() and name[0] != "#"}


def procfile_process(name: str, env: Mapping[str, str], work: Path) -> Service:
    """The Procfile's process ``name``, its port variable (``${..._PORT:-default}``) set to a free port."""
    command = procfile()[name]
    port_variable = re.search(r"\$\{(\w+_PORT):-\d+\}", command)
    assert port_variable, f"the Procfile line of {name} names no port variable"
    port = free_port()
    # bash runs a one-command line as that command (no shell in between): stop() waits for the process itself.
    return Service(name, ["bash", "-c", command], {**env, port_variable.group(1): str(port)}, port, work)


def function(name: str, env: Mapping[str, str], work: Path, extra: Mapping[str, str] | None = None) -> Service:
    """A function exactly as the native runner starts it (the test set-up made the queue and topics), its
    invocation log in ``work`` rather than beside a running `make up`'s."""
    own = {"SETUP_ONLY": "migrate", "INVOCATION_LOG": str(work / f"{name}-invocations.log")}
    return procfile_process(name, {**env, **own, **(extra or {})}, work)


def front(work: Path) -> Service:
    """The page's static server, as the native runner starts it."""
    return procfile_process("front", {"PYTHON": sys.executable}, work)


def trigger(env: Mapping[str, str], work: Path, name: str = "trigger") -> Service:
    """orders-trigger, its status server on a free port (``service.port``): ready once that answers."""
    port = free_port()
    return Service(name, ["orders-trigger"], {**env, "TRIGGER_STATUS_PORT": str(port)}, port, work)
