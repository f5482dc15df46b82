"""Serves the static page in front/ (no build step) for the local stack and the tests.

front/config.js is served as it is (a deployment's settings, with ``allowApiOverride: false``) unless
FRONT_ALLOW_API_OVERRIDE=1: then one line after it lets a ``?api=URL`` link point the page at another API (the
tests' API on its free port, a second stack). The file itself never changes, so what is deployed is what is
tested, plus that one line.
Usage: front_server.py PORT DIRECTORY   (binds FRONT_HOST, default 127.0.0.1)
"""

from __future__ import annotations

import functools
import os
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

CONFIG_PATH = "/config.js"
OVERRIDE = b"\nwindow.ORDERS_CONFIG.allowApiOverride = true; // FRONT_ALLOW_API_OVERRIDE=1 (local stack)\n"


class FrontHandler(SimpleHTTPRequestHandler):
    allow_api_override = False

    def do_GET(self) -> None:
        if self.allow_api_override and urlsplit(self.path).path == CONFIG_PATH:
            self._send_config(with_body=True)
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        if self.allow_api_override and urlsplit(self.path).path == CONFIG_PATH:
            self._send_config(with_body=False)
        else:
            super().do_HEAD()

    def _send_config(self, with_body: bool) -> None:
        body = (Path(self.directory) / CONFIG_PATH.lstrip("/")).read_bytes() + OVERRIDE
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if with_body:
            self.wfile.write(body)


def main() -> None:
    port, directory = int(sys.argv[1]), sys.argv[2]
    FrontHandler.allow_api_override = os.environ.get("FRONT_ALLOW_API_OVERRIDE") == "1"
    handler = functools.partial(FrontHandler, directory=directory)
    with ThreadingHTTPServer((os.environ.get("FRONT_HOST", "127.0.0.1"), port), handler) as server:
        print(f"serving {directory} on port {port}" + (" (?api= allowed)" if FrontHandler.allow_api_override else ""),
              flush=True)
        server.serve_forever()


if __name__ == "__main__":
    main()
