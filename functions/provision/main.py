"""provision: the stack's CloudFormation custom resource (``OrdersProvision`` in template.yaml).

On Create and Update it applies the database migrations and creates the Kafka topic, or finds it (both
idempotent, so a repeated or retried request is harmless); on Delete it does nothing, as the schema, the
orders and the topic outlive the stack. Whatever happens it answers CloudFormation: FAILED with the reason
when a step fails or would outlast the invocation, so that the deployment stops and says why instead of
waiting for the custom resource's timeout. The steps are the local ``orders-setup``'s.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import urllib3

from orders_core import bootstrap
from orders_core.config import get_settings
from orders_core.http import logs

FUNCTION = "provision"
PHYSICAL_ID = "orders-schema-and-topic"  # one per stack, kept across updates (a new one would mean a Delete)
MARGIN_S = 10.0  # time kept to answer CloudFormation before Lambda ends the invocation
MAX_REASON = 1000  # the whole response must stay under CloudFormation's 4 KB
log = logging.getLogger(FUNCTION)
_settings = get_settings()  # the process's logging and Lambda conventions, set once at import
logs.configure_logging(_settings.log_format, _settings.log_level)
_http = urllib3.PoolManager(retries=urllib3.Retry(total=4, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)))


def handler(event: dict[str, Any], context: Any) -> None:
    """CloudFormation custom resource request in, one response PUT to its ResponseURL."""
    with logs.invocation(FUNCTION, logs.request_id_from(getattr(context, "aws_request_id", None))):
        physical_id = event.get("PhysicalResourceId") or PHYSICAL_ID
        if event["RequestType"] == "Delete":
            _respond(event, "SUCCESS", physical_id, "nothing to delete: the schema and the topic outlive the stack")
            return
        try:
            steps = _within(bootstrap.provision, _seconds_left(context) - MARGIN_S)
        except Exception as exc:
            log.exception("provisioning failed")
            _respond(event, "FAILED", physical_id, f"{type(exc).__name__}: {exc}")
            return
        log.info("provisioned", extra={"steps": steps})
        _respond(event, "SUCCESS", physical_id, "; ".join(steps))


class ProvisioningTimedOut(Exception):
    """The steps did not finish while there was still time to answer CloudFormation."""


def _within(steps: Callable[[], list[str]], seconds: float) -> list[str]:
    """``steps()``, or ``ProvisioningTimedOut`` after ``seconds`` (the steps go on in the background)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["steps"] = steps()
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="provision", daemon=True)
    worker.start()
    worker.join(max(seconds, 0.0))
    if worker.is_alive():
        raise ProvisioningTimedOut(f"the migrations and the topic were not done within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    result: list[str] = outcome["steps"]
    return result


def _seconds_left(context: Any) -> float:
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    return remaining_ms() / 1000 if remaining_ms else 300.0


def _respond(event: dict[str, Any], status: str, physical_id: str, reason: str) -> None:
    """PUT the response to the presigned ResponseURL (an empty content type, as the signature expects)."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:MAX_REASON],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "NoEcho": False,
            "Data": {},
        }
    ).encode()
    headers = {"content-type": "", "content-length": str(len(body))}
    response = _http.request("PUT", event["ResponseURL"], body=body, headers=headers, timeout=10.0)
    log.info("answered CloudFormation", extra={"status": status, "reason": reason, "http_status": response.status})
