#!/usr/bin/env bash
# Run a real single-node Apache Kafka broker (KRaft, combined broker+controller)
# natively from Maven Central jars -- no Docker, no Kafka tarball.
#
# Usage:
#   infra/native/kafka.sh [run]   # fetch jars if needed, format storage if needed,
#                                 # then exec the broker in the foreground
#   infra/native/kafka.sh fetch   # only gather the jars (idempotent)
#
# Environment (all optional):
#   KAFKA_PORT             client (PLAINTEXT) port            default 9092
#   KAFKA_CONTROLLER_PORT  KRaft controller port              default KAFKA_PORT+1
#   KAFKA_HOST             bind + advertised host             default 127.0.0.1
#   KAFKA_ADVERTISED_HOST  advertised host                    default KAFKA_HOST
#   KAFKA_DATA_DIR         config + log dirs                  default <repo>/.local/kafka-data
#   KAFKA_LIBS_DIR         jar directory                      default <repo>/.local/kafka-libs
#   KAFKA_HEAP             JVM heap flags                     default "-Xmx512m -Xms256m"
#   KAFKA_NUM_PARTITIONS   default partitions for new topics  default 3
#   KAFKA_LOG_LEVEL        root log level (stdout)            default WARN
#   KAFKA_OPTS             extra JVM flags, after ours        default empty (e.g. -XX:TieredStopAtLevel=4:
#                          the optimising JIT compiler, off by default)
#   KAFKA_SASL_SSL_PORT    a second client listener, SASL_SSL with SCRAM-SHA-512 and SCRAM-SHA-256 (unset: none).
#                          A throwaway CA and broker certificate are made in <data dir>/tls at start; clients
#                          trust <data dir>/tls/ca.pem (KAFKA_SSL_CA_LOCATION).
#   KAFKA_SCRAM_USER       its user, created when the storage is formatted     default orders
#   KAFKA_SCRAM_PASSWORD   that user's password (required with KAFKA_SASL_SSL_PORT)
#   JAVA_HOME              Java 17+ to use                    default: java on PATH
#
# The broker is exec'd, so the caller (honcho, a test) owns the PID; SIGTERM
# triggers Kafka's clean shutdown.
set -euo pipefail

# shellcheck source=infra/native/jvm-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/jvm-common.sh"
POM="$REPO_ROOT/infra/kafka/pom.xml"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((KAFKA_PORT + 1))}"
KAFKA_HOST="${KAFKA_HOST:-127.0.0.1}"
KAFKA_ADVERTISED_HOST="${KAFKA_ADVERTISED_HOST:-$KAFKA_HOST}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/.local/kafka-data}"
KAFKA_LIBS_DIR="${KAFKA_LIBS_DIR:-$REPO_ROOT/.local/kafka-libs}"
KAFKA_HEAP="${KAFKA_HEAP:--Xmx512m -Xms256m}"
KAFKA_NUM_PARTITIONS="${KAFKA_NUM_PARTITIONS:-3}"
KAFKA_LOG_LEVEL="${KAFKA_LOG_LEVEL:-WARN}"
KAFKA_OPTS="${KAFKA_OPTS:-}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-}"
KAFKA_SCRAM_USER="${KAFKA_SCRAM_USER:-orders}"
KAFKA_SCRAM_PASSWORD="${KAFKA_SCRAM_PASSWORD:-}"

fetch() {
    "$SCRIPT_DIR/fetch-jars.sh" "$POM" "$KAFKA_LIBS_DIR" 'kafka_2.13-*.jar'
}

# Kafka cluster ids are 16 random bytes, base64url without padding (22 chars).
# Avoid a leading '-' (would look like a CLI flag), as Kafka's Uuid does.
new_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* ]] && { echo "$id"; return; }
    done
}

# A CA and a broker certificate for it (127.0.0.1, localhost and the advertised host), in a PKCS12 keystore:
# made afresh at every start, so nothing of a previous run is trusted.
make_certificates() {
    local tls="$DATA_DIR/tls" san
    rm -rf "$tls" && mkdir -p "$tls"
    KEYSTORE_PASSWORD="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=orders test CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=${KAFKA_ADVERTISED_HOST}" \
        -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
    if [[ "$KAFKA_ADVERTISED_HOST" =~ ^[0-9.]+$ ]]; then san="IP:$KAFKA_ADVERTISED_HOST"; else san="DNS:$KAFKA_ADVERTISED_HOST"; fi
    echo "subjectAltName=IP:127.0.0.1,DNS:localhost,$san" >"$tls/san.ext"
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
        -extfile "$tls/san.ext" -out "$tls/broker.pem" 2>/dev/null
    openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" -certfile "$tls/ca.pem" \
        -name broker -passout "pass:$KEYSTORE_PASSWORD" -out "$tls/broker.p12"
    rm -f "$tls/ca.key" "$tls/broker.key" "$tls/broker.csr"
    KEYSTORE="$tls/broker.p12"
}

write_configs() {
    local listeners="PLAINTEXT://${KAFKA_HOST}:${KAFKA_PORT}"
    local advertised="PLAINTEXT://${KAFKA_ADVERTISED_HOST}:${KAFKA_PORT}"
    local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
        listeners+=",SASL_SSL://${KAFKA_HOST}:${KAFKA_SASL_SSL_PORT}"
        advertised+=",SASL_SSL://${KAFKA_ADVERTISED_HOST}:${KAFKA_SASL_SSL_PORT}"
        protocols+=",SASL_SSL:SASL_SSL"
    fi
    cat >"$PROPS" <<EOF
# Generated by infra/native/kafka.sh on every start -- edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
listeners=${listeners},CONTROLLER://${KAFKA_HOST}:${KAFKA_CONTROLLER_PORT}
advertised.listeners=${advertised}
listener.security.protocol.map=${protocols}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=${LOG_DIR}

# Topics / single-node replication
num.partitions=${KAFKA_NUM_PARTITIONS}
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# Keep it light on a small (2-core) machine
num.network.threads=2
num.io.threads=2
background.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.segment.bytes=104857600
log.retention.hours=168
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
EOF
    if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
        cat >>"$PROPS" <<EOF

# The SASL_SSL listener: SCRAM users live in the cluster metadata (created when the storage is formatted).
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=${KEYSTORE}
listener.name.sasl_ssl.ssl.keystore.password=${KEYSTORE_PASSWORD}
EOF
    fi

    cat >"$LOG4J" <<EOF
# Generated by infra/native/kafka.sh -- stdout only.
status = warn
name = kafka-native
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.target = SYSTEM_OUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d{ISO8601}] %p %m (%c{1})%n
rootLogger.level = ${KAFKA_LOG_LEVEL}
rootLogger.appenderRef.stdout.ref = STDOUT
# Always show the one-line "started" / "shut down" lifecycle messages.
logger.lifecycle.name = kafka.server.KafkaRaftServer
logger.lifecycle.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
logger.broker.filter.done.type = RegexFilter
logger.broker.filter.done.regex = .*shut down completed.*
logger.broker.filter.done.onMatch = ACCEPT
logger.broker.filter.done.onMismatch = DENY
EOF
}

java_cmd() {
    local heap=()
    read -r -a heap <<<"$KAFKA_HEAP"
    local extra=()
    read -r -a extra <<<"$KAFKA_OPTS"
    JAVA_ARGS=(
        "${heap[@]}"
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
        -XX:+ExplicitGCInvokesConcurrent
        # The quick compiler only, as for ElasticMQ: a broker of one machine's stack never runs hot enough for
        # the optimising one to pay. That compiler took 2-10 µs of CPU an order from the rest of the stack in
        # every drain of the ingest benchmark, long after its warm-up; without it the broker starts in 2.4-2.9 s
        # on 2.1-2.6 s of CPU rather than 3-3.8 s on 3.8-4.7 s. KAFKA_OPTS=-XX:TieredStopAtLevel=4 turns it back on.
        -XX:TieredStopAtLevel=1
        -Djava.awt.headless=true
        -Dlog4j2.configurationFile="$LOG4J"
        -Dkafka.logs.dir="$DATA_DIR"
        "${extra[@]}"
        -cp "$KAFKA_LIBS_DIR/*"
    )
}

run() {
    fetch
    KAFKA_LIBS_DIR="$(abs_dir "$KAFKA_LIBS_DIR")"
    DATA_DIR="$(abs_dir "$KAFKA_DATA_DIR")"
    LOG_DIR="$DATA_DIR/logs"
    PROPS="$DATA_DIR/server.properties"
    LOG4J="$DATA_DIR/log4j2.properties"
    mkdir -p "$LOG_DIR"
    if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
        [[ -n "$KAFKA_SCRAM_PASSWORD" ]] || die "KAFKA_SASL_SSL_PORT needs KAFKA_SCRAM_PASSWORD (the SCRAM user's)"
        make_certificates
    fi
    write_configs
    java_cmd

    if [[ ! -f "$LOG_DIR/meta.properties" ]]; then
        local cid_file="$DATA_DIR/cluster.id" cid
        [[ -s "$cid_file" ]] || new_cluster_id >"$cid_file"
        cid="$(cat "$cid_file")"
        log "formatting storage in $LOG_DIR (cluster id $cid)"
        local scram=()
        if [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
            for mechanism in SCRAM-SHA-512 SCRAM-SHA-256; do
                scram+=(--add-scram "${mechanism}=[name=${KAFKA_SCRAM_USER},password=${KAFKA_SCRAM_PASSWORD}]")
            done
        fi
        "$JAVA" "${JAVA_ARGS[@]}" kafka.tools.StorageTool format \
            -t "$cid" -c "$PROPS" --ignore-formatted "${scram[@]}" | grep -v "^Bootstrap metadata" >&2
    elif [[ -n "$KAFKA_SASL_SSL_PORT" ]]; then
        log "storage formatted before: the SCRAM user ${KAFKA_SCRAM_USER} exists only if it was created then"
    fi

    log "starting Kafka on ${KAFKA_HOST}:${KAFKA_PORT}${KAFKA_SASL_SSL_PORT:+ and SASL_SSL ${KAFKA_SASL_SSL_PORT}} (controller ${KAFKA_CONTROLLER_PORT}), data $DATA_DIR"
    exec "$JAVA" "${JAVA_ARGS[@]}" kafka.Kafka "$PROPS"
}

case "${1:-run}" in
    run) run ;;
    fetch) fetch ;;
    -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
    *) die "unknown subcommand '$1' (expected: run | fetch)" ;;
esac
