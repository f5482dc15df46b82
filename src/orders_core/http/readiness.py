"""Readiness: whether a function can do its work now, dependency by dependency, for health checks."""

from __future__ import annotations

import logging
from collections.abc import Callable

from orders_core.http.responses import HttpResponse, json_response

log = logging.getLogger(__name__)


def readiness(**checks: Callable[[], object]) -> HttpResponse:
    """200 when every check returns, else 503; each dependency ``ok`` or ``unreachable``. Why one failed
    (host names, driver errors) goes to the log, never to whoever asks."""
    found: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            found[name] = "ok"
        except Exception as exc:  # whatever stops a dependency answering makes the function not ready
            log.warning("readiness: %s unreachable: %s", name, exc)
            found[name] = "unreachable"
    ready = all(state == "ok" for state in found.values())
    body = {"status": "ok" if ready else "unavailable", **found}
    return json_response(200 if ready else 503, body, **{"Cache-Control": "no-store"})
