"""Self-test of tests/janus/janus.py, run against Janus's own Streaming plugin:
python3 tests/janus/test_harness_streaming.py"""

import os
import socket
import statistics
import subprocess
import sys

sys.dont_write_bytecode = True

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "kernel"))

from harness import run_cases  # noqa: E402
from janus import STREAMING_SO, Client, Janus, JanusError, free_port, ice_interface  # noqa: E402

STREAMING = "janus.plugin.streaming"
STARTS = []


def streaming_config(video_port):
    return f"""general: {{
	admin_key = "test-streaming-key"
	rtp_port_range = "{video_port + 1}-{video_port + 200}"
	events = false
}}
vp8-test: {{
	type = "rtp"
	id = 1
	description = "VP8 test"
	media = (
		{{
			type = "video"
			mid = "v"
			label = "vp8"
			port = {video_port}
			iface = "127.0.0.1"
			pt = 96
			codec = "vp8"
		}}
	)
	secret = "test-mp-secret"
}}
"""


def streaming_janus():
    return Janus({STREAMING: STREAMING_SO},
                 {STREAMING: streaming_config(free_port(socket.SOCK_DGRAM))},
                 admin_secret="test-admin-secret", name="janus-selftest")


def started(j):
    STARTS.append(j.start())
    return j


def iface_ip(name):
    out = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", name],
                         capture_output=True, text=True).stdout
    return out.split()[3].split("/")[0]


def test_private_config_only():
    with started(streaming_janus()) as j:
        info = j.info()
        assert set(info["plugins"]) == {STREAMING}, info["plugins"]
        assert set(info["transports"]) == {"janus.transport.http"}, info["transports"]
        assert not info.get("events") and not info.get("loggers"), info
        log = j.log()
        assert "/etc/janus" not in log, log
        assert f"Plugins folder: {j.dir}/plugins" in log, log
        assert f"Transport plugins folder: {j.dir}/transports" in log, log
        assert not j.log_errors(), j.log_errors()
        assert j.port != j.admin_port
        # Both APIs listen on loopback only.
        iface = ice_interface()
        if iface:
            for port in (j.port, j.admin_port):
                try:
                    socket.create_connection((iface_ip(iface), port), timeout=1).close()
                    raise AssertionError(f"port {port} answers on {iface}")
                except ConnectionRefusedError:
                    pass
            assert f"Adding '{iface}' to the ICE enforce list" in log, log


def test_admin_message_plugin():
    with started(streaming_janus()) as j:
        reply = j.admin({"request": "list"})
        assert reply["streaming"] == "list", reply
        assert [m["id"] for m in reply["list"]] == [1], reply
        info = j.admin({"request": "info", "id": 1, "secret": "test-mp-secret"})
        assert info["info"]["description"] == "VP8 test", info
        sessions = j.admin_raw({"janus": "list_sessions"})
        assert sessions["sessions"] == [], sessions
        # A plugin error raises with the plugin's own code (455: no such mountpoint).
        try:
            j.admin({"request": "info", "id": 99})
            raise AssertionError("info on a missing mountpoint succeeded")
        except JanusError as e:
            assert e.code == 455, e


def test_wrong_admin_secret_refused():
    with started(streaming_janus()) as j:
        for secret in ("wrong", ""):
            try:
                j.admin({"request": "list"}, secret=secret)
                raise AssertionError(f"admin secret {secret!r} was accepted")
            except JanusError as e:
                assert e.code == 403, e
        try:
            j.admin_raw({"janus": "list_sessions"}, secret="wrong")
            raise AssertionError("list_sessions with a wrong secret was accepted")
        except JanusError as e:
            assert e.code == 403, e


def test_client_sync_and_async():
    with started(streaming_janus()) as j:
        c = j.client()
        session = c.create_session()
        h = c.attach(STREAMING)
        # Synchronous request: the answer comes in the POST's reply.
        listed = c.message(h, {"request": "list"})
        assert [m["id"] for m in listed["list"]] == [1], listed
        sessions = j.admin_raw({"janus": "list_sessions"})["sessions"]
        assert sessions == [session], sessions
        # Asynchronous request: "ack", then the event with an SDP offer.
        ev = c.message(h, {"request": "watch", "id": 1, "secret": "test-mp-secret"}, full=True)
        assert ev["plugindata"]["data"]["result"]["status"] == "preparing", ev
        sdp = ev["jsep"]["sdp"]
        assert ev["jsep"]["type"] == "offer" and "VP8/90000" in sdp, ev
        cands = [l for l in sdp.splitlines() if l.startswith("a=candidate")]
        iface = ice_interface()
        if iface:
            assert cands and all(iface_ip(iface) in l for l in cands), cands
        # An asynchronous plugin error raises with its code.
        h2 = c.attach(STREAMING)
        try:
            c.message(h2, {"request": "watch", "id": 99})
            raise AssertionError("watching a missing mountpoint succeeded")
        except JanusError as e:
            assert e.code == 455, e
        assert c.keepalive()["janus"] == "ack"
        # An event nobody waits for stays queued until events() drains it.
        assert c.request({"janus": "message", "body": {"request": "watch", "id": 98}},
                         h2)["janus"] == "ack"
        evs = c.events(5)
        assert [e["plugindata"]["data"].get("error_code") for e in evs] == [455], evs
        assert c.events() == []
        c.detach(h)
        c.detach(h2)
        c.destroy()
        assert j.admin_raw({"janus": "list_sessions"})["sessions"] == []
        try:
            Client(j.url).request({"janus": "keepalive", "session_id": session})
            raise AssertionError("a destroyed session still answers")
        except JanusError as e:
            assert e.code == 458, e  # JANUS_ERROR_SESSION_NOT_FOUND


def test_client_without_background_poll():
    with started(streaming_janus()) as j:
        c = j.client(longpoll=False)
        c.create_session()
        h = c.attach(STREAMING)
        ev = c.message(h, {"request": "watch", "id": 1, "secret": "test-mp-secret"}, full=True)
        assert ev["jsep"]["type"] == "offer", ev
        c.destroy()


def test_kill9_and_restart_same_ports():
    with started(streaming_janus()) as j:
        ports = dict(j.ports)
        c = j.client()
        old = c.create_session()
        pid = j.pid
        rc = j.kill()
        assert rc == -9, rc
        assert not j.group_alive()
        assert not os.path.exists(f"/proc/{pid}")
        STARTS.append(j.restart())
        assert j.ports == ports, (j.ports, ports)
        assert set(j.info()["plugins"]) == {STREAMING}
        # The old session died with the old process.
        try:
            Client(j.url).request({"janus": "keepalive", "session_id": old})
            raise AssertionError("a session survived kill -9")
        except JanusError as e:
            assert e.code == 458, e
        c2 = j.client()
        c2.create_session()
        h = c2.attach(STREAMING)
        assert c2.message(h, {"request": "list"})["list"][0]["id"] == 1
        assert j.admin({"request": "list"})["list"][0]["id"] == 1
        assert "Bye!" not in j.log(all_runs=True).split("Starting Meetecho Janus")[1]
        c2.destroy()
        assert j.stop() == 0
        assert j.log().rstrip().endswith("Bye!"), j.log()[-500:]
    assert not os.path.exists(j.dir)


if __name__ == "__main__":
    def test_startup_time():
        assert STARTS, "no start measured"
        print(f"     Janus start -> /janus/info 200: median {statistics.median(STARTS) * 1000:.0f} ms, "
              f"min {min(STARTS) * 1000:.0f}, max {max(STARTS) * 1000:.0f} ({len(STARTS)} starts)")
        assert max(STARTS) < 2.0, STARTS

    run_cases([test_private_config_only, test_admin_message_plugin,
               test_wrong_admin_secret_refused, test_client_sync_and_async,
               test_client_without_background_poll, test_kill9_and_restart_same_ports, test_startup_time])
