#!/usr/bin/env bash
# Runs one function under functions-framework once the shared services are set up.
# Usage: function.sh NAME PORT   (NAME is a folder under functions/)
# SETUP_ONLY (e.g. "migrate") limits the set-up to those steps, for a function run without Kafka or the queue.
set -euo pipefail
name="$1"; port="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
only=()
for step in ${SETUP_ONLY:-}; do only+=(--only "$step"); done
orders-setup --wait "${only[@]}"
# gunicorn as functions-framework runs it: WORKERS processes of THREADS threads each.
export WORKERS="${WORKERS:-2}" THREADS="${THREADS:-8}"
# get_order runs in functions-framework's ASGI mode (FUNCTION_USE_ASGI, its --asgi): uvicorn workers, one
# event loop each, THREADS threads each for PostgreSQL reads; FUNCTION_USE_ASGI=false serves it with Flask.
# The other functions have no ASGI adapter.
if [ "$name" = get_order ]; then export FUNCTION_USE_ASGI="${FUNCTION_USE_ASGI:-true}"; else unset FUNCTION_USE_ASGI; fi
exec functions-framework --source "$root/functions/$name/main.py" --target http_entry \
    --host "${FUNCTION_HOST:-127.0.0.1}" --port "$port"
