"""An engine from the generated Python bindings tunnels over real UDP on
loopback to a chantryd peer, and a ping inside the tunnel is answered.

The test makes a network namespace of its own, runs chantryd (the tunnel
daemon; $CHANTRYD, built by scripts/test-mobile.sh) in it with its TUN
device and its UDP socket on the namespace's loopback, runs the engine side
(chantryd_peer.py) in the same namespace, and removes everything after.
The kernel in the namespace answers the echo request that chantryd writes
to its TUN device. Nothing is sent to any address outside the namespace."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TUNNEL_ROLES = ["control", "purgatory-rx", "purgatory-tx", "heaven-rx", "bless",
                "heaven-tx", "confess", "chapel"]
UID_BASE = 61700


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace and run chantryd")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's ip")
    name = f"chmob{os.getpid() % 100000}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        sh("ip", "netns", "del", name, check=False)


def write_config(d):
    secret = os.path.join(d, "secret")
    with open(secret, "wb") as f:
        f.write(bytes((i * 7 + 42) & 0xFF for i in range(32)))
    os.chmod(secret, 0o600)
    lines = ["mode tunnel", "instance chmob0", f"secret {secret}", "local 127.0.0.1:4500",
             "peer 127.0.0.1:4501", "tunnel 10.77.0.1/30 1422",
             f"control {os.path.join(d, 'control')} root"]
    lines += [f"run {r} as {UID_BASE + i}" for i, r in enumerate(TUNNEL_ROLES)]
    conf = os.path.join(d, "chantryd.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return conf, secret


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_ping_through_a_chantryd_peer_on_loopback(netns):
    chantryd = os.environ.get("CHANTRYD")
    assert chantryd and os.access(chantryd, os.X_OK), \
        "set CHANTRYD to a chantryd built with --features test-hooks (scripts/test-mobile.sh does)"
    d = tempfile.mkdtemp(prefix="chantry-mobile-")
    os.chmod(d, 0o700)
    log_path = os.path.join(d, "chantryd.log")
    daemon = None
    try:
        conf, secret = write_config(d)
        with open(log_path, "w") as log:
            daemon = subprocess.Popen(["ip", "netns", "exec", netns, chantryd, "run", "-c", conf],
                                      stdout=log, stderr=log, env=dict(os.environ, RUST_LOG="info"))
        # Bounded wait for chantryd's TUN address.
        for _ in range(100):
            if "10.77.0.1" in sh("ip", "-n", netns, "addr", "show", check=False).stdout:
                break
            assert daemon.poll() is None, "chantryd exited early:\n" + open(log_path).read()
            time.sleep(0.1)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ["CHANTRY_MOBILE_PY"]]))
        peer = subprocess.run(["ip", "netns", "exec", netns, sys.executable,
                               os.path.join(HERE, "chantryd_peer.py"), secret],
                              capture_output=True, text=True, timeout=90, env=env)
        logs = f"engine stderr:\n{peer.stderr}\nchantryd log:\n{open(log_path).read()}"
        assert peer.returncode == 0, logs
        r = json.loads(peer.stdout)
        print(json.dumps(r, indent=1))
        assert r["keyed_after"] is not None, "no keys with chantryd\n" + json.dumps(r) + logs
        assert r["reply"] is not None, "no echo reply\n" + json.dumps(r) + logs
        assert r["reply"]["data"] == "chantry-mobile"
        assert r["stats"]["peer"] == "127.0.0.1:4500"
        assert r["stats"]["host_errors"] == 0
    finally:
        if daemon is not None:
            stop(daemon)
        shutil.rmtree(d, ignore_errors=True)
