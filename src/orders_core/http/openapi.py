"""The lookup API's OpenAPI 3.1 description, built from the order model and the answers' own types, so the
description and the service cannot drift apart. ``GET /openapi.json`` serves it."""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter

from orders_core.domain.model import ORDER_UID_PATTERN, Order
from orders_core.domain.ports import OrderSummary

REF = "#/components/schemas/{model}"


class ErrorBody(BaseModel):
    """Every error answer: a code a program can test and a message a person can read."""

    model_config = ConfigDict(extra="forbid")
    error: Literal["bad_request", "not_found", "method_not_allowed", "unavailable", "internal"]
    message: str


class RecentOrders(BaseModel):
    model_config = ConfigDict(extra="forbid")
    orders: list[OrderSummary]


class Health(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok", "degraded", "unavailable"]
    postgres: str
    memcached: str


class Live(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["ok"]


def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in (Order, ErrorBody, RecentOrders, Health, Live):
        schema = TypeAdapter(model).json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _json(description: str, schema: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=schema)}}},
    }
    if headers:
        answer["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in headers.items()
        }
    return answer


def _error(description: str, **headers: str) -> dict[str, Any]:
    return _json(description, "ErrorBody", **headers)


_RETRY = {"Retry-After": "seconds to wait before asking again"}
_MISS_TIMING = {"Server-Timing": "the tier that knew it is missing (memcached or database), and the milliseconds"}


def _order_path() -> dict[str, Any]:
    found = _json(
        "The order exactly as it was ingested.",
        "Order",
        ETag="strong validator of the body; send it back in If-None-Match",
        **{
            "X-Cache": "the tier that answered: local, memcached or database",
            "Server-Timing": 'the same tier and the server\'s milliseconds: tier;desc="local", app;dur=0.42',
            "Cache-Control": "private (the order holds personal data), max-age=31536000, immutable",
        },
    )
    responses = {
        "200": found,
        "304": {"description": "Not modified: the order matches If-None-Match (a tag, a weak tag or *)."},
        "400": _error("The order_uid is malformed; PostgreSQL was not asked."),
        "404": _error("No order has this order_uid.", **_MISS_TIMING),
        "503": _error("The order is not cached and PostgreSQL cannot be reached.", **_RETRY),
    }
    parameters = [
        {
            "name": "order_uid",
            "in": "path",
            "required": True,
            "example": "b563feb7b2b84b6test",
            "schema": {"type": "string", "pattern": ORDER_UID_PATTERN},
        },
        {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
    ]
    get = {"operationId": "getOrder", "summary": "One order by its order_uid", "responses": responses}
    return {"parameters": parameters, "get": get}


def _list_path(limit_max: int) -> dict[str, Any]:
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": limit_max, "default": 20},
    }
    responses = {
        "200": _json("Order summaries, the last stored first.", "RecentOrders"),
        "400": _error("limit is not a whole number in range."),
        "404": _error("Listing orders is turned off in this deployment."),
        "503": _error("PostgreSQL cannot be reached.", **_RETRY),
    }
    return {
        "get": {
            "operationId": "listOrders",
            "summary": "The newest orders",
            "parameters": [limit],
            "responses": responses,
        }
    }


@cache
def openapi_document(limit_max: int) -> dict[str, Any]:
    """The whole description (``limit_max``: the largest ``limit`` of ``GET /orders``, a setting)."""
    health = {
        "200": _json("PostgreSQL answers (memcached may be degraded).", "Health"),
        "503": _json("PostgreSQL cannot be reached.", "Health"),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "orders: lookup API",
            "version": "1",
            "description": "Orders by order_uid, from a two-tier cache in front of PostgreSQL. Every error is "
            "JSON with a code and a message. Other methods than GET, HEAD and OPTIONS answer 405 with Allow.",
        },
        "paths": {
            "/orders/{order_uid}": _order_path(),
            "/orders": _list_path(limit_max),
            "/health": {"get": {"operationId": "health", "summary": "Readiness", "responses": health}},
            "/livez": {
                "get": {
                    "operationId": "liveness",
                    "summary": "Liveness: the process answers",
                    "responses": {"200": _json("Always, while the process answers: no dependency is asked.", "Live")},
                }
            },
        },
        "components": {"schemas": _schemas()},
    }
