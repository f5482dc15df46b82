#!/usr/bin/env bash
# Waits for the shared services and their schema/topic/queue, then runs the given command.
set -euo pipefail
orders-setup --wait
exec "$@"
