"""Typed errors through the generated Python bindings: a bad passphrase, a
malformed profile, missing or wrong keys, and host callbacks that fail."""

import os

import pytest

import chantry_mobile as cm
from sim import SECRET, WALL0, Host, conf_profile

# scripts/test-mobile.sh writes this vicar file next to the bindings with
# `cargo run -p chantry-mobile --example vicar_fixture`.
VICAR_PASSPHRASE = "correct horse"


def vicar_file():
    path = os.path.join(os.environ["CHANTRY_MOBILE_PY"], "fixture.vicar")
    with open(path, "rb") as f:
        return f.read()


def vicar_profile(passphrase, file=None):
    return cm.Profile.VICAR(file=vicar_file() if file is None else file,
                            passphrase=passphrase, tunnel="10.9.0.2/30 1400")


def test_vicar_with_its_passphrase_registers_with_the_cathedral():
    host = Host()
    engine = cm.Engine.with_manual_clock(vicar_profile(VICAR_PASSPHRASE), host, WALL0)
    s = engine.settings()
    assert s.cathedral == cm.Endpoint(ip="127.0.0.1", port=4600)
    assert s.peer == s.cathedral, "relayed through the cathedral until told otherwise"
    assert engine.state() == cm.TunnelState.WAITING_FOR_SECRET
    engine.handle_timeout()
    # The first INFO offer (623 bytes) goes to the cathedral at once.
    assert [(ip, port, len(d)) for ip, port, d in host.datagrams] == [("127.0.0.1", 4600, 623)]
    assert host.events[0] == cm.EngineEvent.STATE(state=cm.TunnelState.WAITING_FOR_SECRET)


def test_bad_passphrase_raises_bad_passphrase():
    with pytest.raises(cm.ProfileError.BadPassphrase):
        cm.Engine(vicar_profile("wrong horse"), Host())


def test_malformed_vicar_and_unusable_passphrase():
    with pytest.raises(cm.ProfileError.MalformedVicar) as e:
        cm.Engine(vicar_profile(VICAR_PASSPHRASE, file=b"\0" * 215), Host())
    assert "215 bytes" in str(e.value)
    with pytest.raises(cm.ProfileError.InvalidPassphrase):
        cm.Engine(vicar_profile("x" * 256), Host())
    with pytest.raises(cm.ProfileError.MalformedConf) as e:
        cm.Engine(cm.Profile.VICAR(file=vicar_file(), passphrase=VICAR_PASSPHRASE,
                                       tunnel="10.9.0.2/30 9000"), Host())
    assert e.value.keyword == "tunnel"


def test_malformed_conf_names_line_and_keyword():
    text = "instance phone\npeer 192.0.2.1:4500\ntunnel 10.9.0.2/30 400\n"
    profile = cm.Profile.CONF(text=text, keys=cm.ProfileKeys(
        secret=SECRET, kek=None, cathedral_secret=None, cathedral_cosk=None))
    with pytest.raises(cm.ProfileError.MalformedConf) as e:
        cm.Engine(profile, Host())
    assert (e.value.line, e.value.keyword) == (3, "tunnel")
    assert e.value.message.startswith("profile:3: tunnel: mtu 400 out of range")
    with pytest.raises(cm.ProfileError.MalformedConf) as e:
        cm.Engine(conf_profile("10.9.0.2", extra="frobnicate yes\n"), Host())
    assert e.value.line == 3


def test_keys_are_checked():
    with pytest.raises(cm.ProfileError.MissingKey) as e:
        cm.Engine(conf_profile("10.9.0.2", secret=None), Host())
    assert e.value.name == "secret"
    with pytest.raises(cm.ProfileError.BadKey) as e:
        cm.Engine(conf_profile("10.9.0.2", secret=b"\1" * 31), Host())
    assert (e.value.name, e.value.expected, e.value.actual) == ("secret", 32, 31)


def test_unsupported_profiles():
    with pytest.raises(cm.ProfileError.Unsupported):
        cm.Engine(conf_profile("10.9.0.2", extra="mode shrine\n"), Host())


class FailingHost(Host):
    """Every datagram send fails; events raise an unexpected exception."""

    def send_datagram(self, to, datagram):
        raise cm.HostError.Failed("socket closed")

    def on_event(self, event):
        raise RuntimeError("a bug in the host")


def test_failing_host_callbacks_are_counted_not_fatal():
    host = FailingHost()
    engine = cm.Engine.with_manual_clock(conf_profile("10.9.0.1", peer=("127.0.0.12", 4500)),
                                         host, WALL0)
    engine.handle_timeout()
    engine.advance_clock(1000)
    engine.handle_timeout()
    assert engine.stats().host_errors >= 3
    assert engine.state() == cm.TunnelState.KEYING


def test_manual_clock_only_on_manual_engines():
    engine = cm.Engine(conf_profile("10.9.0.1"), Host())
    with pytest.raises(cm.EngineError.SystemClock):
        engine.advance_clock(1)
    assert cm.version().startswith("chantry-mobile ")
