"""What a viewer's decoder can show from a recording of the plugin (a Janus
.mjr of AV1 RTP), without converting it: janus-pp-rec 1.1.2 writes an MP4
without its moov box (unreadable) from a recording that lost many packets
(seen on a link capped under the stream's rate, with congestion control off
as well as on), so a step down of the link cannot be checked through it.

The model: a unit is the packets of one RTP timestamp; it is complete when
its first packet starts it (the aggregation header's Z clear) and no sequence
number is missing from there to its marker. A keyframe unit (its first
packet's aggregation header has N set: a new coded video sequence, RFC-draft
AV1 RTP 4.4) that is complete decodes; any other complete unit decodes when
the unit before it did (AV1 real-time frames refer to the previous one; no
error resilience). That is what a decoder shows, frozen meanwhile."""
import struct


def packets(path):
    """The RTP packets of an .mjr (MJR00002): (seq, timestamp, marker, payload)."""
    d = open(path, "rb").read()
    assert d[:8] == b"MJR00002", d[:8]
    i = 10 + struct.unpack(">H", d[8:10])[0]
    out = []
    while i + 10 <= len(d):
        assert d[i:i + 4] == b"MEET", (i, d[i:i + 4])
        n = struct.unpack(">H", d[i + 8:i + 10])[0]
        rtp = d[i + 10:i + 10 + n]
        i += 10 + n
        cc = rtp[0] & 0x0F
        ext = rtp[0] & 0x10
        off = 12 + 4 * cc
        if ext:
            off += 4 + 4 * struct.unpack(">H", rtp[off + 2:off + 4])[0]
        out.append((struct.unpack(">H", rtp[2:4])[0], struct.unpack(">I", rtp[4:8])[0],
                    rtp[1] >> 7, rtp[off:]))
    return out


def decodable(path, clock=90000):
    """[(ms, decodable)] per unit in order: ms on the RTP clock from the first."""
    pk = packets(path)
    if not pk:
        return []
    # Sequence numbers unwrapped in arrival order, then sorted (resends come late).
    ext, last, base = [], None, 0
    for seq, ts, m, pl in pk:
        if last is not None and seq < last and last - seq > 32768:
            base += 65536
        elif last is not None and seq > last and seq - last > 32768:
            base -= 65536
        last = seq
        ext.append((base + seq, ts, m, pl))
    ext.sort(key=lambda p: p[0])
    seen = set()
    uniq = [p for p in ext if not (p[0] in seen or seen.add(p[0]))]
    units, cur, prev_seq = [], None, None
    for seq, ts, m, pl in uniq:
        start = cur is None or ts != cur["ts"]
        if start:
            if cur:
                units.append(cur)
            # Its first packet: Z clear (no OBU continued from a packet before).
            cur = {"ts": ts, "complete": bool(pl) and not pl[0] & 0x80,
                   "key": bool(pl and pl[0] & 0x08), "marker": False}
        elif seq != prev_seq + 1:
            cur["complete"] = False
        cur["marker"] = cur["marker"] or bool(m)
        prev_seq = seq
    units.append(cur)
    t0, ok, out = units[0]["ts"], False, []
    for u in units:
        whole = u["complete"] and u["marker"]
        ok = whole and (u["key"] or ok)
        out.append((((u["ts"] - t0) & 0xFFFFFFFF) * 1000 // clock, ok))
    return out


def longest_freeze(path):
    """(units decodable, units, the longest time in ms between two decodable
    units, or from the last to the recording's end, from the first decodable
    one on)."""
    rows = decodable(path)
    shown = [ms for ms, ok in rows if ok]
    if not shown:
        return 0, len(rows), rows[-1][0] - rows[0][0] if rows else 0
    ends = shown + [rows[-1][0]]  # frozen to the end counts too
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    return len(shown), len(rows), max(gaps, default=0)
