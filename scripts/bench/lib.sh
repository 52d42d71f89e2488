# shellcheck shell=bash
# Globals shared with scripts/bench-tunnel.sh are set there.
# shellcheck disable=SC2034,SC2153
# Helpers of scripts/bench-tunnel.sh: packages, namespaces, background
# processes, CPU accounting and iperf3 runs. Sourced, not run.
#
# Every loop here is bounded; every background process started through
# bench_spawn is recorded and killed by bench_cleanup.

# Background processes to kill on exit (pids).
BENCH_PIDS=()

bench_log() { printf '==> %s\n' "$*" >&2; }
bench_warn() { printf 'warning: %s\n' "$*" >&2; }
bench_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Installs missing Debian packages (no recommends: wireguard-tools would
# otherwise pull in a kernel image).
bench_ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    bench_log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Prints the path of boringtun-cli, building it into $BORINGTUN_ROOT once
# (outside the repository) when it is missing.
bench_ensure_boringtun() {
    local bin="$BORINGTUN_ROOT/bin/boringtun-cli"
    if [ ! -x "$bin" ]; then
        command -v cargo >/dev/null 2>&1 || bench_die "cargo is needed to build boringtun-cli"
        bench_log "building boringtun-cli into $BORINGTUN_ROOT (once)"
        mkdir -p "$BORINGTUN_ROOT"
        (cd / && cargo install boringtun-cli --locked --root "$BORINGTUN_ROOT") >&2
    fi
    printf '%s\n' "$bin"
}

# Runs "$@" in the background, stdout/stderr to log file $1, and records
# the pid. The pid is left in BENCH_LAST_PID (a command substitution would
# lose BENCH_PIDS, so this function prints nothing).
bench_spawn() {
    local log=$1
    shift
    "$@" >"$log" 2>&1 &
    BENCH_LAST_PID=$!
    BENCH_PIDS+=("$BENCH_LAST_PID")
}

# Every pid below $1 (children, grandchildren, ...), one per line.
bench_descendants() {
    local child
    # shellcheck disable=SC2013 # the files hold space-separated pids
    for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
        printf '%s\n' "$child"
        bench_descendants "$child"
    done
}

# True if any of the pids is still running (zombies count as gone).
bench_any_alive() {
    local p
    for p in "$@"; do
        grep -qs '^State:[[:space:]]*[^Z]' /proc/"$p"/status && return 0
    done
    return 1
}

# Sends SIGTERM to pid $1 and its descendants, waits up to 5 s for all of
# them, then SIGKILLs what is left. Never fails.
bench_kill_tree() {
    local pid=$1 pids _
    mapfile -t pids < <(printf '%s\n' "$pid"; bench_descendants "$pid")
    kill -TERM "${pids[@]}" 2>/dev/null || true
    for _ in $(seq 1 50); do
        bench_any_alive "${pids[@]}" || break
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Kills every recorded background process.
bench_kill_all() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        if bench_any_alive "$pid"; then bench_kill_tree "$pid"; else wait "$pid" 2>/dev/null || true; fi
    done
    BENCH_PIDS=()
}

# Waits until "$@" succeeds, at most $1 tenths of a second. Returns 1 on
# timeout.
bench_wait_for() {
    local tenths=$1 _
    shift
    for _ in $(seq 1 "$tenths"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

# Total CPU time (user + system, in clock ticks) of the given pids and all
# their descendants. Processes that are gone count 0.
bench_cpu_ticks() {
    local total=0 pid stat fields
    for pid in $(for p in "$@"; do printf '%s\n' "$p"; bench_descendants "$p"; done | sort -u); do
        stat=$(cat /proc/"$pid"/stat 2>/dev/null) || continue
        # Fields after the ")" that ends the command name: state is field
        # 3, utime 14 and stime 15 of the whole line.
        read -r -a fields <<<"${stat##*) }"
        total=$((total + fields[11] + fields[12]))
    done
    printf '%s\n' "$total"
}

# Creates namespaces $1 and $2 joined by veth pair $3 (in $1) / $4 (in
# $2), addresses $5 and $6 (with prefix), links up, loopback up.
bench_make_namespaces() {
    local a=$1 b=$2 va=$3 vb=$4 ipa=$5 ipb=$6
    ip netns add "$a"
    ip netns add "$b"
    ip link add "$va" netns "$a" type veth peer name "$vb" netns "$b"
    ip -n "$a" addr add "$ipa" dev "$va"
    ip -n "$b" addr add "$ipb" dev "$vb"
    ip -n "$a" link set lo up
    ip -n "$b" link set lo up
    ip -n "$a" link set "$va" up
    ip -n "$b" link set "$vb" up
}

# Waits (up to $3 seconds) until namespace $1 can ping $2.
bench_wait_ping() {
    local ns=$1 dst=$2 secs=$3 _
    for _ in $(seq 1 "$secs"); do
        ip netns exec "$ns" ping -c 1 -W 1 -q "$dst" >/dev/null 2>&1 && return 0
    done
    return 1
}

# Runs one iperf3 TCP test from namespace $1 to server $2 for $3 seconds
# with $4 parallel streams, JSON report to $5; sets BENCH_MBIT to the
# receiver's Mbit/s, or "fail". The client runs in the background and is
# waited for, so that a signal to the script is handled (and the client
# killed) at once rather than after the run.
bench_iperf() {
    local ns=$1 dst=$2 secs=$3 streams=$4 json=$5 rc=0
    BENCH_MBIT=fail
    bench_spawn "$json" timeout $((secs + 30)) ip netns exec "$ns" \
        iperf3 -c "$dst" -p "$BENCH_IPERF_PORT" -t "$secs" -O 1 -P "$streams" -J \
        --connect-timeout 3000
    wait "$BENCH_LAST_PID" || rc=$?
    if [ "$rc" -ne 0 ]; then
        bench_warn "iperf3 to $dst with $streams stream(s) failed (exit $rc, see $json)"
        return 0
    fi
    BENCH_MBIT=$(jq -r '.end.sum_received.bits_per_second / 1e6 | floor' "$json" 2>/dev/null) || BENCH_MBIT=fail
    [[ "$BENCH_MBIT" =~ ^[0-9]+$ ]] || BENCH_MBIT=fail
}
