"""A small HTTP server for a local process to say how it is (the trigger's ``/status``, the scheduler's
``/health``): fixed paths, each answered by a function of no arguments, JSON for everything else."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from orders_core.http.responses import JSON_TYPE, HttpResponse, error

log = logging.getLogger(__name__)


def serve(routes: Mapping[str, Callable[[], HttpResponse]], host: str, port: int, name: str) -> ThreadingHTTPServer:
    """Serve GET and HEAD on ``routes`` on a daemon thread; ``shutdown()`` the server to stop. Binding happens
    here, so a port taken by another process fails the caller at once."""
    known = ", ".join(sorted(routes))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            answer = routes.get(path)
            self._send(answer() if answer else error(404, "not_found", f"No such endpoint: {path[:100]}. Try {known}."))

        do_HEAD = do_GET  # _send leaves the body out

        def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
            # http.server's own errors (a bad request line, an unknown method) in JSON, as every answer.
            self.close_connection = True
            phrase = HTTPStatus(code).phrase
            self._send(error(code, phrase.lower().replace(" ", "_"), message or phrase))

        def _send(self, answer: HttpResponse) -> None:
            self.send_response(answer.status)
            for header, value in {"Content-Type": JSON_TYPE, **answer.headers}.items():
                self.send_header(header, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(f"{name} status server: " + format, *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"{name}-status-server", daemon=True).start()
    return server
