#!/usr/bin/env bash
# The local SQS endpoint of the stack (the Procfile's `aws`): ElasticMQ, run natively from Maven Central jars,
# with its queues and messages on disk (infra/sqs/elasticmq.conf), so dead letters survive a restart or a kill.
#
# Usage:
#   infra/native/sqs.sh [run]   # fetch the jars if needed, then exec ElasticMQ in the foreground
#   infra/native/sqs.sh fetch   # only gather the jars (idempotent; `make install` runs it)
#
# Environment (all optional):
#   AWS_PORT       port (the service's AWS_ENDPOINT_URL)  default 4566
#   SQS_HOST       bind address                           default 127.0.0.1
#   SQS_DATA_DIR   the H2 database of queues and messages default <repo>/.local/sqs-data
#   SQS_LIBS_DIR   jar directory                          default <repo>/.local/sqs-libs
#   SQS_HEAP       JVM heap flags                         default "-Xmx256m -Xms64m"
#   AWS_REGION     region of the queue ARNs               default us-east-1
#   JAVA_HOME      Java 17+ to use                        default: java on PATH
#
# ElasticMQ is exec'd, so the caller (honcho, a test) owns the PID; SIGTERM stops it cleanly.
set -euo pipefail

# shellcheck source=infra/native/jvm-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/jvm-common.sh"
POM="$REPO_ROOT/infra/sqs/pom.xml"
CONF="$REPO_ROOT/infra/sqs/elasticmq.conf"

export AWS_PORT="${AWS_PORT:-4566}" SQS_HOST="${SQS_HOST:-127.0.0.1}" AWS_REGION="${AWS_REGION:-us-east-1}"
SQS_DATA_DIR="${SQS_DATA_DIR:-$REPO_ROOT/.local/sqs-data}"
SQS_LIBS_DIR="${SQS_LIBS_DIR:-$REPO_ROOT/.local/sqs-libs}"
SQS_HEAP="${SQS_HEAP:--Xmx256m -Xms64m}"

# The jars of the pom, once per pom content, one fetch at a time (fetch-jars.sh, as kafka.sh).
fetch() {
    "$SCRIPT_DIR/fetch-jars.sh" "$POM" "$SQS_LIBS_DIR" 'elasticmq-server_2.13-*.jar'
}

run() {
    fetch
    SQS_LIBS_DIR="$(abs_dir "$SQS_LIBS_DIR")"
    SQS_DATA_DIR="$(abs_dir "$SQS_DATA_DIR")"
    export SQS_DATA_DIR
    local heap=()
    read -r -a heap <<<"$SQS_HEAP"
    log "starting ElasticMQ (SQS) on ${SQS_HOST}:${AWS_PORT}, data $SQS_DATA_DIR"
    exec "$JAVA" "${heap[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dconfig.file="$CONF" -cp "$SQS_LIBS_DIR/*" org.elasticmq.server.Main
}

case "${1:-run}" in
    run) run ;;
    fetch) fetch ;;
    -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
    *) die "unknown subcommand '$1' (expected: run | fetch)" ;;
esac
