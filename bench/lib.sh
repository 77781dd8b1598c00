# Shared by the benchmark scripts: messages, free ports, the vigil binary and
# a throwaway PostgreSQL cluster. Source it with NAME set to the script's name
# (used in messages) and ROOT to the workspace root:
#
#   NAME=anomaly/run.sh ROOT=...; . "$ROOT/bench/lib.sh"
#
# PGBIN (default /usr/lib/postgresql/15/bin) names PostgreSQL's server
# binaries; VIGIL, when set, is the vigil binary to use as it is.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

die() { echo "$NAME: $*" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Runs a command as the user that owns the cluster: `postgres` when run as
# root (initdb and postgres refuse root), else the caller.
if [ "$(id -u)" = 0 ]; then
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

# wait_ready PORT NAME: until a PostgreSQL (or vigil in front of one)
# accepts connections on 127.0.0.1:PORT, at most 30 s.
wait_ready() {
    for _ in $(seq 300); do
        pg_isready -q -h 127.0.0.1 -p "$1" -U postgres -d postgres && return 0
        sleep 0.1
    done
    die "$2 did not become ready on port $1"
}

# need_pg_tools: initdb, pg_ctl, psql and pg_isready are there, and the user
# postgres when run as root.
need_pg_tools() {
    for tool in "$PGBIN/initdb" "$PGBIN/pg_ctl"; do
        [ -x "$tool" ] || die "$tool not found; install PostgreSQL's server package or set PGBIN"
    done
    command -v psql >/dev/null || die "psql not found"
    command -v pg_isready >/dev/null || die "pg_isready not found"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the user postgres (PostgreSQL refuses root)"
    fi
}

# vigil_binary: sets VIGIL to target/release/vigil, built with `cargo build
# --release -p vigil` when missing or older than the sources; a VIGIL given
# by the caller is used as it is.
vigil_binary() {
    if [ -n "${VIGIL:-}" ]; then
        [ -x "$VIGIL" ] || die "VIGIL=$VIGIL is not executable"
        return
    fi
    VIGIL=${CARGO_TARGET_DIR:-$ROOT/target}/release/vigil
    local stale=1
    if [ -x "$VIGIL" ]; then
        stale=$(find "$ROOT/crates" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
            \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) \
            -newer "$VIGIL" -print -quit | wc -l)
    fi
    if [ "$stale" != 0 ]; then
        log "building vigil: cargo build --release -p vigil"
        (cd "$ROOT" && cargo build --release -q -p vigil) || die "cargo build --release -p vigil failed"
    fi
}

# bench_tmpdir NAME: prints a new temporary directory, vigil-NAME.XXXXXX under
# TMPDIR, that the cluster's user can use.
bench_tmpdir() {
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/vigil-$1.XXXXXX") || die "mktemp failed"
    chmod 755 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    echo "$dir"
}

# need_pyenv: sets PY to a Python with psycopg 3, target/pyenv, created when
# missing.
need_pyenv() {
    PY=$ROOT/target/pyenv/bin/python
    if [ ! -x "$PY" ] || ! "$PY" -c 'import psycopg' 2>/dev/null; then
        log "creating target/pyenv with psycopg"
        python3 -m venv "$ROOT/target/pyenv" && "$ROOT/target/pyenv/bin/pip" install -q 'psycopg[binary]' \
            || die "cannot create target/pyenv"
    fi
}

# pg_start DIR PORT: a new cluster in DIR (which the cluster's user can
# write), listening on 127.0.0.1:PORT and a socket in DIR, trust
# authentication; extra postgresql.conf lines on standard input.
pg_start() {
    local dir=$1 port=$2
    as_pg "$PGBIN/initdb" -D "$dir/pg" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    {
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        cat
    } | as_pg tee -a "$dir/pg/postgresql.conf" >/dev/null
    as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/postgres.log" -w -t 60 start >/dev/null \
        || { cat "$dir/postgres.log" >&2; die "PostgreSQL did not start"; }
    wait_ready "$port" PostgreSQL
}

# pg_stop DIR: stops the cluster pg_start made in DIR, if it runs.
pg_stop() {
    [ -f "$1/pg/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$1/pg" -m immediate -w stop >/dev/null 2>&1
    return 0
}

# stop_pid PID: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
