#!/usr/bin/env bash
# Serves the static page in front/ (no build step).
# Usage: front.sh PORT   (binds FRONT_HOST, default 127.0.0.1; PYTHON picks the interpreter, default python3)
# FRONT_ALLOW_API_OVERRIDE=1 serves config.js with `?api=` links allowed (the Procfile sets it for `make up`).
set -euo pipefail
port="${1:?usage: front.sh PORT}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "${PYTHON:-python3}" "$root/infra/native/front_server.py" "$port" "$root/front"
