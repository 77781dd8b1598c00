#!/usr/bin/env bash
# The anomaly detectors through the proxy: normal traffic, then one attack per
# detector, against vigil serve in front of a throwaway PostgreSQL. Prints a
# Markdown report: per detector, its events during the normal phase (false
# positives, per million statements) and during its attack (detected or not).
#
# Usage: bench/detect/anomaly/run.sh
#
#   LEARN=30     seconds of learning traffic (the detectors' learning windows
#                and warm-ups are set shorter than this)
#   NORMAL=60    seconds of normal traffic that is counted
#   RATE=200     pgbench transactions per second in both phases (-R)
#   CLIENTS=4    pgbench clients
#   PGBIN=/usr/lib/postgresql/15/bin
#   VIGIL=target/release/vigil  (built when missing or older than the sources)
#   KEEP=1       keep the temporary directory (audit log, logs)
#
# Traffic, all as the application role `app` except where said:
#   learning and normal: pgbench at RATE tps, TPC-B (7 statements) with a
#     10-row range read on one transaction in ten, over TLS; 25 psql
#     `SELECT 1` logins over TLS during learning
#   attacks, in order, each in its own time window:
#     new_fingerprint      psql runs a statement shape pgbench never ran
#     sql_injection        psql: `... WHERE aid = 1 OR 1=1`
#     catalog_read         psql: information_schema.tables
#     dangerous_capability psql: pg_read_file()
#     error_burst          psql: 15 syntax errors in one session
#     bulk_read            pgbench runs the range read over 100,000 rows
#     rate                 pgbench -S without a rate limit for 10 s
#     dump                 pg_dump of the database
#     auth_probe           15 logins of `prober` with a wrong password
#     tls_probe            25 TLS handshakes that fail (unknown CA)
#     tls_downgrade        a psql login without TLS after 25 with TLS
#     new_source           a login from 127.0.0.2 (without TLS: the downgrade
#                          was reported for this user already)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
NAME=anomaly/run.sh
# shellcheck source=../../lib.sh
. "$ROOT/bench/lib.sh"

LEARN=${LEARN:-30}
NORMAL=${NORMAL:-60}
RATE=${RATE:-200}
CLIENTS=${CLIENTS:-4}
KEEP=${KEEP:-0}

need_pg_tools
for tool in pgbench pg_dump openssl python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
vigil_binary

TMP=$(bench_tmpdir anomaly)
VIGIL_PID= LOAD_PID=
cleanup() {
    set +e
    stop_pid "$LOAD_PID"
    stop_pid "$VIGIL_PID"
    pg_stop "$TMP"
    if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_PORT=$(free_port)
VIGIL_PORT=$(free_port)
while [ "$VIGIL_PORT" = "$PG_PORT" ]; do VIGIL_PORT=$(free_port); done

# --- PostgreSQL ---------------------------------------------------------------
log "PostgreSQL on port $PG_PORT"
pg_start "$TMP" "$PG_PORT" </dev/null
as_pg sed -i '1i host all prober 127.0.0.1/32 scram-sha-256' "$TMP/pg/pg_hba.conf"
as_pg "$PGBIN/pg_ctl" -D "$TMP/pg" reload >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres >/dev/null <<'EOSQL'
CREATE ROLE app LOGIN;
CREATE ROLE prober LOGIN PASSWORD 'the right one';
CREATE DATABASE bench OWNER app;
EOSQL
pgbench -q -i -s 1 -h 127.0.0.1 -p "$PG_PORT" -U app bench >"$TMP/pgbench-init.log" 2>&1 \
    || { cat "$TMP/pgbench-init.log" >&2; die "pgbench -i failed"; }

# --- vigil --------------------------------------------------------------------
V=$TMP/vigil
mkdir -m 700 "$V"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$V/server.key" -out "$V/server.crt" 2>/dev/null || die "openssl failed"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=other-ca -keyout "$V/other.key" -out "$V/other-ca.crt" 2>/dev/null || die "openssl failed"
AUDIT=$V/data/audit
cat >"$V/vigil.toml" <<EOC
sinks = []

[service]
origin = "anomaly-bench"
data_dir = "$V/data"

[proxy]
listen = "127.0.0.1:$VIGIL_PORT"
upstream = "127.0.0.1:$PG_PORT"

[proxy.tls]
cert = "$V/server.crt"
key = "$V/server.key"

[audit]
dir = "$AUDIT"
key_dir = "$V/data/keys"
segment_max_mb = 65536

[detect]
sql_injection = true
application_roles = ["app"]

[detect.anomaly]
repeat_seconds = 300

[detect.anomaly.new_fingerprint]
learn_statements = 1000
learn_seconds = $((LEARN / 2))

[detect.anomaly.new_source]
learn_connections = 20
learn_seconds = $((LEARN / 2))

[detect.anomaly.tls_downgrade]
min_connections = 20

[detect.anomaly.rate]
half_life_seconds = $LEARN
warmup_seconds = $((LEARN / 2))
EOC
VIGIL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export VIGIL_MASTER_KEY
"$VIGIL" config check "$V/vigil.toml" >/dev/null || die "vigil config check failed"
log "vigil on port $VIGIL_PORT, audit log in $AUDIT"
"$VIGIL" serve -c "$V/vigil.toml" >"$V/stdout.log" 2>"$V/stderr.log" &
VIGIL_PID=$!
wait_ready "$VIGIL_PORT" vigil

# --- traffic ------------------------------------------------------------------
PHASES=$TMP/phases.tsv
: >"$PHASES"
now() { date -u +%Y-%m-%dT%H:%M:%S.%6NZ; }
mark() { printf '%s\t%s\n' "$1" "$(now)" >>"$PHASES"; }
VIA="-h 127.0.0.1 -p $VIGIL_PORT"
app_psql() { # sslmode, then psql arguments
    local mode=$1; shift
    PGSSLMODE=$mode psql -X -q $VIA -U app -d bench "$@"
}
cat >"$TMP/range.sql" <<'EOSQL'
\set a random(1, 99000)
SELECT aid, abalance FROM pgbench_accounts WHERE aid BETWEEN :a AND :a + 9;
EOSQL
cat >"$TMP/bulk.sql" <<'EOSQL'
SELECT aid, abalance FROM pgbench_accounts WHERE aid BETWEEN 1 AND 0 + 100000;
EOSQL

# learning and normal: one pgbench run at a steady rate over both phases
mark learn
PGSSLMODE=require pgbench -n $VIA -U app -c "$CLIENTS" -j 2 -R "$RATE" -T $((LEARN + NORMAL)) \
    -b tpcb-like@9 -f "$TMP/range.sql@1" bench >"$TMP/pgbench-normal.log" 2>&1 &
LOAD_PID=$!
for _ in $(seq 25); do app_psql require -c 'SELECT 1' >/dev/null; done
sleep "$LEARN"
mark normal
log "normal phase: ${NORMAL} s at $RATE tps"
wait "$LOAD_PID" || { cat "$TMP/pgbench-normal.log" >&2; die "pgbench failed"; }
LOAD_PID=
mark attacks
sleep 1

attack() { # name, then the command
    local name=$1; shift
    mark "attack:$name"
    "$@" >"$TMP/attack-$name.log" 2>&1 || true
    sleep 0.5
}
attack new_fingerprint app_psql require -c 'SELECT bid, bbalance FROM pgbench_branches ORDER BY bid'
attack sql_injection app_psql require -c 'SELECT abalance FROM pgbench_accounts WHERE aid = 1 OR 1=1'
attack catalog_read app_psql require -c 'SELECT table_name FROM information_schema.tables'
attack dangerous_capability app_psql require -c "SELECT pg_read_file('/etc/hostname')"
for _ in $(seq 15); do echo 'SELEC 1;'; done >"$TMP/errors.sql"
attack error_burst app_psql require -f "$TMP/errors.sql"
attack bulk_read env PGSSLMODE=require pgbench -n $VIA -U app -c 1 -t 1 -f "$TMP/bulk.sql" bench
attack rate env PGSSLMODE=require pgbench -n $VIA -U app -c "$CLIENTS" -j 2 -S -T 10 bench
attack dump env PGSSLMODE=require pg_dump $VIA -U app -d bench -f /dev/null
probe_auth() {
    for _ in $(seq 15); do
        PGPASSWORD=wrong PGSSLMODE=require psql -X -q $VIA -U prober -d bench -c 'SELECT 1' || true
    done
}
attack auth_probe probe_auth
attack tls_probe python3 "$HERE/clients.py" tls-probe 127.0.0.1 "$VIGIL_PORT" "$V/other-ca.crt" 25
attack tls_downgrade app_psql disable -c 'SELECT 1'
attack new_source python3 "$HERE/clients.py" from-source 127.0.0.1 "$VIGIL_PORT" 127.0.0.2 app bench
mark end
sleep 1

stop_pid "$VIGIL_PID"
VIGIL_PID=
"$VIGIL" verify "$AUDIT" --key-dir "$V/data/keys" >"$TMP/verify.log" 2>&1 \
    || { cat "$TMP/verify.log" >&2; die "the audit log does not verify"; }

python3 "$HERE/report.py" "$AUDIT" "$PHASES" \
    "LEARN=$LEARN NORMAL=$NORMAL RATE=$RATE CLIENTS=$CLIENTS" "$(tail -1 "$TMP/verify.log")"
