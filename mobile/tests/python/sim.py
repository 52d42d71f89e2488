"""Helpers of the Python tests of the mobile engine: hosts that collect
what an engine emits, a simulated (lossy) link between engines on manual
clocks, and IPv4/ICMP packets built by hand."""

import random
import struct

import chantry_mobile as cm

WALL0 = 1_767_225_600
SECRET = bytes(range(0x40, 0x60))


class Host(cm.EngineHost):
    """An EngineHost that keeps everything it is given."""

    def __init__(self):
        self.datagrams = []  # (ip, port, bytes)
        self.packets = []
        self.events = []

    def send_datagram(self, to, datagram):
        self.datagrams.append((to.ip, to.port, bytes(datagram)))

    def deliver_packet(self, packet):
        self.packets.append(bytes(packet))

    def on_event(self, event):
        self.events.append(event)


def conf_profile(inner, peer=None, extra="", secret=SECRET, mtu=1400):
    """A tunnel-mode sanctum.conf profile; `peer` is (ip, port) or None."""
    text = f"instance sim\ntunnel {inner}/30 {mtu}\n"
    if peer:
        text += f"peer {peer[0]}:{peer[1]}\n"
    text += extra
    return cm.Profile.CONF(text=text, keys=cm.ProfileKeys(
        secret=secret, kek=None, cathedral_secret=None, cathedral_cosk=None))


def checksum(data):
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, proto, payload, ident=0):
    """An IPv4 packet with a correct header checksum."""
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000,
                      64, proto, 0, bytes(src), bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + payload


def icmp_echo(src, dst, ident, seq, data=b"chantry-mobile"):
    """An ICMP echo request inside IPv4."""
    body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    body = body[:2] + struct.pack("!H", checksum(body)) + body[4:]
    return ipv4(src, dst, 1, body, ident=seq)


def parse_icmp(packet):
    """(type, ident, seq, src, dst, data) of an ICMP-in-IPv4 packet, or None."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != 1:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if checksum(packet[:ihl]) != 0 or checksum(packet[ihl:]) != 0:
        return None
    typ, _code, _ck, ident, seq = struct.unpack("!BBHHH", packet[ihl:ihl + 8])
    return typ, ident, seq, packet[12:16], packet[16:20], packet[ihl + 8:]


def udp_packet(src, dst, tag, size):
    """An IPv4/UDP packet of `size` bytes whose payload starts with `tag`."""
    payload = struct.pack("!HHHH", 40000, 40001, size - 20, 0)
    payload += struct.pack("!I", tag) + bytes((tag + i) & 0xFF for i in range(size - 32))
    return ipv4(src, dst, 17, payload)


class Node:
    """One engine at a simulated address."""

    def __init__(self, addr, profile):
        self.addr = addr
        self.host = Host()
        self.engine = cm.Engine.with_manual_clock(profile, self.host, WALL0)


class Link:
    """Engines joined by a simulated network whose `loss` fraction of
    datagrams is dropped (a seeded pattern) and the rest may be reordered.
    Addresses are only labels: nothing leaves the process."""

    def __init__(self, loss=0.0, reorder=False, seed=7):
        self.nodes = {}
        self.wire = []
        self.loss = loss
        self.reorder = reorder
        self.rng = random.Random(seed)
        self.sent = 0
        self.dropped = 0

    def add(self, addr, profile):
        node = Node(addr, profile)
        self.nodes[addr] = node
        return node

    def _collect(self):
        for addr, n in self.nodes.items():
            for ip, port, d in n.host.datagrams:
                self.wire.append((addr, (ip, port), d))
            n.host.datagrams.clear()

    def step(self, ms=100):
        """Delivers what is in flight, moves every clock, runs due timers."""
        self._collect()
        batch, self.wire = self.wire, []
        if self.reorder:
            self.rng.shuffle(batch)
        for src, dst, d in batch:
            self.sent += 1
            if self.rng.random() < self.loss:
                self.dropped += 1
                continue
            node = self.nodes.get(dst)
            if node is not None:
                node.engine.receive_datagram(cm.Endpoint(ip=src[0], port=src[1]), d)
        for n in self.nodes.values():
            n.engine.advance_clock(ms)
            if n.engine.next_timeout_ms() == 0:
                n.engine.handle_timeout()
        self._collect()

    def all_up(self):
        return all(n.engine.state() == cm.TunnelState.UP for n in self.nodes.values())

    def until_up(self, steps, ms=100):
        for _ in range(steps):
            if self.all_up():
                return True
            self.step(ms)
        return self.all_up()
