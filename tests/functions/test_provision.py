"""provision, the stack's custom resource: CloudFormation always gets an answer, SUCCESS once the schema and the
topic are provisioned, FAILED with the reason otherwise, and a Delete provisions nothing.

The presigned ResponseURL is a local HTTP server that keeps what it was sent; the provisioning calls are fakes."""

from __future__ import annotations

import copy
import importlib.util
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from devstack import ROOT
from orders_core import bootstrap
from orders_core.adapters import kafka_admin, postgres
from tests.support.events import FIXTURES

EVENT = json.loads((FIXTURES / "custom_resource_event.json").read_text())


@pytest.fixture(scope="module")
def provision() -> ModuleType:
    spec = importlib.util.spec_from_file_location("provision_main", ROOT / "functions" / "provision" / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ResponseUrl:
    """CloudFormation's side: what each PUT to the presigned URL carried."""

    def __init__(self) -> None:
        self.responses: list[tuple[dict[str, str], dict[str, Any]]] = []
        received = self.responses

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append((dict(self.headers.items()), json.loads(body)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/presigned?X-Amz-Signature=abc"

    def only_response(self) -> dict[str, Any]:
        (response,) = self.responses
        return response[1]


@pytest.fixture
def cloudformation() -> Iterator[ResponseUrl]:
    response_url = ResponseUrl()
    thread = threading.Thread(target=response_url.server.serve_forever, daemon=True)
    thread.start()
    yield response_url
    response_url.server.shutdown()
    response_url.server.server_close()


@pytest.fixture
def request_for(cloudformation: ResponseUrl) -> Callable[..., dict[str, Any]]:
    def build(request_type: str = "Create", **fields: Any) -> dict[str, Any]:
        event = copy.deepcopy(EVENT)
        event.update(RequestType=request_type, ResponseURL=cloudformation.url, **fields)
        return event

    return build


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The provisioning calls, as fakes that record their calls in order."""
    calls: list[str] = []
    monkeypatch.setattr(postgres, "migrate", lambda settings: calls.append("migrate") or "applied 0001_orders.sql")
    monkeypatch.setattr(kafka_admin, "ensure_topic", lambda settings: calls.append("topic") or "topic orders exists")
    return calls


def lambda_context(seconds_left: float = 300.0) -> SimpleNamespace:
    return SimpleNamespace(aws_request_id="req-1", get_remaining_time_in_millis=lambda: int(seconds_left * 1000))


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_create_and_update_provision_then_answer_success(
    provision: ModuleType,
    cloudformation: ResponseUrl,
    request_for: Callable[..., dict[str, Any]],
    steps: list[str],
    request_type: str,
) -> None:
    event = request_for(request_type)
    provision.handler(event, lambda_context())
    assert steps == ["migrate", "topic"]
    answer = cloudformation.only_response()
    assert answer["Status"] == "SUCCESS"
    assert answer["Reason"] == "applied 0001_orders.sql; topic orders exists"
    for echoed in ("StackId", "RequestId", "LogicalResourceId"):
        assert answer[echoed] == event[echoed]


def test_the_response_is_sent_as_the_presigned_url_expects(
    provision: ModuleType, cloudformation: ResponseUrl, request_for: Callable[..., dict[str, Any]], steps: list[str]
) -> None:
    """The URL is signed for an empty content type: any other one and S3 refuses the response."""
    provision.handler(request_for(), lambda_context())
    ((headers, _),) = cloudformation.responses
    assert headers.get("content-type", "") == ""


def test_an_update_keeps_the_physical_id_so_cloudformation_deletes_nothing(
    provision: ModuleType, cloudformation: ResponseUrl, request_for: Callable[..., dict[str, Any]], steps: list[str]
) -> None:
    provision.handler(request_for("Create"), lambda_context())
    created = cloudformation.responses[-1][1]["PhysicalResourceId"]
    provision.handler(request_for("Update", PhysicalResourceId=created), lambda_context())
    assert cloudformation.responses[-1][1]["PhysicalResourceId"] == created


def test_a_failing_step_answers_failed_with_the_reason(
    provision: ModuleType,
    cloudformation: ResponseUrl,
    request_for: Callable[..., dict[str, Any]],
    steps: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(settings: Any) -> str:
        raise ConnectionRefusedError("[Errno 111] Connection refused: kafka-1.internal:9092")

    monkeypatch.setattr(kafka_admin, "ensure_topic", unreachable)
    provision.handler(request_for(), lambda_context())
    answer = cloudformation.only_response()
    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == "ConnectionRefusedError: [Errno 111] Connection refused: kafka-1.internal:9092"


def test_a_step_that_would_outlast_the_invocation_answers_failed_in_time(
    provision: ModuleType,
    cloudformation: ResponseUrl,
    request_for: Callable[..., dict[str, Any]],
    steps: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lambda would end the invocation before CloudFormation heard anything, and the deployment would hang."""
    released = threading.Event()
    monkeypatch.setattr(postgres, "migrate", lambda settings: released.wait() and "applied")
    try:
        provision.handler(request_for(), lambda_context(seconds_left=provision.MARGIN_S))
    finally:
        released.set()
    answer = cloudformation.only_response()
    assert answer["Status"] == "FAILED"
    assert "not done within" in answer["Reason"]


def test_delete_provisions_nothing_and_answers_success(
    provision: ModuleType, cloudformation: ResponseUrl, request_for: Callable[..., dict[str, Any]], steps: list[str]
) -> None:
    """The schema, the orders and the topic outlive the stack."""
    provision.handler(request_for("Delete", PhysicalResourceId="orders-schema-and-topic"), lambda_context())
    assert steps == []
    answer = cloudformation.only_response()
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "orders-schema-and-topic")


def test_a_long_reason_is_cut_to_fit_cloudformations_response_limit(
    provision: ModuleType,
    cloudformation: ResponseUrl,
    request_for: Callable[..., dict[str, Any]],
    steps: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def verbose(settings: Any) -> str:
        raise RuntimeError("x" * 10_000)

    monkeypatch.setattr(postgres, "migrate", verbose)
    provision.handler(request_for(), lambda_context())
    ((headers, answer),) = cloudformation.responses
    assert answer["Status"] == "FAILED"
    assert int(headers["content-length"]) < 4096


def test_against_real_services_the_schema_and_a_new_topic_are_there_and_a_rerun_changes_nothing(
    provision: ModuleType,
    cloudformation: ResponseUrl,
    request_for: Callable[..., dict[str, Any]],
    settings: Any,
    kafka_bootstrap: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the stack's Create and a later Update do to real PostgreSQL and Kafka, through the shipped code."""
    topic = f"orders-provision-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KAFKA_TOPIC", topic)
    monkeypatch.setenv("KAFKA_TOPIC_PARTITIONS", "2")
    bootstrap.reset()
    provision.handler(request_for("Create"), lambda_context())
    provision.handler(request_for("Update", PhysicalResourceId="orders-schema-and-topic"), lambda_context())
    created, updated = (answer for _, answer in cloudformation.responses)
    assert created["Status"] == updated["Status"] == "SUCCESS", (created["Reason"], updated["Reason"])
    assert f"topic {topic} created with 2 partitions" in created["Reason"]
    assert updated["Reason"] == f"schema up to date; topic {topic} exists"
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(topic, timeout=10)
    assert len(metadata.topics[topic].partitions) == 2
