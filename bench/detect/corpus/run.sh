#!/usr/bin/env bash
# The SQL injection payload corpus (bench/detect/data) through the proxy: every
# statement `detect_eval --emit` builds (each payload line in five templates)
# is sent through `vigil serve` to a throwaway PostgreSQL as the application
# role, one simple Query per connection; the report compares the
# `anomaly.sql_injection` events in the sealed audit log with what the
# library found for the same statements.
#
# Usage: bench/detect/corpus/run.sh
#
#   PGBIN=/usr/lib/postgresql/15/bin
#   VIGIL=target/release/vigil  (built when missing or older than the sources)
#   KEEP=1       keep the temporary directory (audit log, corpus, logs)
#
# The application role owns nothing and has a 200 ms statement timeout, so
# payloads that drop tables, sleep or call server programs do no harm. Needs
# PostgreSQL's server binaries, psql, python3 and psycopg 3 in target/pyenv
# (created here when missing).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
NAME=corpus/run.sh
# shellcheck source=../../lib.sh
. "$ROOT/bench/lib.sh"
KEEP=${KEEP:-0}

need_pg_tools
command -v python3 >/dev/null || die "python3 not found"
need_pyenv
vigil_binary

TMP=$(bench_tmpdir corpus)
VIGIL_PID=
cleanup() {
    set +e
    stop_pid "$VIGIL_PID"
    pg_stop "$TMP"
    if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building detect_eval and writing the corpus statements"
(cd "$ROOT" && cargo build -q --release -p vigil-bench --bin detect_eval) || die "cargo build failed"
"${CARGO_TARGET_DIR:-$ROOT/target}/release/detect_eval" --data "$ROOT/bench/detect/data" \
    --normal 1000 --emit "$TMP/corpus.jsonl" >"$TMP/detect_eval.md" || die "detect_eval failed"

PG_PORT=$(free_port)
VIGIL_PORT=$(free_port)
while [ "$VIGIL_PORT" = "$PG_PORT" ]; do VIGIL_PORT=$(free_port); done
log "PostgreSQL on port $PG_PORT"
pg_start "$TMP" "$PG_PORT" </dev/null
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres >/dev/null <<'EOSQL'
CREATE ROLE app LOGIN;
ALTER ROLE app SET statement_timeout = '200ms';
CREATE DATABASE shop;
\c shop
CREATE TABLE users (id int PRIMARY KEY, name text, email text, passwd text);
CREATE TABLE products (id int PRIMARY KEY, title text, price numeric);
CREATE TABLE comments (body text, author_id int);
INSERT INTO users VALUES (1, 'alice', 'alice@example.com', 'x'), (2, 'bob', 'bob@example.com', 'y');
INSERT INTO products VALUES (1, 'apple', 0.5), (2, 'pear', 0.8);
GRANT SELECT ON users, products TO app;
GRANT SELECT, INSERT ON comments TO app;
EOSQL

V=$TMP/vigil
mkdir -m 700 "$V"
AUDIT=$V/data/audit
cat >"$V/vigil.toml" <<EOC
sinks = []

[service]
origin = "corpus-bench"
data_dir = "$V/data"

[proxy]
listen = "127.0.0.1:$VIGIL_PORT"
upstream = "127.0.0.1:$PG_PORT"

[audit]
dir = "$AUDIT"
key_dir = "$V/data/keys"
segment_max_mb = 65536

[detect]
sql_injection = true
application_roles = ["app"]
EOC
VIGIL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export VIGIL_MASTER_KEY
"$VIGIL" config check "$V/vigil.toml" >/dev/null || die "vigil config check failed"
log "vigil on port $VIGIL_PORT"
"$VIGIL" serve -c "$V/vigil.toml" >"$V/stdout.log" 2>"$V/stderr.log" &
VIGIL_PID=$!
wait_ready "$VIGIL_PORT" vigil

log "sending $(wc -l <"$TMP/corpus.jsonl") statements through vigil"
SUMMARY=$("$PY" "$HERE/send.py" "host=127.0.0.1 port=$VIGIL_PORT user=app dbname=shop sslmode=disable" \
    "$TMP/corpus.jsonl") || die "send.py failed"
sleep 1
stop_pid "$VIGIL_PID"
VIGIL_PID=
"$VIGIL" verify "$AUDIT" --key-dir "$V/data/keys" >"$TMP/verify.log" 2>&1 \
    || { cat "$TMP/verify.log" >&2; die "the audit log does not verify"; }
python3 "$HERE/report.py" "$AUDIT" "$TMP/corpus.jsonl" "$SUMMARY" "$(tail -1 "$TMP/verify.log")"
