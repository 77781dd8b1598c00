#!/usr/bin/env bash
# pgbench against PostgreSQL directly, through PgBouncer (session mode) and
# through vigil with every statement logged and sealed into its audit log.
#
# Usage: bench/pgbench.sh [--quick]
#
#   DURATION=10  seconds per pgbench run        (--quick: 3)
#   CLIENTS=4    pgbench clients (-c)
#   THREADS=     pgbench threads (-j); default: number of CPUs, at most CLIENTS
#   ROUNDS=3     rounds; each round runs every workload against every target,
#                alternating direct, pgbouncer, vigil    (--quick: 1)
#   SCALE=10     pgbench scale factor (-i -s)
#   WARMUP=2     seconds of pgbench -S per target before measuring (0: none)
#                (--quick: 1)
#   PGBIN=/usr/lib/postgresql/15/bin   initdb, pg_ctl, postgres
#   VIGIL=target/release/vigil         the vigil binary; built with
#                `cargo build --release -p vigil` when missing or older than
#                the sources (a binary given in VIGIL is used as it is)
#   SINK=none    vigil writes its events only to the sealed audit log;
#                SINK=file also writes every event to a JSON file sink
#   KEEP=1       keep the temporary directory (logs, audit log, events)
#   TMPDIR=/tmp  where the temporary directory goes; the default run writes
#                about 4 GB there (vigil's audit log and event file)
#
# Starts a throwaway PostgreSQL cluster, PgBouncer and vigil on free ports
# under a temporary directory and removes everything on exit. Needs
# PostgreSQL's server binaries, pgbench, psql, PgBouncer and python3. When
# run as root, PostgreSQL and PgBouncer run as the user `postgres`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "pgbench.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    DURATION=${DURATION:-3}
    ROUNDS=${ROUNDS:-1}
    WARMUP=${WARMUP:-1}
fi
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
ROUNDS=${ROUNDS:-3}
SCALE=${SCALE:-10}
WARMUP=${WARMUP:-2}
NCPU=$(nproc)
THREADS=${THREADS:-$(( NCPU < CLIENTS ? NCPU : CLIENTS ))}
KEEP=${KEEP:-0}
SINK=${SINK:-none}

NAME=pgbench.sh
# shellcheck source=lib.sh
. "$ROOT/bench/lib.sh"

need_pg_tools
command -v pgbench >/dev/null || die "pgbench not found (Debian: postgresql-contrib or postgresql-client)"
command -v python3 >/dev/null || die "python3 not found"
if ! command -v pgbouncer >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing pgbouncer"
        apt-get install -y pgbouncer >/dev/null || die "apt-get install pgbouncer failed"
    else
        die "pgbouncer not found; install it (Debian: apt-get install pgbouncer)"
    fi
fi

# --- vigil binary ----------------------------------------------------------------
vigil_binary

cpu_ticks() { # pid: user + system clock ticks of the whole process
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

relay_ticks() { # pid: user + system clock ticks of the threads named like the process (vigil's relay)
    local name total=0 t
    name=$(cat "/proc/$1/comm")
    for t in /proc/"$1"/task/*; do
        [ "$(cat "$t/comm" 2>/dev/null)" = "$name" ] || continue
        total=$(( total + $(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null || echo 0) ))
    done
    echo "$total"
}

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# Waits until the event file has not grown for half a second (the sinks
# write asynchronously, behind the audit log) and sets LAG to the seconds
# between $1 (date +%s.%N when pgbench ended) and its last growth.
settle_events() {
    local size last_size=-1 last_change=$1 still=0 now
    for _ in $(seq 1200); do
        size=$(file_size "$EVENTS")
        now=$(date +%s.%N)
        if [ "$size" = "$last_size" ]; then
            still=$((still + 1))
            [ "$still" -ge 5 ] && break
        else
            [ "$last_size" = -1 ] || last_change=$now
            still=0
            last_size=$size
        fi
        sleep 0.1
    done
    LAG=$(awk -v a="$1" -v b="$last_change" 'BEGIN { d = b - a; if (d < 0) d = 0; printf "%.1f", d }')
}

# Lines, and statement.executed lines, written to the event file from byte $1 on.
new_events() {
    tail -c +$(( $1 + 1 )) "$EVENTS" | wc -l
}
new_statements() {
    tail -c +$(( $1 + 1 )) "$EVENTS" | grep -c '"name":"statement.executed"' || true
}

# --- temporary directory and cleanup -----------------------------------------
TMP=$(bench_tmpdir pgbench)
VIGIL_PID=
BOUNCER_PID=
PGBENCH_PID=

cleanup() {
    set +e
    [ -n "$PGBENCH_PID" ] && kill -TERM "$PGBENCH_PID" 2>/dev/null && wait "$PGBENCH_PID" 2>/dev/null
    if [ -n "$VIGIL_PID" ] && kill -0 "$VIGIL_PID" 2>/dev/null; then
        kill -TERM "$VIGIL_PID"; wait "$VIGIL_PID" 2>/dev/null
    fi
    if [ -n "$BOUNCER_PID" ] && kill -0 "$BOUNCER_PID" 2>/dev/null; then
        kill -TERM "$BOUNCER_PID"
        for _ in $(seq 50); do kill -0 "$BOUNCER_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    pg_stop "$TMP"
    if [ "$KEEP" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PG_PORT=$(free_port)
BOUNCER_PORT=$(free_port)
VIGIL_PORT=$(free_port)
while [ "$BOUNCER_PORT" = "$PG_PORT" ]; do BOUNCER_PORT=$(free_port); done
while [ "$VIGIL_PORT" = "$PG_PORT" ] || [ "$VIGIL_PORT" = "$BOUNCER_PORT" ]; do VIGIL_PORT=$(free_port); done

# --- PostgreSQL ---------------------------------------------------------------
log "PostgreSQL: initdb in $TMP/pg, port $PG_PORT"
pg_start "$TMP" "$PG_PORT" <<EOF
max_connections = 100
synchronous_commit = off
EOF
export PGUSER=postgres PGDATABASE=postgres PGSSLMODE=disable PGHOST=127.0.0.1
log "pgbench -i -s $SCALE"
pgbench -i -q -s "$SCALE" -p "$PG_PORT" >"$TMP/pgbench-init.log" 2>&1 \
    || { cat "$TMP/pgbench-init.log" >&2; die "pgbench -i failed"; }
psql -q -p "$PG_PORT" -c 'CHECKPOINT' >/dev/null

# --- PgBouncer ----------------------------------------------------------------
echo '"postgres" ""' >"$TMP/userlist.txt"
cat >"$TMP/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $TMP/userlist.txt
pool_mode = session
default_pool_size = 20
max_client_conn = 200
logfile = $TMP/pgbouncer.log
pidfile = $TMP/pgbouncer.pid
EOF
[ "$(id -u)" = 0 ] && chown postgres: "$TMP/userlist.txt" "$TMP/pgbouncer.ini"
log "PgBouncer $(pgbouncer --version | head -1 | awk '{print $2}'): port $BOUNCER_PORT, session mode"
as_pg pgbouncer -d "$TMP/pgbouncer.ini" || die "PgBouncer did not start (see $TMP/pgbouncer.log)"
for _ in $(seq 50); do [ -s "$TMP/pgbouncer.pid" ] && break; sleep 0.1; done
BOUNCER_PID=$(cat "$TMP/pgbouncer.pid")
wait_ready "$BOUNCER_PORT" PgBouncer

# --- vigil --------------------------------------------------------------------
VDIR=$TMP/vigil
mkdir -m 700 "$VDIR"
if [ "$SINK" = file ]; then
    # Every event also goes to a JSON file, besides the audit log.
    EVENTS=$VDIR/events.json
    SINKS=$(printf '[[sinks]]\nname = "events"\ntype = "file"\npath = "%s"\nformat = "json"\nmin_severity = "info"\n' "$EVENTS")
else
    # Events go only to the sealed audit log, kept in one segment so that
    # the runs can be counted in it.
    EVENTS=$VDIR/data/audit/audit-00000000000000000001.log
    SINKS='sinks = []'
fi
cat >"$VDIR/vigil.toml" <<EOF
$SINKS

[service]
origin = "pgbench"
data_dir = "$VDIR/data"

[proxy]
listen = "127.0.0.1:$VIGIL_PORT"
upstream = "127.0.0.1:$PG_PORT"
coverage = "all"

[audit]
dir = "$VDIR/data/audit"
key_dir = "$VDIR/data/keys"
segment_max_mb = 65536
EOF
VIGIL_MASTER_KEY=$(head -c 32 /dev/urandom | base64)
export VIGIL_MASTER_KEY
"$VIGIL" config check "$VDIR/vigil.toml" >/dev/null || die "vigil config check failed"
log "vigil: port $VIGIL_PORT, coverage all, sealed audit log in $VDIR/data/audit, events counted in $EVENTS"
"$VIGIL" serve -c "$VDIR/vigil.toml" >"$VDIR/stdout.log" 2>"$VDIR/stderr.log" &
VIGIL_PID=$!
wait_ready "$VIGIL_PORT" vigil

# --- runs ---------------------------------------------------------------------
declare -A PORT=([direct]=$PG_PORT [pgbouncer]=$BOUNCER_PORT [vigil]=$VIGIL_PORT)
declare -A PROC=([pgbouncer]=$BOUNCER_PID [vigil]=$VIGIL_PID)
TARGETS=(direct pgbouncer vigil)
WORKLOADS=(select-simple select-extended select-prepared tpcb-simple)
declare -A ARGS=(
    [select-simple]="-S -M simple"
    [select-extended]="-S -M extended"
    [select-prepared]="-S -M prepared"
    [tpcb-simple]="-M simple"
)
# Statements per transaction: -S is one SELECT; TPC-B is BEGIN, three
# UPDATEs, a SELECT, an INSERT and END.
declare -A STMTS=([select-simple]=1 [select-extended]=1 [select-prepared]=1 [tpcb-simple]=7)
RESULTS=$TMP/results.tsv
printf 'round\tworkload\ttarget\ttps\tlatency_ms\ttxns\tfailed\tproxy_cpu_s\trelay_cpu_s\tevents\tstatements\texpected\tlag_s\n' >"$RESULTS"
TICK=$(getconf CLK_TCK)

if [ "$WARMUP" != 0 ]; then
    log "warm-up: pgbench -S for ${WARMUP}s per target"
    for t in "${TARGETS[@]}"; do
        pgbench -n -S -c "$CLIENTS" -j "$THREADS" -T "$WARMUP" -p "${PORT[$t]}" >/dev/null 2>&1 \
            || die "warm-up against $t failed"
    done
fi

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
log "start: ${ROUNDS} rounds x ${#WORKLOADS[@]} workloads x ${#TARGETS[@]} targets x ${DURATION}s, -c $CLIENTS -j $THREADS; load average $LOAD_START"
for round in $(seq "$ROUNDS"); do
    for w in "${WORKLOADS[@]}"; do
        for t in "${TARGETS[@]}"; do
            out=$TMP/run-$round-$w-$t.log
            off=0 cpu0=0
            if [ "$t" = vigil ]; then
                settle_events "$(date +%s.%N)"
                off=$(file_size "$EVENTS")
            fi
            relay0=0
            [ -n "${PROC[$t]:-}" ] && cpu0=$(cpu_ticks "${PROC[$t]}") && relay0=$(relay_ticks "${PROC[$t]}")
            # shellcheck disable=SC2086
            # In the background, so that a signal to this script ends the run at once.
            pgbench ${ARGS[$w]} -c "$CLIENTS" -j "$THREADS" -T "$DURATION" -p "${PORT[$t]}" >"$out" 2>&1 &
            PGBENCH_PID=$!
            wait "$PGBENCH_PID" || { cat "$out" >&2; die "pgbench $w against $t failed"; }
            PGBENCH_PID=
            ended=$(date +%s.%N)
            ev= st= exp= lag=
            if [ "$t" = vigil ]; then
                # vigil's CPU time includes writing out what is still queued.
                settle_events "$ended"
                lag=$LAG
            fi
            cpu= relay=
            if [ -n "${PROC[$t]:-}" ]; then
                cpu=$(awk -v a="$cpu0" -v b="$(cpu_ticks "${PROC[$t]}")" -v hz="$TICK" 'BEGIN { printf "%.2f", (b - a) / hz }')
                relay=$(awk -v a="$relay0" -v b="$(relay_ticks "${PROC[$t]}")" -v hz="$TICK" 'BEGIN { printf "%.2f", (b - a) / hz }')
            fi
            tps=$(awk '/^tps = / { print $3; exit }' "$out")
            lat=$(awk '/^latency average = / { print $4; exit }' "$out")
            txns=$(awk -F': ' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1]; exit }' "$out")
            failed=$(awk -F': ' '/^number of failed transactions/ { split($2, a, " "); print a[1]; exit }' "$out")
            [ -n "$tps" ] && [ -n "$lat" ] || { cat "$out" >&2; die "cannot parse pgbench output ($w, $t)"; }
            if [ "$t" = vigil ]; then
                ev=$(new_events "$off")
                st=$(new_statements "$off")
                exp=$(( txns * STMTS[$w] ))
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
                "$round" "$w" "$t" "$tps" "$lat" "$txns" "${failed:-0}" "$cpu" "$relay" "$ev" "$st" "$exp" "$lag" >>"$RESULTS"
            log "round $round/$ROUNDS $w $t: tps $tps, latency $lat ms"
        done
    done
done
END=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- vigil's audit log ----------------------------------------------------------
log "stopping vigil (SIGTERM) and verifying its audit log"
kill -TERM "$VIGIL_PID"
wait "$VIGIL_PID" || die "vigil exited with status $? on SIGTERM (see $VDIR/stderr.log)"
VIGIL_PID=
EVENT_LINES=$(new_events 0)
STATEMENT_LINES=$(new_statements 0)
AUDIT_LINES=$(cat "$VDIR"/data/audit/audit-*.log | wc -l)
AUDIT_BYTES=$(cat "$VDIR"/data/audit/audit-*.log | wc -c)
set +e
VERIFY_OUT=$("$VIGIL" verify "$VDIR/data/audit" --key-dir "$VDIR/data/keys" 2>&1)
VERIFY_RC=$?
set -e

# --- report ---------------------------------------------------------------------
echo
if [ "$SINK" = file ]; then LOGGING="sealed audit log + json file sink"; else LOGGING="sealed audit log only"; fi
echo "pgbench: direct, PgBouncer (session mode), vigil (coverage all, $LOGGING)"
echo "machine: $NCPU CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'), $(pgbouncer --version | head -1), $("$VIGIL" --version)"
echo "runs: $START to $END; ${DURATION}s each, -c $CLIENTS -j $THREADS, scale $SCALE, $ROUNDS round(s); load average at start $LOAD_START, at end $LOAD_END"
python3 - "$RESULTS" <<'EOF'
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
workloads = list(dict.fromkeys(r["workload"] for r in rows))
targets = ["direct", "pgbouncer", "vigil"]
rounds = sorted({int(r["round"]) for r in rows})
get = {(int(r["round"]), r["workload"], r["target"]): r for r in rows}

def table(title, header, lines):
    print()
    print(title)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for line in lines:
        print("| " + " | ".join(line) + " |")

def med(w, t, key):
    return statistics.median(float(get[(n, w, t)][key]) for n in rounds)

header = ["workload", "direct tps", "pgbouncer tps", "vigil tps",
          "vigil/pgbouncer tps", "vigil/pgbouncer latency"]
lines = []
for n in rounds:
    for w in workloads:
        d, b, v = (get[(n, w, t)] for t in targets)
        lines.append([f"{w} (round {n})", f"{float(d['tps']):.0f}", f"{float(b['tps']):.0f}",
                      f"{float(v['tps']):.0f}",
                      f"{float(v['tps']) / float(b['tps']):.3f}",
                      f"{float(v['latency_ms']) / float(b['latency_ms']):.3f}"])
table("Every run (tps without initial connection time; latency = pgbench's average)", header, lines)

lines = []
for w in workloads:
    tps = [med(w, t, "tps") for t in targets]
    lat = [med(w, t, "latency_ms") for t in targets]
    lines.append([w] + [f"{x:.0f}" for x in tps] + [f"{tps[2] / tps[1]:.3f}", f"{lat[2] / lat[1]:.3f}"])
table(f"Median over {len(rounds)} round(s)", header, lines)

lines = []
for w in workloads:
    lat = [med(w, t, "latency_ms") for t in targets]
    cpu = []
    for t, key in (("pgbouncer", "proxy_cpu_s"), ("vigil", "proxy_cpu_s"), ("vigil", "relay_cpu_s")):
        per = [float(get[(n, w, t)][key]) * 1e6 / max(1, int(get[(n, w, t)]["txns"])) for n in rounds]
        cpu.append(f"{statistics.median(per):.1f}")
    lines.append([w] + [f"{x:.3f}" for x in lat] + cpu)
table(f"Median latency (ms) and proxy CPU time per transaction (µs, user + system; vigil's relay "
      "thread is part of its total, the rest formats, seals and syncs the audit log)",
      ["workload", "direct ms", "pgbouncer ms", "vigil ms", "pgbouncer CPU µs/txn", "vigil CPU µs/txn",
       "vigil relay thread µs/txn"], lines)

lines = []
for n in rounds:
    for w in workloads:
        v = get[(n, w, "vigil")]
        lines.append([f"{w} (round {n})", v["txns"], v["expected"], v["statements"], v["events"],
                      v["failed"], v["lag_s"]])
table("vigil's logging: statements expected (transactions x statements per transaction), events written, "
      "and how long the event file kept growing after pgbench ended",
      ["workload", "transactions", "statements expected", "statement.executed events", "all events",
       "failed txns", "drain s"],
      lines)
EOF
echo
echo "vigil events counted in $(basename "$EVENTS"): $EVENT_LINES events, of which $STATEMENT_LINES statement.executed"
echo "vigil audit log: $AUDIT_LINES sealed entries, $AUDIT_BYTES bytes"
echo "vigil verify: exit $VERIFY_RC"
echo "$VERIFY_OUT" | sed 's/^/  /'
[ "$VERIFY_RC" = 0 ] || die "vigil verify failed"
