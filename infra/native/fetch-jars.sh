#!/usr/bin/env bash
# Gathers a pom's runtime jars from Maven Central into a folder, once per version of the pom (idempotent;
# concurrent runs wait for each other). kafka.sh and sqs.sh fetch their servers with it.
# Usage: fetch-jars.sh POM DIR JAR_GLOB   (JAR_GLOB: a jar that must be among them, e.g. 'kafka_2.13-*.jar')
set -euo pipefail
pom="${1:?usage: fetch-jars.sh POM DIR JAR_GLOB}"; dir="${2:?}"; must="${3:?}"
log() { echo "[fetch-jars] $*" >&2; }
[[ -f "$pom" ]] || { log "missing $pom"; exit 1; }
mkdir -p "$dir"
want="$(sha256sum "$pom" | cut -d' ' -f1)"
marker="$dir/.pom.sha256"
[[ -f "$marker" && "$(cat "$marker")" == "$want" ]] && exit 0
exec {lockfd}>"$dir/.fetch.lock"
flock "$lockfd"
[[ -f "$marker" && "$(cat "$marker")" == "$want" ]] && exit 0
command -v mvn >/dev/null 2>&1 || { log "mvn not found (needed once to fetch the jars of $pom)"; exit 1; }
log "fetching the jars of $(basename "$(dirname "$pom")") from Maven Central into $dir ..."
tmp="$(mktemp -d "$dir/.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# mvn -q still emits stray ANSI codes; keep its output only for errors.
if ! mvn -B -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime \
        >"$tmp/mvn.log" 2>&1; then
    cat "$tmp/mvn.log" >&2
    log "mvn dependency:copy-dependencies failed"
    exit 1
fi
compgen -G "$tmp/$must" >/dev/null || { log "$must missing after the fetch"; exit 1; }
rm -f "$marker" "$dir"/*.jar
mv "$tmp"/*.jar "$dir"/
echo "$want" >"$marker"
log "fetched $(ls "$dir"/*.jar | wc -l) jars"
