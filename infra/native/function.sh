#!/usr/bin/env bash
# Runs one function under functions-framework once the shared services are set up.
# Usage: function.sh NAME PORT   (NAME is a folder under functions/)
# FUNCTION_TARGET names the callable to serve (default http_entry, on Flask, functions-framework's default);
# `asgi` is served by functions-framework's ASGI server (--asgi: uvicorn workers); `app` (get_order's plain
# ASGI application, as the Procfile runs it) by granian, WORKERS processes of one event loop each: the fastest
# of these for a lookup (docs/benchmarks.md). The benchmark serves its yardstick the same way (APP_DIR, ASGI_APP).
# SETUP_ONLY (e.g. "migrate") limits the set-up to those steps, for a function run without Kafka or the queue.
set -euo pipefail
name="$1"; port="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
only=()
for step in ${SETUP_ONLY:-}; do only+=(--only "$step"); done
orders-setup --wait "${only[@]}"
# gunicorn as functions-framework runs it: WORKERS processes of THREADS threads each.
export WORKERS="${WORKERS:-2}" THREADS="${THREADS:-8}"
# Each worker keeps its metrics in files here, and GET /metrics adds them up (prometheus_client's multiprocess
# mode). One folder per function and port, emptied at start: figures of an earlier run must not be counted.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$root/.local/metrics/$name-$port}"
rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
target="${FUNCTION_TARGET:-http_entry}"
if [ "$target" = app ]; then
    # uvloop, named: granian's "auto" takes rloop over it whenever rloop is installed, and rloop answered fewer
    # lookups here (docs/benchmarks.md).
    exec granian --interface asgi --workers "$WORKERS" --host "${FUNCTION_HOST:-127.0.0.1}" --port "$port" \
        --loop "${GRANIAN_LOOP:-uvloop}" --log-level "${GRANIAN_LOG_LEVEL:-warning}" --no-ws \
        --working-dir "${APP_DIR:-$root/functions/$name}" "${ASGI_APP:-main:app}"
fi
server=()
if [ "$target" = asgi ]; then server=(--asgi); fi
exec functions-framework --source "$root/functions/$name/main.py" --target "$target" "${server[@]}" \
    --host "${FUNCTION_HOST:-127.0.0.1}" --port "$port"
