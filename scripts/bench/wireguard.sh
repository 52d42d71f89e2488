# shellcheck shell=bash
# Globals shared with scripts/bench-tunnel.sh are set there.
# shellcheck disable=SC2034,SC2153
# WireGuard tunnels between the two bench namespaces, for
# scripts/bench-tunnel.sh: wireguard-go and boringtun (userspace, both
# configured with wg(8) over their UAPI socket), and optionally the kernel
# module. Sourced, not run.

# These functions run as `if bench_wg_start ...`, where `set -e` does not
# apply: every step checks its own status.

# Starts one WireGuard endpoint.
#   $1 implementation: wireguard-go | boringtun | kernel-wg
#   $2 namespace  $3 interface  $4 inner address/prefix
#   $5 own private key file  $6 peer public key  $7 peer endpoint ip:port
#   $8 peer inner address (allowed-ips /32)  $9 listen port
# Appends the daemon's pid to BENCH_TUNNEL_PIDS (none for kernel-wg).
bench_wg_endpoint() {
    local impl=$1 ns=$2 ifname=$3 inner=$4 key=$5 peer_pub=$6 endpoint=$7 peer_inner=$8 port=$9
    local uapi="/var/run/wireguard/$ifname.sock"
    case "$impl" in
    wireguard-go)
        # This kernel has WireGuard built in; wireguard-go refuses to run
        # then unless told that userspace is what we want.
        bench_spawn "$BENCH_DIR/$ifname.log" env WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1 \
            ip netns exec "$ns" wireguard-go -f "$ifname"
        BENCH_TUNNEL_PIDS+=("$BENCH_LAST_PID")
        ;;
    boringtun)
        bench_spawn "$BENCH_DIR/$ifname.log" ip netns exec "$ns" "$BORINGTUN" -f \
            --disable-drop-privileges --log "$BENCH_DIR/$ifname.boringtun.log" "$ifname"
        BENCH_TUNNEL_PIDS+=("$BENCH_LAST_PID")
        ;;
    kernel-wg)
        ip -n "$ns" link add "$ifname" type wireguard || {
            bench_warn "this kernel has no WireGuard (ip link add type wireguard failed)"
            return 1
        }
        ;;
    *) bench_die "unknown WireGuard implementation $impl" ;;
    esac
    if [ "$impl" != kernel-wg ] && ! bench_wait_for 100 test -S "$uapi"; then
        bench_warn "$impl did not create $uapi within 10 s; its log:"
        tail -n 20 "$BENCH_DIR/$ifname.log" >&2 || true
        return 1
    fi
    ip netns exec "$ns" wg set "$ifname" private-key "$key" listen-port "$port" \
        peer "$peer_pub" endpoint "$endpoint" allowed-ips "${peer_inner%/*}/32" || return 1
    ip -n "$ns" addr add "$inner" dev "$ifname" || return 1
    ip -n "$ns" link set "$ifname" mtu 1420 up || return 1
}

# Brings up a WireGuard tunnel of implementation $1 between the bench
# namespaces, inner network 10.201.$2.0/30. Sets BENCH_DST to the address
# iperf3 should reach and fills BENCH_TUNNEL_PIDS.
bench_wg_start() {
    local impl=$1 net=$2
    local ifa="${BENCH_PREFIX}w${net}a" ifb="${BENCH_PREFIX}w${net}b"
    local ka="$BENCH_DIR/$ifa.key" kb="$BENCH_DIR/$ifb.key"
    local pa pb
    BENCH_TUNNEL_PIDS=()
    BENCH_WG_LINKS=("$BENCH_NS_A:$ifa" "$BENCH_NS_B:$ifb")
    (umask 077 && wg genkey >"$ka" && wg genkey >"$kb") || return 1
    pa=$(wg pubkey <"$ka") || return 1
    pb=$(wg pubkey <"$kb") || return 1
    bench_wg_endpoint "$impl" "$BENCH_NS_A" "$ifa" "10.201.$net.1/30" "$ka" "$pb" \
        "${BENCH_VETH_IP_B%/*}:51820" "10.201.$net.2" 51820 || return 1
    bench_wg_endpoint "$impl" "$BENCH_NS_B" "$ifb" "10.201.$net.2/30" "$kb" "$pa" \
        "${BENCH_VETH_IP_A%/*}:51820" "10.201.$net.1" 51820 || return 1
    BENCH_DST="10.201.$net.2"
}

# Stops the tunnel bench_wg_start made.
bench_wg_stop() {
    local pid link
    for pid in "${BENCH_TUNNEL_PIDS[@]}"; do
        bench_kill_tree "$pid"
    done
    BENCH_TUNNEL_PIDS=()
    for link in "${BENCH_WG_LINKS[@]}"; do
        ip -n "${link%%:*}" link del "${link#*:}" 2>/dev/null || true
        rm -f "/var/run/wireguard/${link#*:}.sock"
    done
    BENCH_WG_LINKS=()
}
