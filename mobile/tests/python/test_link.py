"""Two engines, through the generated Python bindings, exchange keys and
pass packets over a simulated lossy, reordering link."""

import chantry_mobile as cm
from sim import Link, conf_profile, icmp_echo, parse_icmp, udp_packet

A, B = ("127.0.0.11", 4500), ("127.0.0.12", 4500)
A_IN, B_IN = bytes([10, 9, 0, 1]), bytes([10, 9, 0, 2])


def pair(loss=0.0, reorder=False):
    link = Link(loss=loss, reorder=reorder)
    a = link.add(A, conf_profile("10.9.0.1", peer=B))
    b = link.add(B, conf_profile("10.9.0.2"))
    return link, a, b


def test_settings_come_from_the_profile():
    _, a, _ = pair()
    s = a.engine.settings()
    assert (s.name, s.address, s.prefix, s.mtu) == ("sim", "10.9.0.1", 30, 1400)
    assert s.routes == [cm.Ipv4Network(address="10.9.0.0", prefix=30)]
    assert s.peer == cm.Endpoint(ip=B[0], port=B[1])
    assert s.cathedral is None
    assert a.engine.state() == cm.TunnelState.KEYING
    assert a.engine.next_timeout_ms() == 0, "the first tick is due at once"


def test_keys_and_exact_packets_on_a_clean_link():
    link, a, b = pair()
    assert link.until_up(100), "keyed within 10 simulated seconds"
    sa, sb = a.engine.stats(), b.engine.stats()
    assert sa.tx_spi == sb.rx_spi != 0 and sb.tx_spi == sa.rx_spi != 0
    assert sb.peer == cm.Endpoint(ip=A[0], port=A[1])
    assert cm.EngineEvent.STATE(state=cm.TunnelState.UP) in b.host.events
    assert any(isinstance(e, cm.EngineEvent.REKEY) for e in a.host.events)
    a.host.packets.clear()
    b.host.packets.clear()
    sent_ab, sent_ba = [], []
    for i in range(100):
        p = udp_packet(A_IN, B_IN, i, 64 + 13 * i)
        q = icmp_echo(B_IN, A_IN, 0x4242, i)
        assert a.engine.send_packet(p) == cm.Verdict.ACCEPTED
        assert b.engine.send_packet(q) == cm.Verdict.ACCEPTED
        sent_ab.append(p)
        sent_ba.append(q)
        link.step(10)
    link.step(10)
    assert b.host.packets == sent_ab
    assert a.host.packets == sent_ba
    assert parse_icmp(a.host.packets[5])[:3] == (8, 0x4242, 5)


def test_keys_and_traffic_on_a_lossy_reordering_link():
    link, a, b = pair(loss=0.3, reorder=True)
    assert link.until_up(600), "keyed within 60 s with 30% loss"
    assert link.dropped > 0
    b.host.packets.clear()
    a.host.packets.clear()
    sent_ab, sent_ba = [], []
    for i in range(300):
        p = udp_packet(A_IN, B_IN, i, 200)
        q = udp_packet(B_IN, A_IN, 10_000 + i, 300)
        if a.engine.send_packet(p) == cm.Verdict.ACCEPTED:
            sent_ab.append(p)
        if b.engine.send_packet(q) == cm.Verdict.ACCEPTED:
            sent_ba.append(q)
        link.step(10)
    for _ in range(5):
        link.step(10)
    for got, sent in ((b.host.packets, sent_ab), (a.host.packets, sent_ba)):
        assert len(sent) == 300, "keys held through the run"
        # About 70% arrive; every one exactly as sent and only once.
        assert 150 <= len(got) < 300, len(got)
        assert set(got) <= set(sent)
        assert len(set(got)) == len(got)
    # A packet from outside the tunnel networks is sealed but not delivered.
    stray = udp_packet(bytes([192, 0, 2, 1]), bytes([198, 51, 100, 1]), 1, 100)
    link.loss = 0.0
    assert a.engine.send_packet(stray) == cm.Verdict.ACCEPTED
    before = b.engine.stats().tun_filtered
    link.step(10)
    assert b.engine.stats().tun_filtered == before + 1
    assert stray not in b.host.packets


def test_drops_are_verdicts_not_exceptions():
    link, a, b = pair()
    assert a.engine.send_packet(udp_packet(A_IN, B_IN, 1, 100)) == cm.Verdict.NO_KEY
    assert a.engine.send_packet(b"\x45" * 12) == cm.Verdict.TOO_SHORT
    assert a.engine.send_packet(b"\x45" * 1401) == cm.Verdict.TOO_BIG
    assert a.engine.send_packet(b"\x60" * 100) == cm.Verdict.NOT_IPV4
    assert b.engine.receive_datagram(cm.Endpoint(ip=A[0], port=A[1]), b"junk" * 10) \
        == cm.Verdict.REJECTED
    assert b.engine.receive_datagram(cm.Endpoint(ip="nowhere", port=1), b"x") \
        == cm.Verdict.BAD_ENDPOINT
    assert a.engine.stats().tun_refused == 3
    a.engine.shutdown()
    assert a.engine.state() == cm.TunnelState.CLOSED
    assert a.engine.send_packet(udp_packet(A_IN, B_IN, 1, 100)) == cm.Verdict.CLOSED
