#!/usr/bin/env bash
# Starts the whole stack natively under honcho (Procfile) and says what runs where.
# Ctrl-C, or `make down` from another terminal, stops everything it started.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export PATH="$root/.venv/bin:$PATH"
mkdir -p .local
if [ -f .local/stack.pid ] && kill -0 "$(cat .local/stack.pid)" 2>/dev/null; then
    echo "the stack already runs (pid $(cat .local/stack.pid)); 'make down' stops it" >&2
    exit 1
fi
# Addresses the processes share, derived from the ports (each may also be set whole).
# KAFKA_BOOTSTRAP_SERVERS set by the caller means an external Kafka: no local broker is started.
external_kafka="${KAFKA_BOOTSTRAP_SERVERS:-}"
export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
export MEMCACHED_SERVERS="${MEMCACHED_SERVERS-127.0.0.1:${MEMCACHED_PORT:-11211}}"
export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:${AWS_PORT:-4566}}"
export INGEST_URL="${INGEST_URL:-http://127.0.0.1:${INGEST_PORT:-8081}}"
export GENERATE_URL="${GENERATE_URL:-http://127.0.0.1:${GENERATE_PORT:-8082}}"
# The scheduler's settings as it will read them (an empty GENERATE_SCHEDULE disables it).
schedule="$(python -c 'from orders_core.config import get_settings; s = get_settings()
on = "%s: POST {\"count\": %d} to generate_orders" % (s.generate_schedule, s.generate_schedule_count)
print(on if s.generate_schedule.strip() else "disabled")')"
# Plain log lines for people reading the terminal (the cloud default is one JSON object a line).
export LOG_FORMAT="${LOG_FORMAT:-text}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
cat <<TABLE
orders: starting the stack (Ctrl-C or 'make down' stops it)
  page             http://127.0.0.1:${FRONT_PORT:-3000}/
  lookup API       http://127.0.0.1:${GET_ORDER_PORT:-8080}/orders/{order_uid}   (get_order; GET /health, /livez)
  lookup log       ${INVOCATION_LOG-.local/logs/get_order-invocations.log}   (a line per lookup, written four times a second)
  ingest           http://127.0.0.1:${INGEST_PORT:-8081}/   (ingest_order, fed by the Kafka trigger; GET /health)
  trigger status   http://127.0.0.1:${TRIGGER_PORT:-8083}/status   (partitions, commits, lag, retries; also /metrics)
  generator        http://127.0.0.1:${GENERATE_PORT:-8082}/   (POST {"count": N}; or 'make generate N=1000')
  scheduler        ${schedule}   (GENERATE_SCHEDULE, GENERATE_SCHEDULE_COUNT; GET http://127.0.0.1:${SCHEDULER_PORT:-8084}/health)
  Kafka            ${KAFKA_BOOTSTRAP_SERVERS}   topic ${KAFKA_TOPIC:-orders}   ${KAFKA_SECURITY_PROTOCOL:-PLAINTEXT}${KAFKA_SASL_MECHANISM:+ $KAFKA_SASL_MECHANISM} (docs/kafka.md)
  PostgreSQL       127.0.0.1:${PGPORT:-5432}   database ${PGDATABASE:-orders}
  memcached        ${MEMCACHED_SERVERS:-(disabled)}
  SQS (ElasticMQ)  ${AWS_ENDPOINT_URL}   dead letters: queue ${DLQ_QUEUE_NAME:-orders-dlq}, kept in ${SQS_DATA_DIR:-.local/sqs-data}
TABLE
processes=()
for name in $(grep -oE '^[a-z_]+' Procfile); do
    # An external Kafka (KAFKA_BOOTSTRAP_SERVERS set to something else) replaces the local one.
    if [ "$name" = kafka ] && [ -n "$external_kafka" ]; then
        echo "  (Kafka is external: no local broker)"
        continue
    fi
    processes+=("$name")
done
echo $$ > .local/stack.pid
trap 'rm -f .local/stack.pid' EXIT
honcho start -f Procfile "${processes[@]}" &
honcho_pid=$!
trap 'kill -TERM $honcho_pid 2>/dev/null' TERM INT
wait $honcho_pid || true
wait $honcho_pid 2>/dev/null || true
