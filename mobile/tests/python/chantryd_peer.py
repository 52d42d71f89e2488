"""The engine side of test_chantryd.py, run inside the test's network
namespace: an engine from the generated Python bindings on a real UDP
socket on that namespace's loopback, tunnelling to a chantryd there. Once
keyed, it sends ICMP echo requests into the tunnel and waits for the reply
to come back out of the engine. Prints one JSON object; every wait is
bounded.

    python chantryd_peer.py SECRET_FILE"""

import json
import select
import socket
import sys
import time

import chantry_mobile as cm
from sim import icmp_echo, parse_icmp

LOCAL = ("127.0.0.1", 4501)
DAEMON = ("127.0.0.1", 4500)
INNER, DAEMON_INNER = bytes([10, 77, 0, 2]), bytes([10, 77, 0, 1])
LIMIT = 30.0
IDENT = 0x6d6f


class UdpHost(cm.EngineHost):
    """Sends the engine's datagrams from the socket; keeps the rest."""

    def __init__(self, sock):
        self.sock = sock
        self.packets = []
        self.events = []

    def send_datagram(self, to, datagram):
        if not to.ip.startswith("127."):
            raise cm.HostError.Failed(f"refusing to send to {to.ip} (loopback only)")
        self.sock.sendto(bytes(datagram), (to.ip, to.port))

    def deliver_packet(self, packet):
        self.packets.append(bytes(packet))

    def on_event(self, event):
        self.events.append(f"{type(event).__name__} {getattr(event, '__dict__', {})}")


def main():
    with open(sys.argv[1], "rb") as f:
        secret = f.read()[:32]
    text = (f"instance mobile\npeer {DAEMON[0]}:{DAEMON[1]}\n"
            f"tunnel {'.'.join(map(str, INNER))}/30 1422\n")
    profile = cm.Profile.CONF(text=text, keys=cm.ProfileKeys(
        secret=secret, kek=None, cathedral_secret=None, cathedral_cosk=None))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(LOCAL)
    host = UdpHost(sock)
    engine = cm.Engine(profile, host)
    start = time.monotonic()
    keyed_after = reply = None
    seq = 0
    next_ping = 0.0
    while time.monotonic() - start < LIMIT and reply is None:
        ms = engine.next_timeout_ms()
        wait = 0.1 if ms is None else min(ms / 1000.0, 0.1)
        ready, _, _ = select.select([sock], [], [], wait)
        if ready:
            data, src = sock.recvfrom(2048)
            engine.receive_datagram(cm.Endpoint(ip=src[0], port=src[1]), data)
        if engine.next_timeout_ms() == 0:
            engine.handle_timeout()
        now = time.monotonic() - start
        if engine.state() == cm.TunnelState.UP:
            if keyed_after is None:
                keyed_after = now
            if now >= next_ping:
                seq += 1
                engine.send_packet(icmp_echo(INNER, DAEMON_INNER, IDENT, seq))
                next_ping = now + 0.5
        for p in host.packets:
            icmp = parse_icmp(p)
            if icmp and icmp[0] == 0 and icmp[1] == IDENT and icmp[3] == DAEMON_INNER \
                    and icmp[4] == INNER:
                reply = {"seq": icmp[2], "after": now, "data": icmp[5].decode(errors="replace")}
        host.packets.clear()
    s = engine.stats()
    print(json.dumps({
        "keyed_after": keyed_after,
        "reply": reply,
        "pings_sent": seq,
        "stats": {"state": s.state.name, "tx_packets": s.tx_packets, "rx_packets": s.rx_packets,
                  "rx_dropped": s.rx_dropped, "tun_delivered": s.tun_delivered,
                  "tun_filtered": s.tun_filtered, "host_errors": s.host_errors,
                  "peer": None if s.peer is None else f"{s.peer.ip}:{s.peer.port}"},
        "events": host.events[:40],
    }))
    engine.shutdown()


if __name__ == "__main__":
    main()
