#!/usr/bin/env bash
# Memory per idle client connection through vigil.
#
# Usage: bench/idle.sh
#
#   CONNECTIONS=1000   idle client connections to open through vigil
#   PGBIN=/usr/lib/postgresql/15/bin   initdb, pg_ctl, postgres
#   VIGIL=target/release/vigil         the vigil binary; built with
#                `cargo build --release -p vigil` when missing or older than
#                the sources (a binary given in VIGIL is used as it is)
#   KEEP=1             keep the temporary directory
#   TMPDIR=/tmp        where the temporary directory goes
#
# Starts a throwaway PostgreSQL cluster (max_connections 1100) and vigil
# (statement coverage all, sealed audit log, json file sink) on free ports,
# reads vigil's resident memory (VmRSS in /proc/PID/status), opens
# CONNECTIONS client connections that each complete startup and
# authentication (until ReadyForQuery) and stay open and idle, reads VmRSS
# again and prints the difference per connection. Goal: at most 100 KiB.
# The clients are a small python3 script (standard library only) speaking
# the PostgreSQL protocol over raw sockets. When run as root, PostgreSQL
# runs as the user `postgres`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case ${1:-} in
    "") ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "idle.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac
CONNECTIONS=${CONNECTIONS:-1000}
KEEP=${KEEP:-0}
GOAL_KIB=100
NAME=idle.sh
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

ulimit -n 4096 || die "cannot raise the open file limit to 4096 (ulimit -n)"
[ "$CONNECTIONS" -ge 1 ] && [ "$CONNECTIONS" -le 1090 ] || die "CONNECTIONS must be 1 to 1090 (PostgreSQL runs with max_connections 1100)"
need_pg_tools
command -v python3 >/dev/null || die "python3 not found"
vigil_binary

TMP=$(bench_tmpdir idle)
VIGIL_PID=

cleanup() {
    set +e
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
while [ "$VIGIL_PORT" = "$PG_PORT" ]; do VIGIL_PORT=$(free_port); done

log "PostgreSQL: initdb in $TMP/pg, port $PG_PORT, max_connections 1100"
pg_start "$TMP" "$PG_PORT" <<EOF
max_connections = 1100
synchronous_commit = off
EOF

VDIR=$TMP/vigil
mkdir -m 700 "$VDIR"
cat >"$VDIR/vigil.toml" <<EOF
[service]
origin = "idle"
data_dir = "$VDIR/data"

[proxy]
listen = "127.0.0.1:$VIGIL_PORT"
upstream = "127.0.0.1:$PG_PORT"
coverage = "all"

[[sinks]]
name = "events"
type = "file"
path = "$VDIR/events.json"
format = "json"
min_severity = "info"
EOF
VIGIL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export VIGIL_MASTER_KEY
log "vigil: port $VIGIL_PORT"
"$VIGIL" serve -c "$VDIR/vigil.toml" >"$VDIR/stdout.log" 2>"$VDIR/stderr.log" &
VIGIL_PID=$!
wait_ready "$VIGIL_PORT" vigil

log "opening $CONNECTIONS idle connections through vigil"
echo "idle connections through vigil: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $("$VIGIL" --version); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}')"
python3 - "$VIGIL_PID" "$VIGIL_PORT" "$CONNECTIONS" "$GOAL_KIB" <<'EOF'
import socket, struct, sys, time

pid, port, n, goal = (int(a) for a in sys.argv[1:5])

def status(key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])  # kB
    raise SystemExit(f"{key} not in /proc/{pid}/status")

def recv_exact(s, k):
    buf = b""
    while len(buf) < k:
        chunk = s.recv(k - len(buf))
        if not chunk:
            raise SystemExit("connection closed during startup")
        buf += chunk
    return buf

def connect():
    """A session that completed startup and authentication: up to ReadyForQuery."""
    s = socket.create_connection(("127.0.0.1", port))
    params = b"user\0postgres\0database\0postgres\0application_name\0idle.sh\0\0"
    s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
    while True:
        kind, length = struct.unpack("!cI", recv_exact(s, 5))
        body = recv_exact(s, length - 4)
        if kind == b"E":
            raise SystemExit("server error during startup: " + body.decode(errors="replace"))
        if kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
            raise SystemExit("the server asked for a password; idle.sh needs trust authentication")
        if kind == b"Z":
            return s

def settle():
    time.sleep(2)

# One-time allocations (first session, worker threads) are not per connection.
for s in [connect() for _ in range(10)]:
    s.sendall(b"X\0\0\0\4")
    s.close()
settle()
before = status("VmRSS")
t0 = time.monotonic()
conns = [connect() for _ in range(n)]
opened = time.monotonic() - t0
settle()
after = status("VmRSS")
threads = status("Threads")
# Every session is still open: each answers a simple query.
for s in conns:
    q = b"SELECT 1\0"
    s.sendall(b"Q" + struct.pack("!I", 4 + len(q)) + q)
for s in conns:
    while True:
        kind, length = struct.unpack("!cI", recv_exact(s, 5))
        recv_exact(s, length - 4)
        if kind == b"Z":
            break
for s in conns:
    s.sendall(b"X\0\0\0\4")
    s.close()
settle()
closed = status("VmRSS")
per = (after - before) / n
rows = [
    ("vigil VmRSS before", f"{before} KiB"),
    (f"vigil VmRSS with {n} idle connections", f"{after} KiB (opened in {opened:.1f} s; {threads} threads)"),
    ("vigil VmRSS after closing them", f"{closed} KiB"),
    ("per idle connection", f"{per:.1f} KiB (goal <= {goal} KiB: {'met' if per <= goal else 'NOT met'})"),
]
width = max(len(k) for k, _ in rows) + 1
for k, v in rows:
    print(f"{k + ':':<{width}} {v}")
EOF
