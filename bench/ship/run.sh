#!/usr/bin/env bash
# Delivery throughput from the sealed audit log: vigil to rsyslog over syslog
# TCP and to NATS JetStream, beside rsyslog forwarding the same events from a
# file (imfile -> omfwd TCP) to the same kind of receiver.
#
# Usage: bench/ship/run.sh [--quick]
#
#   N=1000000    statement events sealed into the audit log   (--quick: 200000)
#   ROUNDS=3     rounds; each runs vigil->rsyslog, rsyslog->rsyslog,
#                vigil->NATS and the receiver's ceiling, in that order
#                                                              (--quick: 1)
#   BATCH=       records per batch of vigil's sinks (default: vigil's, 1000)
#   STATE_IN=    where vigil's delivery state (the cursor file, replaced and
#                fsynced after every batch) goes; default: beside the audit
#                log, on disk, as with `vigil serve`
#   RECEIVER_INPUT=imtcp   the receivers' TCP input: imtcp, or imptcp (rsyslog's
#                epoll-based plain TCP input, which costs the receiver less)
#   SHM=/dev/shm tmpfs for the receivers' output file and NATS's storage
#   TMPDIR=/tmp  where the audit log and the events file go (about 0.8 GB
#                per million events)
#   KEEP=1       keep both temporary directories (logs, configurations)
#   CARGO_TARGET_DIR   where cargo builds ship_bench (default: target/)
#
# Builds bench/src/bin/ship_bench.rs (release), seals N statement.executed
# events into an audit log and writes the same entries, formatted as vigil's
# syslog sink sends them, one per line, to events.syslog. Then, per run:
#
#   vigil->rsyslog    a fresh rsyslogd receiver (imtcp, or RECEIVER_INPUT,
#                     -> omfile on tmpfs);
#                     ship_bench deliver with the syslog TCP transport and the
#                     syslog format; timed until the receiver's file holds
#                     every entry (its size equals events.syslog's), and
#                     checked byte for byte against events.syslog
#   rsyslog->rsyslog  a fresh receiver as above and a fresh rsyslogd
#                     forwarder (imfile reading from the start of the file,
#                     omfwd TCP with octet-counted framing, a 2-million-message
#                     main queue); timed from hard-linking events.syslog into
#                     the directory imfile watches until the receiver's file
#                     is complete; checked the same way
#   vigil->NATS       ship_bench deliver with the NATS JetStream transport and
#                     the json format to a new stream (file storage on tmpfs)
#                     of one nats-server -js started for the whole run; timed
#                     until JetStream acknowledged the last entry; the stream's
#                     message count checked, then the stream deleted
#
# Each round ends with the receiver's ceiling: the same records, octet-counted
# in memory beforehand, written on one connection to a fresh receiver
# (memory->rsyslog; ship_bench blast), timed and checked the same way.
#
# Prints every run and the medians: events/s, MiB/s (bytes of the formatted
# records, without framing), CPU seconds of sender and receiver. Everything
# runs on free ports of 127.0.0.1 in temporary directories removed on exit.
# Needs rsyslogd (with imfile and imtcp), nats-server, python3 and cargo;
# run as root, it installs rsyslog and nats-server with apt-get when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

QUICK=0
for arg in "$@"; do
    case $arg in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    N=${N:-200000}
    ROUNDS=${ROUNDS:-1}
fi
N=${N:-1000000}
ROUNDS=${ROUNDS:-3}
BATCH=${BATCH:-}
STATE_IN=${STATE_IN:-}
SHM=${SHM:-/dev/shm}
RECEIVER_INPUT=${RECEIVER_INPUT:-imtcp}
KEEP=${KEEP:-0}
TIMEOUT=600
GOAL_EPS=250000
GOAL_RATIO=1.5

NAME=ship/run.sh
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"

# --- tools ---------------------------------------------------------------------
RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
missing=()
[ -x "$RSYSLOGD" ] || missing+=(rsyslog)
[ -x "$NATS_SERVER" ] || missing+=(nats-server)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing ${missing[*]}"
        apt-get install -y "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
        RSYSLOGD=$(command -v rsyslogd || echo /usr/sbin/rsyslogd)
        NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
    else
        die "not installed: ${missing[*]} (Debian: apt-get install ${missing[*]})"
    fi
fi
command -v python3 >/dev/null || die "python3 not found"
[ -d "$SHM" ] && [ -w "$SHM" ] || die "SHM=$SHM is not a writable directory"
case $RECEIVER_INPUT in
    imtcp|imptcp) ;;
    *) die "RECEIVER_INPUT=$RECEIVER_INPUT: give imtcp or imptcp" ;;
esac

# --- ship_bench ----------------------------------------------------------------
log "building ship_bench: cargo build --release -p vigil-bench --bin ship_bench"
(cd "$ROOT" && cargo build --release -q -p vigil-bench --bin ship_bench) || die "cargo build failed"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/ship_bench
[ -x "$BIN" ] || die "$BIN not found after the build"

# --- temporary directories and cleanup -------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/vigil-ship.XXXXXX")
FAST=$(mktemp -d "$SHM/vigil-ship.XXXXXX")
RECV_PID= FWD_PID= NATS_PID= BENCH_PID=


cleanup() {
    set +e
    stop_pid "$BENCH_PID"
    stop_pid "$FWD_PID"
    stop_pid "$RECV_PID"
    stop_pid "$NATS_PID"
    if [ "$KEEP" = 1 ]; then log "kept $TMP and $FAST"; else rm -rf "$TMP" "$FAST"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


cpu_ticks() { # pid: user + system clock ticks of the whole process
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
TICK=$(getconf CLK_TCK)
ticks_to_s() { awk -v t="$1" -v hz="$TICK" 'BEGIN { printf "%.2f", t / hz }'; }

# Waits until something accepts connections on 127.0.0.1:$1 (an empty
# connection: rsyslog's imtcp receives no message from it).
wait_port() {
    for _ in $(seq 300); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    return 1
}

# A value from the last `result k=v ...` line of ship_bench's output.
field() { sed -n 's/^result .*\b'"$2"'=\([^ ]*\).*/\1/p' "$1" | tail -1; }

# --- the sealed log and the events file ------------------------------------------
LOGDIR=$TMP/log
log "sealing $N statement events into $LOGDIR/audit"
"$BIN" make-log --dir "$LOGDIR" --count "$N" >"$TMP/make-log.out" 2>"$TMP/make-log.err" \
    || { cat "$TMP/make-log.err" >&2; die "make-log failed"; }
sed 's/^make-log: //' "$TMP/make-log.err" >&2
# shellcheck disable=SC1091
. "$LOGDIR/log.env"
# Both are read from the page cache in every run.
cat "$LOGDIR"/audit/audit-*.log "$LOGDIR/events.syslog" >/dev/null

# --- receivers and the forwarder --------------------------------------------------
# A fresh rsyslogd receiving syslog over TCP ($RECEIVER_INPUT) on a free port
# and writing each message as received (%rawmsg%, without the octet count)
# plus LF to $RECV_OUT on tmpfs, in the order received.
start_receiver() { # name
    local dir=$TMP/$1
    mkdir -p "$dir/work"
    RECV_OUT=$FAST/$1.log
    RECV_PORT=$(free_port)
    cat >"$dir/receiver.conf" <<EOF
# bench/ship/run.sh: receiver
global(workDirectory="$dir/work" maxMessageSize="64k")
# One worker: with more, batches may reach the file out of order.
main_queue(queue.workerThreads="1")
module(load="$RECEIVER_INPUT")
template(name="vigil_raw" type="string" string="%rawmsg%\\n")
ruleset(name="receive") {
  action(type="omfile" file="$RECV_OUT" template="vigil_raw" ioBufferSize="256k")
}
input(type="$RECEIVER_INPUT" address="127.0.0.1" port="$RECV_PORT" ruleset="receive")
EOF
    "$RSYSLOGD" -n -f "$dir/receiver.conf" -i "$dir/receiver.pid" >"$dir/receiver.stderr" 2>&1 &
    RECV_PID=$!
    wait_port "$RECV_PORT" || { cat "$dir/receiver.stderr" >&2; die "the rsyslog receiver did not listen on $RECV_PORT"; }
}

# A fresh rsyslogd forwarding every line of a file that appears in
# $FWD_WATCH to the receiver: imfile (inotify, from the start of the file),
# omfwd over TCP with octet-counted framing, the line unchanged (%rawmsg%).
start_forwarder() { # name
    local dir=$TMP/$1
    FWD_WATCH=$dir/watch
    mkdir -p "$dir/fwd-work" "$FWD_WATCH"
    cat >"$dir/forwarder.conf" <<EOF
# bench/ship/run.sh: forwarder
global(workDirectory="$dir/fwd-work" maxMessageSize="64k")
main_queue(queue.type="LinkedList" queue.size="2000000" queue.dequeueBatchSize="1024"
           queue.workerThreads="1")
module(load="imfile" mode="inotify")
template(name="vigil_raw" type="string" string="%rawmsg%")
ruleset(name="forward") {
  action(type="omfwd" target="127.0.0.1" port="$RECV_PORT" protocol="tcp"
         tcp_framing="octet-counted" template="vigil_raw")
}
input(type="imfile" file="$FWD_WATCH/*.syslog" tag="vigil" freshStartTail="off"
      ruleset="forward")
EOF
    "$RSYSLOGD" -n -f "$dir/forwarder.conf" -i "$dir/forwarder.pid" >"$dir/forwarder.stderr" 2>&1 &
    FWD_PID=$!
    # Ready once imfile's input thread runs; then give it time to watch.
    local ready=0
    for _ in $(seq 200); do
        if grep -qs '^in:imfile' /proc/"$FWD_PID"/task/*/comm; then ready=1; break; fi
        sleep 0.05
    done
    [ "$ready" = 1 ] || { cat "$dir/forwarder.stderr" >&2; die "the rsyslog forwarder did not start imfile"; }
    sleep 0.5
}

# The receiver's file must hold exactly the events file: every entry, once,
# in order.
check_output() { # name
    if ! cmp -s "$RECV_OUT" "$LOGDIR/events.syslog"; then
        die "$1: the receiver's file differs from events.syslog ($(wc -l <"$RECV_OUT") lines, expected $ENTRIES)"
    fi
}

NATS_PORT=$(free_port)
log "nats-server -js on 127.0.0.1:$NATS_PORT, storage in $FAST/nats"
"$NATS_SERVER" -js -sd "$FAST/nats" -a 127.0.0.1 -p "$NATS_PORT" -l "$TMP/nats-server.log" &
NATS_PID=$!
for _ in $(seq 300); do grep -qs 'Server is ready' "$TMP/nats-server.log" && break; sleep 0.05; done
grep -qs 'Server is ready' "$TMP/nats-server.log" || { cat "$TMP/nats-server.log" >&2; die "nats-server did not start"; }

DELIVER_ARGS=(--dir "$LOGDIR" --count "$LAST_SEQ" --timeout "$TIMEOUT")
[ -n "$BATCH" ] && DELIVER_ARGS+=(--batch "$BATCH")
[ -n "$STATE_IN" ] && DELIVER_ARGS+=(--state-in "$STATE_IN")

# --- runs ------------------------------------------------------------------------
RESULTS=$TMP/results.tsv
printf 'round\ttarget\tseconds\tevents\tbytes\tsender_cpu_s\treceiver_cpu_s\n' >"$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
log "start: $ROUNDS round(s) of vigil->rsyslog, rsyslog->rsyslog, vigil->NATS; $ENTRIES entries each; load average $LOAD_START"
# run_bench NAME ARGS...: ship_bench ARGS, its output in $TMP/NAME.out; dies
# with its errors when it fails.
run_bench() {
    local name=$1; shift
    "$BIN" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
    BENCH_PID=$!
    wait "$BENCH_PID" || {
        cat "$TMP/$name.err" >&2
        [ -f "$TMP/$name/forwarder.stderr" ] && cat "$TMP/$name/forwarder.stderr" >&2
        die "$name failed"
    }
    BENCH_PID=
}

# record TARGET NAME BYTES SENDER_CPU RECEIVER_CPU [NOTE]: one row of
# results from $TMP/NAME.out, and a line of progress.
record() {
    local secs
    secs=$(field "$TMP/$2.out" receiver_s)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$1" "$secs" "$ENTRIES" "$3" "$4" "$5" >>"$RESULTS"
    log "round $round/$ROUNDS $1${6:+ $6}: $secs s ($(awk -v n="$ENTRIES" -v s="$secs" 'BEGIN { printf "%.0f", n / s }') events/s)"
}

# to_receiver NAME TARGET [NOTE] -- ARGS...: ship_bench ARGS sends to a fresh
# receiver until its file is complete; checked byte for byte and recorded.
to_receiver() {
    local name=$1 target=$2 note=$3 recv_cpu
    shift 4
    start_receiver "$name"
    run_bench "$name" "$@" --address "127.0.0.1:$RECV_PORT" \
        --output "$RECV_OUT" --bytes "$SYSLOG_FILE_BYTES"
    recv_cpu=$(ticks_to_s "$(cpu_ticks "$RECV_PID")")
    stop_pid "$RECV_PID"; RECV_PID=
    check_output "$name"
    rm -f "$RECV_OUT"
    record "$target" "$name" "$SYSLOG_BYTES" "$(field "$TMP/$name.out" cpu_s)" "$recv_cpu" "$note"
}

for round in $(seq "$ROUNDS"); do
    to_receiver "r$round-vigil-syslog" "vigil->rsyslog" "" -- \
        deliver "${DELIVER_ARGS[@]}" --sink syslog-tcp

    # rsyslog -> rsyslog
    name=r$round-rsyslog
    start_receiver "$name"
    start_forwarder "$name"
    fwd0=$(cpu_ticks "$FWD_PID")
    run_bench "$name" feed --from "$LOGDIR/events.syslog" --to "$FWD_WATCH/events.syslog" \
        --output "$RECV_OUT" --bytes "$SYSLOG_FILE_BYTES" --timeout "$TIMEOUT"
    fwd_cpu=$(ticks_to_s $(( $(cpu_ticks "$FWD_PID") - fwd0 )))
    recv_cpu=$(ticks_to_s "$(cpu_ticks "$RECV_PID")")
    stop_pid "$FWD_PID"; FWD_PID=
    stop_pid "$RECV_PID"; RECV_PID=
    check_output "$name"
    rm -f "$RECV_OUT" "$FWD_WATCH/events.syslog"
    record "rsyslog->rsyslog" "$name" "$SYSLOG_BYTES" "$fwd_cpu" "$recv_cpu"

    # vigil -> NATS JetStream
    name=r$round-vigil-nats
    nats0=$(cpu_ticks "$NATS_PID")
    run_bench "$name" deliver "${DELIVER_ARGS[@]}" --sink nats --address "127.0.0.1:$NATS_PORT" \
        --subject "bench.round$round" --stream "BENCH_ROUND$round" --delete-stream
    nats_cpu=$(ticks_to_s $(( $(cpu_ticks "$NATS_PID") - nats0 )))
    stored=$(field "$TMP/$name.out" stream_messages)
    [ "$stored" = "$ENTRIES" ] || die "$name: the stream held $stored messages, expected $ENTRIES"
    record "vigil->NATS" "$name" "$JSON_BYTES" "$(field "$TMP/$name.out" cpu_s)" "$nats_cpu"

    # The receiver's ceiling: the same records, pre-framed in memory,
    # written on one connection by a sender that costs next to nothing.
    to_receiver "r$round-ceiling" "memory->rsyslog" "(receiver ceiling)" -- \
        blast --from "$LOGDIR/events.syslog" --timeout "$TIMEOUT"
done
END=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ------------------------------------------------------------------------
echo
echo "Delivery from the sealed audit log: vigil -> rsyslog (syslog TCP), rsyslog -> rsyslog (imfile -> omfwd TCP), vigil -> NATS JetStream"
echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1); $("$RSYSLOGD" -v | head -1 | awk '{print "rsyslogd", $2}'), $("$NATS_SERVER" --version)"
echo "log: $STATEMENTS statements, $ENTRIES entries (checkpoints included), $AUDIT_BYTES bytes sealed; records: syslog $SYSLOG_BYTES bytes ($(( SYSLOG_BYTES / ENTRIES )) per entry), json $JSON_BYTES bytes ($(( JSON_BYTES / ENTRIES )) per entry)"
echo "receivers: rsyslogd, $RECEIVER_INPUT -> omfile on tmpfs; vigil sink batch: ${BATCH:-1000 (default)}; delivery state: ${STATE_IN:-beside the audit log, in ${TMPDIR:-/tmp}}"
echo "runs: $START to $END; $ROUNDS round(s); load average at start $LOAD_START, at end $LOAD_END"
python3 - "$RESULTS" "$GOAL_EPS" "$GOAL_RATIO" <<'EOF'
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
goal_eps, goal_ratio = float(sys.argv[2]), float(sys.argv[3])
targets = ["vigil->rsyslog", "rsyslog->rsyslog", "vigil->NATS", "memory->rsyslog"]
rounds = sorted({int(r["round"]) for r in rows})
get = {(int(r["round"]), r["target"]): r for r in rows}

def eps(r):
    return int(r["events"]) / float(r["seconds"])

def mibs(r):
    return int(r["bytes"]) / float(r["seconds"]) / (1 << 20)

def table(title, header, lines):
    print()
    print(title)
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for line in lines:
        print("| " + " | ".join(line) + " |")

header = ["run", "seconds", "events/s", "MiB/s", "sender CPU s", "receiver CPU s"]
lines = []
for n in rounds:
    for t in targets:
        r = get[(n, t)]
        lines.append([f"{t} (round {n})", f"{float(r['seconds']):.3f}", f"{eps(r):,.0f}",
                      f"{mibs(r):.1f}", r["sender_cpu_s"] or "-", r["receiver_cpu_s"]])
table("Every run (MiB/s: bytes of the formatted records, syslog or json, without framing)",
      header, lines)

def med(t, f):
    return statistics.median(f(get[(n, t)]) for n in rounds)

lines = []
for t in targets:
    lines.append([t, f"{med(t, lambda r: float(r['seconds'])):.3f}", f"{med(t, eps):,.0f}",
                  f"{med(t, mibs):.1f}",
                  f"{med(t, lambda r: float(r['sender_cpu_s'])):.2f}" if get[(rounds[0], t)]["sender_cpu_s"] else "-",
                  f"{med(t, lambda r: float(r['receiver_cpu_s'])):.2f}"])
table(f"Median over {len(rounds)} round(s)", header, lines)

v, b, j = med(targets[0], eps), med(targets[1], eps), med(targets[2], eps)
ratios = [eps(get[(n, targets[0])]) / eps(get[(n, targets[1])]) for n in rounds]
print()
print(f"vigil/rsyslog (medians): {v / b:.2f}; per round: " + ", ".join(f"{x:.2f}" for x in ratios))
c = med(targets[3], eps)
print(f"vigil->NATS / vigil->rsyslog (medians): {j / v:.2f}")
print(f"vigil->rsyslog / receiver ceiling (memory->rsyslog, medians): {v / c:.2f}")
print(f"goal >= {goal_eps:,.0f} events/s over syslog TCP: {'met' if v >= goal_eps else 'NOT met'} ({v:,.0f})")
print(f"goal >= {goal_ratio} x rsyslog's forwarding rate: {'met' if v / b >= goal_ratio else 'NOT met'} ({v / b:.2f} x)")
EOF
