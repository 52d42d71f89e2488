"""Memory: what one engine costs, and that 10 000 packets each way through
the FFI leave the process no bigger. Each measurement runs in a fresh
interpreter (memprobe.py) and reads VmRSS from /proc/self/status.

Budgets. An iOS NetworkExtension may use about 50 MB in all, and the engine
must leave most of that to the host and the system's buffers:
- one keyed engine with traffic behind it must cost under 256 KiB, so even
  a host with a hundred tunnels stays far inside the limit. (It takes about
  12 KiB: two SA slots, the exchange state and a few queues that every call
  drains. mobile/tests/memory.rs counts its heap bytes exactly.) RSS grows
  in pages, so the budget is checked on the average of 200 keyed engines
  alive at once.
- a steady flow must not grow the process: after a warm-up, 10 000 packets
  each way may add at most 1 MiB of RSS. That leaves room for allocator
  noise but not for anything kept per packet: 10 000 packets of 500 bytes
  kept would be 10 MB."""

import json
import os
import subprocess
import sys

MiB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))


def probe(*args):
    out = subprocess.run([sys.executable, os.path.join(HERE, "memprobe.py"), *map(str, args)],
                         check=True, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                             [HERE, os.environ["CHANTRY_MOBILE_PY"]])))
    return json.loads(out.stdout)


def test_ten_thousand_packets_each_way_without_memory_growth():
    r = probe("flow", 10_000)
    print(f"RSS {r['before'] / MiB:.1f} -> {r['after'] / MiB:.1f} MiB over 10 000 packets each way")
    assert r["got"] == [10_000, 10_000], r
    assert r["tun_delivered"] >= 12_000 and r["tx_packets"] >= 12_000, r
    assert r["grew"] < 1 * MiB, f"RSS grew by {r['grew'] / MiB:.2f} MiB"


def test_one_engine_fits_its_budget():
    r = probe("engines", 100)
    print(f"RSS per keyed engine: {r['per_engine'] / 1024:.1f} KiB ({r['engines']} engines)")
    assert 0 < r["per_engine"] < 256 * 1024, r
