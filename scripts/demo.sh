#!/usr/bin/env bash
# The main job: two chantryd instances in two network namespaces joined by
# a veth pair, keyed with X25519 + ML-KEM-1024, each role in its own
# sandboxed process; then ping and a short TCP transfer through the tunnel,
# and the status of both ends. First, the protocol core on its own: two
# tunnel engines exchanging keys and packets with a simulated clock.
# Everything it creates (namespaces, files) is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages build-essential pkg-config ca-certificates iproute2 iputils-ping iperf3
ensure_cargo

echo "==> the protocol core: two engines, simulated clock"
cargo run --quiet --release --locked -p app-core --example demo

echo "==> building chantryd and chantryctl"
cargo build --quiet --release --locked -p chantry-service --bins
bin="$CARGO_TARGET_DIR/release"

tag="chd$$"
dir=$(mktemp -d /tmp/chantry-demo.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "${tag}a" 2>/dev/null || true
    ip netns del "${tag}b" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

echo "==> namespaces ${tag}a and ${tag}b joined by veth (192.168.78.1 <-> .2)"
ip netns add "${tag}a"
ip netns add "${tag}b"
ip link add "${tag}va" netns "${tag}a" type veth peer name "${tag}vb" netns "${tag}b"
ip -n "${tag}a" addr add 192.168.78.1/24 dev "${tag}va"
ip -n "${tag}b" addr add 192.168.78.2/24 dev "${tag}vb"
for s in a b; do
    ip -n "${tag}$s" link set lo up
    ip -n "${tag}$s" link set "${tag}v$s" up
done

(umask 077 && head -c 32 /dev/urandom >"$dir/secret")
roles=(control purgatory-rx purgatory-tx heaven-rx bless heaven-tx confess chapel)
for s in a b; do
    if [ "$s" = a ]; then me=1 peer=2 spi=0x0102 uid=63000; else me=2 peer=1 spi=0x0201 uid=63100; fi
    {
        echo "instance chantry-$s"
        echo "spi $spi"
        echo "local 192.168.78.$me:4500"
        echo "peer 192.168.78.$peer:4500"
        echo "tunnel 10.78.0.$me/30 1422"
        echo "secret $dir/secret"
        echo "control $dir/$s.control root"
        i=0
        for r in "${roles[@]}"; do echo "run $r as $((uid + i))"; i=$((i + 1)); done
    } >"$dir/$s.conf"
    echo "==> chantryd in ${tag}$s ($dir/$s.conf), log in $dir/$s.log"
    ip netns exec "${tag}$s" "$bin/chantryd" run -c "$dir/$s.conf" >"$dir/$s.log" 2>&1 &
    pids+=($!)
done

echo "==> waiting for the tunnel (at most 10 s)"
up=0
for _ in $(seq 1 10); do
    if ip netns exec "${tag}a" ping -c 1 -W 1 10.78.0.2 >/dev/null 2>&1; then up=1; break; fi
done
if [ "$up" != 1 ]; then
    echo "the tunnel did not come up; logs:" >&2
    cat "$dir/a.log" "$dir/b.log" >&2
    exit 1
fi

echo "==> role processes of side a (pid, uid, role)"
ps -o pid=,uid=,args= --ppid "${pids[0]}" | sed 's#[^ ]*/chantryd role #  #'

echo "==> ping through the tunnel, both ways"
ip netns exec "${tag}a" ping -c 3 10.78.0.2
ip netns exec "${tag}b" ping -c 3 10.78.0.1

echo "==> 5 s of TCP through the tunnel (iperf3)"
ip netns exec "${tag}b" iperf3 -s -1 -B 10.78.0.2 >/dev/null 2>&1 &
iperf=$!
sleep 0.5
ip netns exec "${tag}a" iperf3 -c 10.78.0.2 -t 5 -f m | tail -4
wait "$iperf" || true

for s in a b; do
    echo "==> status of side $s (chantryctl status)"
    "$bin/chantryctl" status -s "$dir/$s.control"
done
echo "==> done; stopping both daemons"
