#!/usr/bin/env bash
# Tunnel throughput benchmark: iperf3 TCP between two network namespaces
# joined by a veth pair, over the bare veth (the ceiling), wireguard-go,
# boringtun and chantryd, with 1 and 4 parallel streams. Prints one table:
# setup, streams, Mbit/s, ratio to wireguard-go at the same stream count,
# and the CPU used by the tunnel processes of both ends.
#
# Usage (root, Debian):
#   scripts/bench-tunnel.sh [-t SECONDS] [-P "1 4"] [SETUP...]
#     SETUP: veth wireguard-go boringtun chantryd (default: all four);
#            kernel-wg (the in-kernel WireGuard) on request.
#   CHANTRYD=/path/to/chantryd  enables the chantryd setup (skipped if
#                               unset or not executable)
#   CHANTRYCTL=/path/to/chantryctl  (default: next to $CHANTRYD) prints each
#                               side's status after the chantryd runs
#   CHANTRYD_UID_BASE=62000     chantryd roles run as uids from this base
#   BORINGTUN_ROOT=/var/cache/chantry/boringtun  where boringtun-cli is
#                               built once (cargo install), outside the repo
#
# Installs iperf3, wireguard-go, wireguard-tools, iproute2, iputils-ping
# and jq with apt when missing. Everything it creates (namespaces, veth,
# tunnel interfaces, processes, files) carries the prefix "cb<pid>" or
# lives in one temporary directory, and is removed on exit. Not run by CI:
# numbers depend on the machine and on whatever else runs on it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=bench/lib.sh
. "$here/bench/lib.sh"
# shellcheck source=bench/wireguard.sh
. "$here/bench/wireguard.sh"
# shellcheck source=bench/chantryd.sh
. "$here/bench/chantryd.sh"

DURATION=15
STREAMS="1 4"
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit "${1:-2}"; }
while getopts "t:P:h" opt; do
    case "$opt" in
    t) DURATION=$OPTARG ;;
    P) STREAMS=$OPTARG ;;
    h) usage 0 ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
SETUPS=("$@")
[ ${#SETUPS[@]} -gt 0 ] || SETUPS=(veth wireguard-go boringtun chantryd)
[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || bench_die "-t wants a whole number of seconds"
for s in $STREAMS; do [[ "$s" =~ ^[1-9][0-9]?$ ]] || bench_die "-P wants stream counts 1..99"; done
for s in "${SETUPS[@]}"; do
    case "$s" in veth | wireguard-go | boringtun | chantryd | kernel-wg) ;; *) bench_die "unknown setup $s" ;; esac
done
[ "$(id -u)" -eq 0 ] || bench_die "run as root (namespaces, tun devices)"

BORINGTUN_ROOT="${BORINGTUN_ROOT:-/var/cache/chantry/boringtun}"
BENCH_PREFIX="cb$$"
BENCH_NS_A="${BENCH_PREFIX}a"
BENCH_NS_B="${BENCH_PREFIX}b"
BENCH_VETH_A="${BENCH_PREFIX}va"
BENCH_VETH_B="${BENCH_PREFIX}vb"
BENCH_VETH_IP_A="10.201.0.1/30"
BENCH_VETH_IP_B="10.201.0.2/30"
BENCH_IPERF_PORT=5201
BENCH_TUNNEL_PIDS=()
BENCH_WG_LINKS=()
BENCH_CHANTRYD_CONTROL=()
BENCH_DIR=""

cleanup() {
    set +e
    bench_kill_all
    ip netns del "$BENCH_NS_A" 2>/dev/null
    ip netns del "$BENCH_NS_B" 2>/dev/null
    rm -f /var/run/wireguard/"$BENCH_PREFIX"*.sock
    [ -n "$BENCH_DIR" ] && rm -rf "$BENCH_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_ensure_packages iperf3 wireguard-go wireguard-tools iproute2 iputils-ping jq procps
BORINGTUN=""
case " ${SETUPS[*]} " in *" boringtun "*) BORINGTUN=$(bench_ensure_boringtun) ;; esac

BENCH_DIR=$(mktemp -d /tmp/chantry-bench.XXXXXX)
CLK_TCK=$(getconf CLK_TCK)

bench_log "namespaces $BENCH_NS_A <-> $BENCH_NS_B over veth ${BENCH_VETH_IP_A%/*} <-> ${BENCH_VETH_IP_B%/*}"
bench_make_namespaces "$BENCH_NS_A" "$BENCH_NS_B" "$BENCH_VETH_A" "$BENCH_VETH_B" \
    "$BENCH_VETH_IP_A" "$BENCH_VETH_IP_B"

# One iperf3 server in namespace B, listening on every address there.
bench_spawn "$BENCH_DIR/iperf3-server.log" ip netns exec "$BENCH_NS_B" iperf3 -s -p "$BENCH_IPERF_PORT"
iperf_listening() { ip netns exec "$BENCH_NS_B" ss -Htln "sport = :$BENCH_IPERF_PORT" | grep -q .; }
bench_wait_for 50 iperf_listening || bench_die "iperf3 server did not start"

# Results: RESULT[setup,streams] = Mbit/s, CPU[setup,streams] = percent of
# one core used by the tunnel processes of both ends ("-" for veth).
declare -A RESULT=() CPU=()
ROWS=()

# Runs every stream count against BENCH_DST for setup $1, sampling the CPU
# time of BENCH_TUNNEL_PIDS (and descendants) around each run.
measure() {
    local setup=$1 n t0 t1 c0 c1
    if ! bench_wait_ping "$BENCH_NS_A" "$BENCH_DST" 20; then
        bench_warn "$setup: $BENCH_DST not reachable within 20 s, skipped"
        return 0
    fi
    for n in $STREAMS; do
        bench_log "$setup: $n stream(s), ${DURATION} s"
        c0=0
        [ ${#BENCH_TUNNEL_PIDS[@]} -gt 0 ] && c0=$(bench_cpu_ticks "${BENCH_TUNNEL_PIDS[@]}")
        t0=$(date +%s.%N)
        bench_iperf "$BENCH_NS_A" "$BENCH_DST" "$DURATION" "$n" "$BENCH_DIR/$setup-$n.json"
        t1=$(date +%s.%N)
        ROWS+=("$setup,$n")
        RESULT["$setup,$n"]=$BENCH_MBIT
        if [ ${#BENCH_TUNNEL_PIDS[@]} -gt 0 ]; then
            c1=$(bench_cpu_ticks "${BENCH_TUNNEL_PIDS[@]}")
            CPU["$setup,$n"]=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v a="$t0" -v b="$t1" \
                'BEGIN { printf "%.0f", 100 * d / hz / (b - a) }')
        else
            CPU["$setup,$n"]="-"
        fi
    done
}

net=1
for setup in "${SETUPS[@]}"; do
    case "$setup" in
    veth)
        BENCH_TUNNEL_PIDS=()
        BENCH_DST="${BENCH_VETH_IP_B%/*}"
        measure veth
        ;;
    wireguard-go | boringtun | kernel-wg)
        bench_log "$setup: starting"
        if bench_wg_start "$setup" "$net"; then
            measure "$setup"
        else
            bench_warn "$setup: could not start, skipped"
        fi
        bench_wg_stop
        ;;
    chantryd)
        if bench_chantryd_available; then
            bench_log "chantryd: starting $CHANTRYD"
            if bench_chantryd_start "$net"; then
                measure chantryd
                bench_chantryd_status
            else
                bench_warn "chantryd: could not start, skipped"
            fi
            bench_chantryd_stop
        fi
        ;;
    esac
    net=$((net + 1))
done

echo
if [ ${#ROWS[@]} -eq 0 ]; then
    echo "no setup was measured"
    exit 1
fi
echo "iperf3 TCP, ${DURATION} s per run (first second omitted), $(nproc) CPU(s), $(uname -r)"
echo "tunnel CPU: user+system time of both ends' tunnel processes, 100% = one core"
printf '%-13s %7s %9s %12s %11s\n' setup streams Mbit/s vs-wg-go "tunnel CPU"
for row in "${ROWS[@]}"; do
    setup=${row%,*}
    n=${row#*,}
    mbit=${RESULT[$row]}
    base=${RESULT["wireguard-go,$n"]:-}
    ratio="-"
    if [[ "$mbit" =~ ^[0-9]+$ && "$base" =~ ^[0-9]+$ && "$base" -gt 0 ]]; then
        ratio=$(awk -v a="$mbit" -v b="$base" 'BEGIN { printf "%.2f", a / b }')
    fi
    cpu=${CPU[$row]}
    [ "$cpu" = "-" ] || cpu="$cpu%"
    printf '%-13s %7s %9s %12s %11s\n' "$setup" "$n" "$mbit" "$ratio" "$cpu"
done
