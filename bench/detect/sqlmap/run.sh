#!/usr/bin/env bash
# sqlmap (Debian's package) against a deliberately injectable web application
# (app.py) that reaches PostgreSQL through vigil as an application role, with
# vigil's SQL injection detectors on. Prints a Markdown report: statements per
# phase, injected statements (fingerprints never seen in the normal phase),
# how many raised anomaly.sql_injection, per sqlmap technique and per rule,
# and the false positives of the normal phase.
#
# Usage: bench/detect/sqlmap/run.sh
#
#   NORMAL=3000      benign requests before sqlmap
#   TECHNIQUE=BEUSTQ sqlmap --technique
#   LEVEL=1 RISK=1   sqlmap --level / --risk
#   TIME_SEC=1       sqlmap --time-sec
#   SQLMAP_TIMEOUT=600  seconds per sqlmap run (timeout(1))
#   SQLMAP_EXTRA="--banner --current-user --current-db"  what sqlmap fetches
#                    after detection (exploitation traffic)
#   TARGETS="item?id=1 search?q=apple sort?by=id"   what sqlmap attacks
#   PGBIN=/usr/lib/postgresql/15/bin
#   VIGIL=target/release/vigil  (built with cargo build --release -p vigil
#                    when missing or older than the sources)
#   KEEP=1           keep the temporary directory (audit log, sqlmap output,
#                    the app's SQL log)
#
# Needs PostgreSQL 15's server binaries, pg_isready, psql, sqlmap and
# psycopg 3 in target/pyenv (created here when missing). As root,
# PostgreSQL runs as the user postgres.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
NORMAL=${NORMAL:-3000}
TECHNIQUE=${TECHNIQUE:-BEUSTQ}
LEVEL=${LEVEL:-1}
RISK=${RISK:-1}
TIME_SEC=${TIME_SEC:-1}
SQLMAP_TIMEOUT=${SQLMAP_TIMEOUT:-600}
SQLMAP_EXTRA=${SQLMAP_EXTRA:---banner --current-user --current-db}
TARGETS=${TARGETS:-item?id=1 search?q=apple sort?by=id}
KEEP=${KEEP:-0}
NAME=sqlmap/run.sh
# shellcheck source=../../lib.sh
. "$ROOT/bench/lib.sh"

need_pg_tools
command -v sqlmap >/dev/null || die "sqlmap not found (Debian: apt-get install sqlmap)"
need_pyenv
vigil_binary

TMP=$(bench_tmpdir sqlmap)
VIGIL_PID= APP_PID= CHILD_PID=
cleanup() {
    set +e
    [ -n "$CHILD_PID" ] && kill -TERM "$CHILD_PID" 2>/dev/null && wait "$CHILD_PID" 2>/dev/null
    [ -n "$APP_PID" ] && kill -TERM "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null
    if [ -n "$VIGIL_PID" ] && kill -0 "$VIGIL_PID" 2>/dev/null; then
        kill -TERM "$VIGIL_PID"; wait "$VIGIL_PID" 2>/dev/null
    fi
    pg_stop "$TMP"
    if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_PORT=$(free_port)
VIGIL_PORT=$(free_port)
APP_PORT=$(free_port)
while [ "$VIGIL_PORT" = "$PG_PORT" ]; do VIGIL_PORT=$(free_port); done
while [ "$APP_PORT" = "$PG_PORT" ] || [ "$APP_PORT" = "$VIGIL_PORT" ]; do APP_PORT=$(free_port); done

# --- PostgreSQL ---------------------------------------------------------------
log "PostgreSQL: initdb in $TMP/pg, port $PG_PORT"
pg_start "$TMP" "$PG_PORT" </dev/null
PGVERSION=$(psql -X -At -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c 'SHOW server_version')
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres >/dev/null <<'EOSQL'
CREATE ROLE app LOGIN;
CREATE DATABASE shop OWNER app;
\c shop
SET ROLE app;
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric(8,2) NOT NULL);
INSERT INTO items VALUES
  (1, 'apple', 0.50), (2, 'banana', 0.25), (3, 'cherry', 4.00), (4, 'date', 6.10),
  (5, 'elderberry', 9.99), (6, 'fig', 2.20), (7, 'grape', 3.30), (8, 'kiwi', 0.80),
  (9, 'lemon', 0.40), (10, 'mango', 1.75), (11, 'nectarine', 1.10), (12, 'orange', 0.60),
  (13, 'papaya', 2.90), (14, 'quince', 3.10), (15, 'raspberry', 5.50), (16, 'strawberry', 4.40),
  (17, 'tangerine', 0.70), (18, 'watermelon', 6.00), (19, 'plum', 0.90), (20, 'pear', 0.85),
  (21, 'Granny Smith', 0.55), (22, 'blood orange', 0.95);
EOSQL

# --- vigil --------------------------------------------------------------------
VDIR=$TMP/vigil
mkdir -m 700 "$VDIR"
AUDIT=$VDIR/data/audit
cat >"$VDIR/vigil.toml" <<EOC
sinks = []

[service]
origin = "sqlmap-bench"
data_dir = "$VDIR/data"

[proxy]
listen = "127.0.0.1:$VIGIL_PORT"
upstream = "127.0.0.1:$PG_PORT"

[audit]
dir = "$AUDIT"
key_dir = "$VDIR/data/keys"
segment_max_mb = 65536

[detect]
sql_injection = true
application_roles = ["app"]
EOC
VIGIL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export VIGIL_MASTER_KEY
"$VIGIL" config check "$VDIR/vigil.toml" >/dev/null || die "vigil config check failed"
log "vigil $("$VIGIL" --version | awk '{print $2}'): port $VIGIL_PORT, audit log in $AUDIT"
"$VIGIL" serve -c "$VDIR/vigil.toml" >"$VDIR/stdout.log" 2>"$VDIR/stderr.log" &
VIGIL_PID=$!
wait_ready "$VIGIL_PORT" vigil

# --- the application ------------------------------------------------------------
SQL_LOG=$TMP/app-sql.log
log "app.py: port $APP_PORT, connecting through vigil as app"
"$PY" "$HERE/app.py" --port "$APP_PORT" --sql-log "$SQL_LOG" \
    --dsn "host=127.0.0.1 port=$VIGIL_PORT user=app dbname=shop sslmode=disable application_name=shop-web" \
    >"$TMP/app.log" 2>&1 &
APP_PID=$!
BASE=http://127.0.0.1:$APP_PORT
for _ in $(seq 100); do
    curl -fsS "$BASE/_counts" >/dev/null 2>&1 && break
    kill -0 "$APP_PID" 2>/dev/null || { cat "$TMP/app.log" >&2; die "app.py exited"; }
    sleep 0.1
done
phase() { curl -fsS "$BASE/_phase?name=$1" >/dev/null; }
PHASES=$TMP/phases.tsv
: >"$PHASES"
mark() { printf '%s\t%s\n' "$1" "$(date +%s.%N)" >>"$PHASES"; }

# --- normal phase ---------------------------------------------------------------
phase normal; sleep 0.2; mark normal
log "normal phase: $NORMAL benign requests"
"$PY" "$HERE/normal.py" "$BASE" "$NORMAL" >"$TMP/normal.log" 2>&1 &
CHILD_PID=$!
wait "$CHILD_PID" || { cat "$TMP/normal.log" >&2; die "normal traffic failed"; }
CHILD_PID=
cat "$TMP/normal.log" >&2
sleep 0.5

# --- sqlmap phase ---------------------------------------------------------------
SQLMAP_VERSION=$(sqlmap --version 2>/dev/null | head -1)
i=0
for target in $TARGETS; do
    i=$((i + 1))
    phase "sqlmap$i"; sleep 0.2; mark "sqlmap$i"
    log "sqlmap $SQLMAP_VERSION against /$target (--technique=$TECHNIQUE --level $LEVEL --risk $RISK --time-sec $TIME_SEC)"
    out=$TMP/sqlmap$i
    mkdir -p "$out"
    # shellcheck disable=SC2086
    TZ=UTC timeout "$SQLMAP_TIMEOUT" sqlmap -u "$BASE/$target" --batch --technique="$TECHNIQUE" \
        --dbms=PostgreSQL --level "$LEVEL" --risk "$RISK" --time-sec "$TIME_SEC" \
        --flush-session -v 3 --output-dir "$out" $SQLMAP_EXTRA >"$out/stdout.log" 2>&1 </dev/null &
    CHILD_PID=$!
    rc=0; wait "$CHILD_PID" || rc=$?
    CHILD_PID=
    echo "$rc" >"$out/rc"
    echo "$target" >"$out/target"
    log "sqlmap$i exit status $rc ($(grep -c . "$out/stdout.log") lines of output)"
    sleep 0.5
done
phase done; mark done
curl -fsS "$BASE/_counts" >"$TMP/app-counts.tsv"

# --- stop, verify, count --------------------------------------------------------
kill -TERM "$APP_PID"; wait "$APP_PID" 2>/dev/null || true; APP_PID=
kill -TERM "$VIGIL_PID"; wait "$VIGIL_PID" 2>/dev/null || true; VIGIL_PID=
log "vigil verify $AUDIT"
VERIFY_RC=0
"$VIGIL" verify --key-dir "$VDIR/data/keys" "$AUDIT" >"$TMP/verify.log" 2>&1 || VERIFY_RC=$?

python3 "$HERE/analyze.py" --audit "$AUDIT" --phases "$PHASES" --sql-log "$SQL_LOG" \
    --sqlmap "$TMP"/sqlmap* --app-counts "$TMP/app-counts.tsv" \
    --verify "$TMP/verify.log" --verify-rc "$VERIFY_RC" \
    --meta "PostgreSQL $PGVERSION; $("$VIGIL" --version) (commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$ROOT" diff --quiet -- crates 2>/dev/null || echo ", crates/ modified")); sqlmap $SQLMAP_VERSION; --technique=$TECHNIQUE --level $LEVEL --risk $RISK --time-sec $TIME_SEC $SQLMAP_EXTRA; normal requests $NORMAL" \
    | tee "$TMP/report.md"
