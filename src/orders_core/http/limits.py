"""Request bodies bounded before they are read, on every HTTP entry.

A body whose declared length is over the limit is refused with 413 before a byte of it is read; a body of no
declared length (``Transfer-Encoding: chunked``) is read no further than the limit. The limits are settings
(``*_MAX_BODY_BYTES``): the ingest's is the platform's own payload cap, the others are small.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

from orders_core.http.responses import HttpResponse, error

if TYPE_CHECKING:
    import flask
    from starlette.requests import Request


def too_large(limit: int) -> HttpResponse:
    return error(413, "payload_too_large", f"The request body must be at most {limit} bytes.")


def declared_too_large(headers: Mapping[str, str], limit: int) -> bool:
    """True when the request says its body is longer than ``limit`` (Content-Length)."""
    declared = headers.get("content-length")
    return declared is not None and declared.strip().isdigit() and int(declared) > limit


def flask_body(request: flask.Request, limit: int) -> bytes | HttpResponse:
    """The body of a functions-framework request, or the 413 answer when it is over ``limit``."""
    if request.content_length is not None and request.content_length > limit:
        return _refused(request, limit)
    # Werkzeug's stream never reads past a declared length; a body of no declared length (gunicorn terminates
    # the stream) is read here no further than one byte past the limit, which tells it is too long.
    stream, chunks, size = request.stream, [], 0
    while size <= limit and (chunk := stream.read(min(64 * 1024, limit + 1 - size))):
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return _refused(request, limit)
    body = b"".join(chunks)
    request.stream = io.BytesIO(body)  # what functions-framework reads after the answer, and get_data() alike
    return body


def _refused(request: flask.Request, limit: int) -> HttpResponse:
    # functions-framework reads the whole body after every answer (so the connection stays usable): a refused
    # one is left unread instead, for the server to discard as it arrives (gunicorn keeps none of it).
    request.stream = io.BytesIO()
    return too_large(limit)


async def asgi_body_refusal(request: Request, limit: int) -> HttpResponse | None:
    """413 when the body of an ASGI request is over ``limit``, counted while it arrives; else None. The body
    itself is not kept: only get_order runs under ASGI, and it reads none."""
    if declared_too_large(request.headers, limit):
        return too_large(limit)
    if request.headers.get("content-length", "0").strip() in ("", "0") and "transfer-encoding" not in request.headers:
        return None  # no body: nothing to wait for
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            return too_large(limit)
    return None
