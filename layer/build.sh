#!/usr/bin/env bash
# Builds the Lambda layer: orders_core and its [project.dependencies], nothing else (no orders_local, no
# web server: the handlers import neither). `sam build` runs it through the Makefile's build-SharedLayer
# target with ARTIFACTS_DIR set; extra arguments go to pip (the tests pass --no-deps).
# Usage: layer/build.sh DIR [pip arguments...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: layer/build.sh DIR [pip arguments...]}/python"
shift
mkdir -p "$out"
requirements="$(python3 - "$root/pyproject.toml" <<'PY'
import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))
PY
)"
if [ "$*" != "--no-deps" ]; then
    # shellcheck disable=SC2086
    python3 -m pip install --quiet --target "$out" "$@" $requirements
fi
cp -R "$root/src/orders_core" "$out/"
find "$out/orders_core" -name __pycache__ -prune -exec rm -rf {} +
