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
# The wheels of the runtime and architecture template.yaml names, whatever builds the layer: pip otherwise picks
# compiled packages (pydantic-core, confluent-kafka, pybase64, msgspec) for the Python and platform it runs on, and a
# layer built by Python 3.11, or on a Mac, fails to import on Lambda's python3.12 on x86_64.
runtime="$(sed -n 's/^ *Runtime: python\([0-9.]*\) *$/\1/p' "$root/template.yaml" | head -n 1)"
arch="$(sed -n 's/^ *BuildArchitecture: *\([a-z0-9_]*\) *$/\1/p' "$root/template.yaml" | head -n 1)"
[ "$arch" = arm64 ] && arch=aarch64
# Lambda's Python runtimes run on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels load, and pip does not
# count the older manylinux2014 ones as compatible with a newer tag it is given: both are named.
target=(--implementation cp --python-version "${runtime:?no Runtime in template.yaml}" --only-binary=:all:
        --platform "manylinux_2_28_${arch:?no BuildArchitecture in template.yaml}" --platform "manylinux2014_$arch")
if [ "$*" != "--no-deps" ]; then
    # --no-warn-conflicts: pip would compare the layer's packages with the building interpreter's own.
    # shellcheck disable=SC2086
    python3 -m pip install --quiet --no-warn-conflicts --target "$out" "${target[@]}" "$@" $requirements
fi
cp -R "$root/src/orders_core" "$out/"
find "$out/orders_core" -name __pycache__ -prune -exec rm -rf {} +
