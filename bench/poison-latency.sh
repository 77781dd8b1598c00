#!/usr/bin/env bash
# Poison records: detection latency and the throughput cost of scanning.
#
# Usage: bench/poison-latency.sh
#
#   1. `cargo run --release -p vigil-bench --example poison_latency`: time
#      from a DataRow carrying a poison value written to vigil until its
#      poison.accessed event is sealed into the audit log (p50, p90, p99).
#   2. pgbench -S (select-only) through vigil without and with a [poison]
#      registry of POISON_ENTRIES values (every result row scanned),
#      alternating, ROUNDS rounds of DURATION seconds each, -M prepared.
#
#   DURATION=10 ROUNDS=3 CLIENTS=4 SCALE=10 POISON_ENTRIES=100
#   PGBIN=/usr/lib/postgresql/15/bin  VIGIL=target/release/vigil  KEEP=1
#
# Starts a throwaway PostgreSQL and vigil on free ports under a temporary
# directory, removed on exit. As root, PostgreSQL runs as `postgres`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-4}
SCALE=${SCALE:-10}
POISON_ENTRIES=${POISON_ENTRIES:-100}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
KEEP=${KEEP:-0}
NCPU=$(nproc)
THREADS=$(( NCPU < CLIENTS ? NCPU : CLIENTS ))

NAME=poison-latency.sh
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"
need_pg_tools

log "latency: cargo run --release -p vigil-bench --example poison_latency"
(cd "$ROOT" && cargo run -q --release -p vigil-bench --example poison_latency) \
    || die "the latency example failed"

vigil_binary

TMP=$(bench_tmpdir poison)
VIGIL_PID=
cleanup() {
    set +e
    [ -n "$VIGIL_PID" ] && kill -TERM "$VIGIL_PID" 2>/dev/null && wait "$VIGIL_PID" 2>/dev/null
    pg_stop "$TMP"
    if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_PORT=$(free_port)
VIGIL_PORT=$(free_port)
pg_start "$TMP" "$PG_PORT" <<EOF
synchronous_commit = off
EOF
export PGUSER=postgres PGDATABASE=postgres PGSSLMODE=disable PGHOST=127.0.0.1
pgbench -i -q -s "$SCALE" -p "$PG_PORT" >"$TMP/init.log" 2>&1 || die "pgbench -i failed"

VIGIL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export VIGIL_MASTER_KEY
mkdir -p "$TMP/vigil"
per_kind=$(( (POISON_ENTRIES + 4) / 5 ))
for kind in email uuid int bytea text; do
    "$VIGIL" poison make --kind "$kind" --count "$per_kind" --key-dir "$TMP/vigil/keys" \
        --registry "$TMP/vigil/poison.json" >/dev/null 2>&1 || die "vigil poison make failed"
done

config() { # with_poison
    cat <<EOF
sinks = []
[service]
origin = "poison-bench"
data_dir = "$TMP/vigil/data"
[proxy]
listen = "127.0.0.1:$VIGIL_PORT"
upstream = "127.0.0.1:$PG_PORT"
coverage = "all"
[audit]
dir = "$TMP/vigil/audit"
key_dir = "$TMP/vigil/keys"
EOF
    if [ "$1" = 1 ]; then
        printf '[poison]\nregistry = "%s"\n' "$TMP/vigil/poison.json"
    fi
}
config 0 >"$TMP/vigil/plain.toml"
config 1 >"$TMP/vigil/poison.toml"

run() { # name config
    "$VIGIL" serve -c "$2" >"$TMP/vigil/$1.out" 2>"$TMP/vigil/$1.err" &
    VIGIL_PID=$!
    wait_ready "$VIGIL_PORT" vigil
    pgbench -n -S -M prepared -c "$CLIENTS" -j "$THREADS" -T 2 -p "$VIGIL_PORT" >/dev/null 2>&1
    pgbench -n -S -M prepared -c "$CLIENTS" -j "$THREADS" -T "$DURATION" -p "$VIGIL_PORT" \
        | awk '/^tps/ { print $3; exit }'
    kill -TERM "$VIGIL_PID"; wait "$VIGIL_PID" 2>/dev/null || true
    VIGIL_PID=
}

log "throughput: pgbench -S -M prepared -c $CLIENTS -j $THREADS, ${DURATION}s, $ROUNDS rounds, registry of $(( per_kind * 5 )) values; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'round\twithout_poison_tps\twith_poison_tps\n'
for r in $(seq "$ROUNDS"); do
    a=$(run plain "$TMP/vigil/plain.toml")
    b=$(run poison "$TMP/vigil/poison.toml")
    printf '%s\t%s\t%s\n' "$r" "$a" "$b"
done
log "done; load $(cut -d' ' -f1-3 /proc/loadavg)"
