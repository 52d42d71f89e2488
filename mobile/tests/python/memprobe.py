"""Memory probe run in a fresh interpreter by test_memory.py, so that no
free heap left over by earlier tests hides what the engines take.

    python memprobe.py engines N   RSS per keyed engine, N pairs alive
    python memprobe.py flow N      RSS growth over N packets each way

Prints one JSON object."""

import gc
import json
import sys

import chantry_mobile as cm
from sim import Link, conf_profile, udp_packet

A, B = ("127.0.0.11", 4500), ("127.0.0.12", 4500)
A_IN, B_IN = bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2])


def rss():
    gc.collect()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise SystemExit("no VmRSS in /proc/self/status")


def keyed_pair():
    link = Link()
    a = link.add(A, conf_profile("10.9.0.1", peer=B))
    b = link.add(B, conf_profile("10.9.0.2"))
    if not link.until_up(100):
        raise SystemExit("engines did not key")
    return link, a, b


def pump(link, a, b, n, size=500):
    """n packets each way; returns how many arrived on each side (the
    hosts' lists are emptied as we go)."""
    got = [0, 0]
    pa = udp_packet(A_IN, B_IN, 1, size)
    pb = udp_packet(B_IN, A_IN, 2, size)
    for i in range(n):
        if a.engine.send_packet(pa) != cm.Verdict.ACCEPTED:
            raise SystemExit("A refused a packet")
        if b.engine.send_packet(pb) != cm.Verdict.ACCEPTED:
            raise SystemExit("B refused a packet")
        if i % 50 == 49 or i == n - 1:
            link.step(1)
            got[0] += len(b.host.packets)
            got[1] += len(a.host.packets)
            for h in (a.host, b.host):
                h.packets.clear()
                h.events.clear()
    return got


def engines(n):
    keyed_pair()  # code pages, allocator arenas, Python caches
    before = rss()
    pairs = [keyed_pair() for _ in range(n)]
    for link, a, b in pairs:
        pump(link, a, b, 20)
    after = rss()
    return {"engines": 2 * n, "before": before, "after": after,
            "per_engine": (after - before) / (2 * n)}


def flow(n):
    link, a, b = keyed_pair()
    pump(link, a, b, 2000)  # warm-up
    before = rss()
    got = pump(link, a, b, n)
    after = rss()
    s = a.engine.stats()
    return {"before": before, "after": after, "grew": after - before, "got": got,
            "tx_packets": s.tx_packets, "tun_delivered": s.tun_delivered}


if __name__ == "__main__":
    what, n = sys.argv[1], int(sys.argv[2])
    print(json.dumps({"engines": engines, "flow": flow}[what](n)))
