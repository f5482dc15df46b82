"""HTTP answers, shared by the three functions: JSON bodies, and errors a person can read.

Every error is ``{"error": code, "message": text}`` and is never cached; a 405 always says what is allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(slots=True)
class HttpResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, payload: Any, **headers: str) -> HttpResponse:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return HttpResponse(status, body, {"Content-Type": JSON_TYPE, **headers})


def error(status: int, code: str, message: str, **headers: str) -> HttpResponse:
    return json_response(status, {"error": code, "message": message}, **{"Cache-Control": "no-store", **headers})


def method_not_allowed(method: str, allowed: str) -> HttpResponse:
    return error(405, "method_not_allowed", f"{method} is not allowed here; use {allowed}.", Allow=allowed)
