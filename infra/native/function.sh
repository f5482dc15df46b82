#!/usr/bin/env bash
# Runs one function under functions-framework once the shared services are set up.
# Usage: function.sh NAME PORT   (NAME is a folder under functions/)
set -euo pipefail
name="$1"; port="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
orders-setup --wait
exec functions-framework --source "$root/functions/$name/main.py" --target http_entry \
    --host "${FUNCTION_HOST:-127.0.0.1}" --port "$port"
