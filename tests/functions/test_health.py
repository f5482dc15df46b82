"""Health of the functions, with a dependency really stopped: liveness asks nothing and answers; readiness
names the dependency that is down, and nothing about where it lives or how it failed."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import flask.testing
import functions_framework
import pytest

from devstack import services
from devstack.services import Service
from orders_core import bootstrap as runtime
from orders_core.adapters.sqs import ensure_queue
from orders_core.config import Settings

Client = flask.testing.FlaskClient


def client_of(function: str) -> Client:
    return functions_framework.create_app(target="http_entry", source=f"functions/{function}/main.py").test_client()


@pytest.fixture
def own(work_dir: Path, monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Callable[[str], Service]]:
    """A PostgreSQL or SQS (moto) of the test's own, which it may stop; the settings point at it."""
    started: list[services.Service] = []

    def start(kind: str) -> services.Service:
        folder = work_dir / f"own-{kind}-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        folder.chmod(0o755)  # PostgreSQL runs as its own user when the tests run as root
        service = (services.postgres if kind == "postgres" else services.moto)(folder).start()
        started.append(service)
        if kind == "postgres":
            monkeypatch.setenv("PGPORT", str(service.port))
        else:
            monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{service.port}")
            ensure_queue(Settings())
        runtime.reset()
        return service

    yield start
    for service in started:
        service.stop()
    runtime.reset()


def assert_names_no_address(text: str, service: services.Service) -> None:
    assert "127.0.0.1" not in text and str(service.port) not in text


def test_ingest_is_ready_while_postgres_answers_and_503_naming_it_once_stopped(own: Callable[..., Service]) -> None:
    """GIVEN ingest_order on a PostgreSQL of its own WHEN that PostgreSQL stops THEN GET /health turns from
    200 to 503 and says the database is unreachable, the queue fine."""
    postgres, ingest = own("postgres"), client_of("ingest_order")
    answer = ingest.get("/health")
    assert answer.status_code == 200, answer.json
    assert answer.json == {"status": "ok", "postgres": "ok", "queue": "ok"}
    postgres.stop()
    answer = ingest.get("/health")
    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable", "postgres": "unreachable", "queue": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"
    assert_names_no_address(answer.text, postgres)


def test_ingest_is_not_ready_when_the_queue_is_unreachable(own: Callable[..., services.Service]) -> None:
    """GIVEN ingest_order with a dead-letter queue of its own WHEN the SQS server stops THEN GET /health is
    503 naming the queue: a refused record could not be dead-lettered."""
    sqs, ingest = own("sqs"), client_of("ingest_order")
    assert ingest.get("/health").status_code == 200
    sqs.stop()
    answer = ingest.get("/health")
    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable", "postgres": "ok", "queue": "unreachable"}
    assert_names_no_address(answer.text, sqs)


def test_get_order_is_alive_while_postgres_is_down(own: Callable[..., services.Service]) -> None:
    """GIVEN get_order on a PostgreSQL of its own WHEN that PostgreSQL stops THEN GET /livez still answers
    200 (restarting the process would mend nothing) while GET /health is 503."""
    postgres, lookup = own("postgres"), client_of("get_order")
    assert lookup.get("/health").status_code == 200
    postgres.stop()
    assert lookup.get("/health").status_code == 503
    answer = lookup.get("/livez")
    assert answer.status_code == 200 and answer.json == {"status": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"
