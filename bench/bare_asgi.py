"""The yardstick of the lookup benchmark: an ASGI app that answers every request with one fixed JSON body of
``BARE_BODY_BYTES`` bytes (the size of a looked-up order), served by the same server, workers and load as
get_order (``infra/native/function.sh`` with ``ASGI_APP=bare_asgi:app``)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

_SIZE = int(os.environ.get("BARE_BODY_BYTES", "1024"))
BODY = b'{"x":"' + b"a" * max(0, _SIZE - 8) + b'"}'
HEADERS = [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(BODY)).encode())]


async def app(
    scope: MutableMapping[str, Any],
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
