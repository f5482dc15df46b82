#!/usr/bin/env bash
# Serves the static page in front/ (no build step).
# Usage: front.sh PORT   (binds FRONT_HOST, default 127.0.0.1; PYTHON picks the interpreter, default python3)
set -euo pipefail
port="${1:?usage: front.sh PORT}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
exec "${PYTHON:-python3}" -m http.server "$port" --bind "${FRONT_HOST:-127.0.0.1}" --directory "$root/front"
