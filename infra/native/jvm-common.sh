# Sourced by the scripts that run a server from Maven Central jars (kafka.sh, sqs.sh): where things are,
# which java, and their small helpers.
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"
if [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi

log() { echo "[$(basename "$0")] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# Make a (possibly relative) directory path absolute, creating it.
abs_dir() { mkdir -p "$1" && (cd "$1" && pwd); }
