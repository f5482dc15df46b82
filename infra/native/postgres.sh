#!/usr/bin/env bash
# Runs PostgreSQL in the foreground from the machine's server binaries, with its own data directory.
# The cluster is created on first run (user/password/database from PGUSER/PGPASSWORD/PGDATABASE).
# PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
data_dir="${PG_DATA_DIR:-$root/.local/pg-data}"
port="${PGPORT:-5432}"
host="${PG_LISTEN:-127.0.0.1}"
user="${PGUSER:-orders}"
password="${PGPASSWORD:-orders}"
database="${PGDATABASE:-orders}"
bin_dir="${PG_BIN_DIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}"

as_owner=()
if [ "$(id -u)" = 0 ]; then
    as_owner=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi

# PG_REPLICA_OF=host:port: a streaming replica of that primary, copied with pg_basebackup on first run
# (-R writes the standby settings; a fast checkpoint, or it waits for the primary's next spread one, minutes),
# read-only, kept up to date by the primary's WAL.
if [ -n "${PG_REPLICA_OF:-}" ] && [ ! -s "$data_dir/PG_VERSION" ]; then
    mkdir -p "$data_dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$data_dir"
    chmod 700 "$data_dir"
    "${as_owner[@]}" env PGPASSWORD="$password" "$bin_dir/pg_basebackup" \
        -h "${PG_REPLICA_OF%:*}" -p "${PG_REPLICA_OF##*:}" -U "$user" \
        -D "$data_dir" -R -X stream --checkpoint=fast >/dev/null
fi

if [ ! -s "$data_dir/PG_VERSION" ]; then
    mkdir -p "$data_dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$data_dir"
    chmod 700 "$data_dir"
    pwfile="$(mktemp)"
    printf '%s\n' "$password" > "$pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$pwfile"
    "${as_owner[@]}" "$bin_dir/initdb" -D "$data_dir" -U "$user" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    # The database named after the service; created once, in single-user mode, before anyone connects.
    echo "CREATE DATABASE \"$database\"" | "${as_owner[@]}" "$bin_dir/postgres" --single -D "$data_dir" postgres >/dev/null
fi

exec "${as_owner[@]}" "$bin_dir/postgres" -D "$data_dir" -p "$port" -h "$host" -k "$data_dir" \
    -c max_connections="${PG_MAX_CONNECTIONS:-200}" -c shared_buffers="${PG_SHARED_BUFFERS:-256MB}" \
    -c log_min_messages=warning -c log_checkpoints=off
