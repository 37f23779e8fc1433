"""Edge servers for many viewers: the stock Streaming plugin on an edge Janus,
fed by the origin's forward of a device (janus.plugin.outpost's `forward`).

One device's stream crosses its paid uplink once, to the origin (the Janus it
connects to); the origin forwards it, SRTP-protected, to an RTP mountpoint on
each edge; viewers watch the edges. This tool writes the edge's side and asks
the origin for its side, with the same fresh SRTP key in both:

  tools/edge mountpoint --device cam1 --codec av1 --port 5004 --out DIR/janus.plugin.streaming.jcfg
      writes the Streaming plugin's jcfg for the edge (string ids: the
      mountpoint's id is the device's, so the page asks every server for the
      same id), one mountpoint per --device (repeat --device/--codec/--port),
      and prints the forward request for each, key included.
  tools/edge forward --origin http://ORIGIN:7088/admin --admin-secret S --secret OP \\
                     --edge-host EDGE_IP --request FILE.json
      sends those requests to the origin's Admin API and prints the forward ids.

  tools/edge report --edge http://EDGE:7088/admin --edge-admin-secret S --edge-host EDGE_IP \
                    --origin http://ORIGIN:7088/admin --admin-secret S --secret OP
      runs beside the edge: every 2 s, the viewers of each of its mountpoints
      to the origin (forward_viewers), for the forwards made with on_demand:
      an on-demand device streams while any edge has a viewer, and stops (after
      its linger) when none has. A report holds 10 s: a reporter that dies lets
      the device stop.

The mountpoint listens on port (RTP) and port + 1 (RTCP: the origin's sender
reports in, the edge viewers' keyframe requests out, answered from the
origin's GOP cache). An edge needs only the Streaming plugin and a transport;
the key is in its jcfg: keep that file as secret as the origin's."""
import argparse
import base64
import json
import os
import sys
import urllib.request

CODECS = {"av1": 96, "h265": 97, "h264": 98}
SRTP_SUITE = 80  # AES_CM_128_HMAC_SHA1_80, the origin's default for its devices too


def new_key():
    """A fresh SRTP master key and salt (30 bytes), base64 as SDES writes it."""
    return base64.b64encode(os.urandom(30)).decode()


def mountpoint(device, codec, port, key, rtcp_port=None, pt=None, description=None):
    """The jcfg block of one RTP mountpoint for device's stream."""
    if codec not in CODECS:
        raise ValueError(f"codec {codec!r}: one of {', '.join(CODECS)}")
    pt = CODECS[codec] if pt is None else pt
    rtcp_port = port + 1 if rtcp_port is None else rtcp_port
    desc = description or f"{device} (forwarded)"
    return "\n".join([
        f"{device}: {{",
        '\ttype = "rtp"',
        f'\tid = "{device}"',
        f"\tdescription = {json.dumps(desc)}",
        "\tmedia = ({",
        f'\t\ttype = "video" mid = "v" label = {json.dumps(device)}',
        f'\t\tport = {port} rtcpport = {rtcp_port} pt = {pt} codec = "{codec}"',
        "\t})",
        f"\tsrtpsuite = {SRTP_SUITE}",
        f'\tsrtpcrypto = "{key}"',
        "}",
    ]) + "\n"


def streaming_jcfg(blocks, admin_key=None):
    """The edge's whole janus.plugin.streaming.jcfg: string ids, the blocks."""
    general = ["general: {", "\tstring_ids = true", "\tevents = false"]
    if admin_key:
        general.append(f'\tadmin_key = "{admin_key}"')
    general.append("}")
    return "\n".join(general) + "\n" + "".join(blocks)


def forward_request(device, codec, host, port, key, rtcp_port=None, pt=None, on_demand=False):
    """The origin's Admin API request (message_plugin's "request") for the
    forward feeding that mountpoint; the operator secret goes in beside it."""
    return {"request": "forward", "id": device, "host": host, "port": port,
            "rtcp_port": port + 1 if rtcp_port is None else rtcp_port,
            "pt": CODECS[codec] if pt is None else pt, "codec": codec,
            "srtp_suite": SRTP_SUITE, "srtp_crypto": key, "on_demand": on_demand}


def admin(url, admin_secret, request, plugin="janus.plugin.outpost", timeout=10):
    body = {"janus": "message_plugin", "transaction": "edge", "admin_secret": admin_secret,
            "plugin": plugin, "request": request}
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        reply = json.load(r)
    if reply.get("janus") != "success":
        raise RuntimeError(f"{url}: {reply}")
    return reply.get("response", {})


def report_once(edge_url, edge_admin_secret, edge_host, origin, admin_secret, secret):
    """One round of report: {forward_id: viewers} sent to the origin."""
    forwards = admin(origin, admin_secret, {"request": "list_forwards", "secret": secret})
    mine = [f for f in forwards.get("forwards", [])
            if f.get("on_demand") and f["host"] == edge_host]
    if not mine:
        return {}
    listed = admin(edge_url, edge_admin_secret, {"request": "list"},
                   plugin="janus.plugin.streaming").get("list", [])
    viewers_at = {}  # RTP port -> viewers
    for m in listed:
        info = admin(edge_url, edge_admin_secret, {"request": "info", "id": m["id"]},
                     plugin="janus.plugin.streaming").get("info", {})
        for media in info.get("media", []):
            if "port" in media:
                viewers_at[media["port"]] = info.get("viewers", 0)
    sent = {}
    for f in mine:
        if f["port"] in viewers_at:
            admin(origin, admin_secret, {"request": "forward_viewers", "secret": secret,
                                         "forward_id": f["forward_id"],
                                         "viewers": viewers_at[f["port"]]})
            sent[f["forward_id"]] = viewers_at[f["port"]]
    return sent


def _report_cmd(a):
    import time
    while True:
        t0 = time.monotonic()
        try:
            sent = report_once(a.edge, a.edge_admin_secret, a.edge_host, a.origin,
                               a.admin_secret, a.secret)
            if a.verbose:
                print(json.dumps(sent), flush=True)
        except (OSError, RuntimeError, ValueError) as e:  # one missed round; the next may do
            print(f"edge report: {e}", file=sys.stderr, flush=True)
        time.sleep(max(0.0, a.interval - (time.monotonic() - t0)))


def _mountpoint_cmd(a):
    if not (len(a.device) == len(a.codec) == len(a.port)):
        sys.exit("edge: give one --codec and one --port per --device")
    blocks, requests = [], []
    for device, codec, port in zip(a.device, a.codec, a.port):
        key = new_key()
        blocks.append(mountpoint(device, codec, port, key))
        requests.append(forward_request(device, codec, a.edge_host, port, key,
                                        on_demand=a.on_demand))
    text = streaming_jcfg(blocks, a.admin_key)
    if a.out:
        fd = os.open(a.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds keys
        with os.fdopen(fd, "w") as f:
            f.write(text)
        print(f"wrote {a.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if a.requests:
        fd = os.open(a.requests, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(requests, f, indent=1)
        print(f"wrote the origin's forward requests to {a.requests} (tools/edge forward)",
              file=sys.stderr)


def _forward_cmd(a):
    with open(a.request) as f:
        requests = json.load(f)
    for r in requests:
        r = dict(r, secret=a.secret)
        if a.edge_host:
            r["host"] = a.edge_host
        reply = admin(a.origin, a.admin_secret, r)
        if "forward" not in reply:
            sys.exit(f"edge: {r['id']}: {reply}")
        fw = reply["forward"]
        print(f"{fw['id']} -> {fw['host']}:{fw['port']} forward_id {fw['forward_id']}")


def _origin_args(p):
    p.add_argument("--origin", required=True, help="the origin's Admin API URL (.../admin)")
    p.add_argument("--admin-secret", required=True, help="the origin's admin_secret")
    p.add_argument("--secret", required=True, help="the plugin's operator secret")


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/edge", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mountpoint", help="write an edge's Streaming plugin jcfg")
    m.add_argument("--device", action="append", required=True)
    m.add_argument("--codec", action="append", required=True, choices=sorted(CODECS))
    m.add_argument("--port", action="append", required=True, type=int,
                   help="the mountpoint's RTP port (RTCP: port + 1)")
    m.add_argument("--edge-host", default="127.0.0.1",
                   help="the edge's address as the origin reaches it (in the requests)")
    m.add_argument("--admin-key", help="the Streaming plugin's admin_key, if any")
    m.add_argument("--on-demand", action="store_true",
                   help="forwards that stream only while the edge has viewers (tools/edge report)")
    m.add_argument("--out", help="the jcfg to write (default: stdout)")
    m.add_argument("--requests", help="where to write the origin's forward requests (JSON)")
    f = sub.add_parser("forward", help="ask the origin for the forwards")
    _origin_args(f)
    f.add_argument("--request", required=True, help="the JSON written by mountpoint --requests")
    f.add_argument("--edge-host", help="override the edge address in the requests")
    r = sub.add_parser("report", help="report the edge's viewers to the origin, every 2 s")
    r.add_argument("--edge", required=True, help="the edge's Admin API URL (.../admin)")
    r.add_argument("--edge-admin-secret", required=True)
    r.add_argument("--edge-host", required=True, help="the edge's address in the forwards")
    _origin_args(r)
    r.add_argument("--interval", type=float, default=2.0)
    r.add_argument("--verbose", action="store_true", help="print each round's reports")
    a = p.parse_args(argv)
    {"mountpoint": _mountpoint_cmd, "forward": _forward_cmd, "report": _report_cmd}[a.cmd](a)


if __name__ == "__main__":
    main()
