// N WebRTC viewers of one stream in one page, for tools/bench/forward_cost.py.
// One Janus session (HTTP transport); each viewer is a handle of its own (its own
// PeerConnection, so its own Janus handle loop) doing the Streaming plugin's
// dance: watch {id} -> the plugin's offer -> answer -> start. Works the same for
// janus.plugin.streaming (numeric mountpoint id) and janus.plugin.outpost (string
// device id). No <video> elements: WebRTC decodes without a sink, and
// getStats() framesDecoded is the proof that the packets were real.
(function () {
  'use strict';
  const q = new URLSearchParams(location.search);
  const B = window.bench = { ready: false, error: null, viewers: [] };
  const status = m => { document.getElementById('status').textContent = m; };

  Janus.init({
    debug: ['error'], dependencies: Janus.useDefaultDependencies(), callback: function () {
      const janus = new Janus({
        server: q.get('server'), iceServers: [],
        success: function () { B.janus = janus; B.ready = true; status('session ' + janus.getSessionId()); },
        error: function (e) { B.error = 'session: ' + e; status(B.error); },
      });
    }
  });

  // the offer without its RTP header extensions (a=extmap): Janus then adds none
  // to the packets, whichever plugin offered them
  const stripExtmap = sdp => sdp.split('\r\n').filter(l => !l.startsWith('a=extmap:')).join('\r\n');

  function openOne(plugin, id, strip) {
    return new Promise((resolve, reject) => {
      const v = { plugin, id, handle: null, error: null, started: false, webrtcUp: false, offer: null };
      B.viewers.push(v);
      const fail = e => { v.error = String(e); reject(new Error(plugin + ' ' + id + ': ' + v.error)); };
      B.janus.attach({
        plugin, opaqueId: 'bench-' + Janus.randomString(8),
        success: function (h) { v.handle = h; h.send({ message: { request: 'watch', id } }); },
        error: function (e) { fail('attach: ' + e); },
        webrtcState: function (on) { v.webrtcUp = on; },
        onmessage: function (msg, jsep) {
          if (msg.error) fail(msg.error_code + ' ' + msg.error);
          if (!jsep) return;
          v.offer = jsep.sdp;
          if (strip) jsep = { type: jsep.type, sdp: stripExtmap(jsep.sdp) };
          // tracks: data only = receive what is offered, capture nothing
          v.handle.createAnswer({
            jsep, tracks: [{ type: 'data' }],
            success: function (ans) {
              v.handle.send({ message: { request: 'start' }, jsep: ans });
              v.started = true; resolve(v.handle.getId());
            },
            error: function (e) { fail('createAnswer: ' + (e && e.message || e)); },
          });
        },
        onremotetrack: function () { },
        oncleanup: function () { v.cleanedUp = true; },
      });
    });
  }

  // n more viewers of (plugin, id); resolves when each has sent its answer
  B.open = async function (plugin, id, n, strip) {
    const ids = [];
    for (let i = 0; i < n; i++) ids.push(openOne(plugin, id, strip));
    return Promise.all(ids);
  };

  // one row per viewer: the inbound video RTP stream's counters
  B.stats = async function () {
    return Promise.all(B.viewers.map(async v => {
      const pc = v.handle && v.handle.webrtcStuff && v.handle.webrtcStuff.pc;
      const row = { plugin: v.plugin, webrtcUp: v.webrtcUp, error: v.error, packetsReceived: 0, framesDecoded: 0 };
      if (!pc) return row;
      (await pc.getStats()).forEach(s => {
        if (s.type === 'inbound-rtp' && s.kind === 'video')
          Object.assign(row, {
            packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, bytesReceived: s.bytesReceived,
            framesDecoded: s.framesDecoded, framesDropped: s.framesDropped, keyFramesDecoded: s.keyFramesDecoded,
            frameWidth: s.frameWidth, frameHeight: s.frameHeight, nackCount: s.nackCount, pliCount: s.pliCount,
            decoderImplementation: s.decoderImplementation, codecId: s.codecId,
          });
        if (s.type === 'codec' && s.mimeType && s.mimeType.startsWith('video/')) row.codec = s.mimeType;
      });
      return row;
    }));
  };

  B.offers = () => B.viewers.map(v => v.offer);

  // detach every viewer (Janus hangs up their PeerConnections and ends their loops)
  B.close = async function () {
    const vs = B.viewers;
    B.viewers = [];
    await Promise.all(vs.map(v => new Promise(r => {
      if (!v.handle) return r();
      v.handle.detach({ success: r, error: r });
    })));
    return vs.length;
  };
})();
