// One watched device: its own janus.plugin.outpost handle (Streaming-style
// watch -> offer -> answer -> start), a <video>, and an overlay of what the
// browser measures: size, frame rate, bitrate, packets lost, and the
// glass-to-glass latency read from the test pattern's stamp.
//
// Latency = the moment Chromium expects to show a frame (requestVideoFrameCallback's
// expectedDisplayTime, on the page's clock) minus the capture time written in
// the frame's pixels by capture-testsrc (wall clock, same machine or NTP-synced).
// Reading it costs one drawImage of the stamp band (3 cells high) and a
// getImageData of it per frame: ~24 rows at 640 wide.
import { readStamp, stampBandHeight } from './stamp.js';

// Stamped frames kept: the readout's last 2 s at 60 fps, and the device's
// times (asked every second, so up to a second old) still find their frames.
const WINDOW = 120;
const STATS_EVERY_MS = 1000;
const STALL_MS = 2500; // no frame for this long while the device streams: say so
const RETRY_MS = 2000;

// A performance-timeline time (performance.now(), requestVideoFrameCallback's
// metadata) on the wall clock, the clock of the device's stamps (CLOCK_REALTIME
// ms). Anchored on Date.now() at every use, not on performance.timeOrigin: the
// page's monotonic clock and the wall clock part when the system clock is
// stepped (a CI run once read "to the browser" as -12.3 ms). Date.now() counts
// whole ms, rounded down: +0.5 puts the anchor's error within +-0.5 ms.
function wallMs(t) {
  return t + (Date.now() - performance.now()) + 0.5;
}

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Where the latency of the frames shown in the last 2 s went, as means (they
// add up, medians do not): capture -> the frame's last packet received by the
// browser (device, network, Janus), -> handed to the compositor (jitter
// buffer and decode; the decoder's own part of it), -> the display it is
// expected on. null when the browser gives no such metadata.
//
// With the device's own times (the plugin's `timing`, by RTP timestamp: the
// frame taken by the encoder, coded, its last packet sent, each from the
// capture), "to the browser" splits further, over the frames that have them:
// waiting for the encoder, encoding, the uplink (its pacer), and the network
// with Janus. Those means add up to that subset's own "to the browser".
function breakdown(samples, timing) {
  const s = samples.filter((x) => x.receiveMs !== null && x.presentMs !== null);
  if (!s.length) return null;
  const mean = (f, of = s) => of.reduce((a, x) => a + f(x), 0) / of.length;
  const b = {
    frames: s.length,
    totalMs: mean((x) => x.latencyMs),
    toBrowserMs: mean((x) => x.receiveMs - x.captureMs),
    bufferDecodeMs: mean((x) => x.presentMs - x.receiveMs),
    decodeMs: mean((x) => x.decodeMs || 0),
    toScreenMs: mean((x) => x.displayMs - x.presentMs),
    device: null,
  };
  const timed = s.filter((x) => timing && timing.has(x.rtpTimestamp));
  if (timed.length) {
    const d = (x) => timing.get(x.rtpTimestamp);
    b.device = {
      frames: timed.length,
      toBrowserMs: mean((x) => x.receiveMs - x.captureMs, timed),
      toEncoderMs: mean((x) => d(x).in, timed),
      encodeMs: mean((x) => d(x).coded - d(x).in, timed),
      uplinkMs: mean((x) => d(x).sent - d(x).coded, timed),
      networkMs: mean((x) => x.receiveMs - x.captureMs - d(x).sent, timed),
    };
  }
  return b;
}

const TIMING_KEEP = 256; // device timings kept by RTP timestamp (~8 s at 30 fps)

export class Tile {
  // app: { janus, grid, keepBands, log(msg) }; id: the device id (a string)
  constructor(app, id) {
    this.app = app;
    this.id = id;
    this.handle = null;
    this.via = null; // the edge it plays from (app.edges), or null: the origin
    this.edgesFailed = new Set(); // edges without this device's mountpoint
    this.closed = false;
    this.state = 'connecting';
    this.deviceState = null; // the plugin's last status event: online, offline, ...
    this.samples = []; // {frame, captureMs, displayMs, latencyMs, band?}, the last WINDOW
    this.readout = null; // what the overlay shows, with the samples behind it
    this.stats = null;
    this.lastFrameAt = 0;
    this.framesSeen = 0;
    this.noStamp = 0;
    this.prev = null; // the previous getStats sample, for rates

    const node = document.getElementById('tile-template').content.firstElementChild.cloneNode(true);
    node.dataset.device = id;
    this.node = node;
    this.video = node.querySelector('video');
    this.overlay = node.querySelector('.overlay');
    // A click on the overlay shows where the latency goes (and hides it again).
    this.showBreakdown = false;
    this.timing = new Map(); // RTP timestamp -> the device's times (the plugin's `timing`)
    this.overlay.onclick = () => {
      this.showBreakdown = !this.showBreakdown;
      this.poll();
    };
    this.budget = node.querySelector('.budget');
    this.notice = node.querySelector('.notice');
    this.stateLabel = node.querySelector('.tile-state');
    node.querySelector('.tile-name').textContent = id;
    node.querySelector('.tile-close').onclick = () => app.unwatch(id);
    this.canvas = document.createElement('canvas');
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
    app.grid.appendChild(node);
    this.timer = setInterval(() => this.poll(), STATS_EVERY_MS);
    this.setState('connecting', 'Connecting…');
    this.attach();
  }

  setState(state, notice) {
    this.state = state;
    this.stateLabel.textContent = state;
    this.node.dataset.state = state;
    this.notice.hidden = !notice;
    this.notice.textContent = notice || '';
  }

  // A fresh handle on the edge chosen for this device (app.pickEdge), or on
  // the origin: the Streaming plugin there, ours here, the same viewer API.
  attach() {
    if (this.closed) return;
    this.via = this.app.pickEdge(this.id, this.edgesFailed);
    this.node.querySelector('.tile-via').textContent = this.via ? `via ${this.via.name}` : '';
    this.node.dataset.via = this.via ? this.via.url : '';
    (this.via ? this.via.janus : this.app.janus).attach({
      plugin: this.via ? 'janus.plugin.streaming' : 'janus.plugin.outpost',
      opaqueId: 'outpost-viewer-' + Janus.randomString(8),
      success: (h) => {
        this.handle = h;
        this.sendWatch();
      },
      error: (e) => this.retry('attach failed: ' + e),
      onmessage: (msg, jsep) => this.onMessage(msg, jsep),
      onremotetrack: (track, mid, on) => this.onTrack(track, on),
      webrtcState: (up) => {
        if (!up && !this.closed) this.retry('the media connection closed');
      },
      iceState: (s) => {
        if (s === 'failed') this.retry('ICE failed');
      },
      oncleanup: () => {
        this.video.srcObject = null;
      },
    });
  }

  // Start over with a fresh handle (Janus restarted, PeerConnection lost, ...).
  retry(why) {
    if (this.closed || this.retrying) return;
    this.retrying = true;
    this.setState('reconnecting', `Connection lost (${why}); retrying…`);
    const h = this.handle;
    this.handle = null;
    if (h) h.detach({ noRequest: false });
    setTimeout(() => {
      this.retrying = false;
      this.attach();
    }, RETRY_MS);
  }

  // watch, with the device's pin when the viewer gave one (kept for this tab only).
  sendWatch() {
    const message = { request: 'watch', id: this.id };
    const pin = this.app.pins.get(this.id);
    if (pin) message.pin = pin;
    this.handle.send({ message });
  }

  // The device needs a pin (the plugin answered 457, as the Streaming plugin
  // does): ask for it in the tile; nothing streams until it is right.
  askPin(why) {
    this.setState('pin', null);
    const form = document.createElement('form');
    form.className = 'pin-form';
    form.innerHTML = '<label>PIN <input type="password" autocomplete="off" size="8"></label> ' +
      '<button>Watch</button> <span class="pin-why"></span>';
    form.querySelector('.pin-why').textContent = why;
    form.onsubmit = (e) => {
      e.preventDefault();
      this.app.pins.set(this.id, form.querySelector('input').value);
      form.remove();
      this.setState('connecting', 'Connecting…');
      if (this.handle) this.sendWatch();
    };
    this.node.querySelector('.tile-video').appendChild(form);
    form.querySelector('input').focus();
  }

  onMessage(msg, jsep) {
    if (msg.error) {
      if (msg.error_code === 457) { // unauthorized: no pin, a wrong one, or too many tries
        const had = this.app.pins.has(this.id);
        this.app.pins.delete(this.id);
        this.askPin(/too many/.test(msg.error) ? 'Too many attempts: wait a little'
          : had ? 'Wrong PIN' : 'This camera needs a PIN');
        return;
      }
      if (this.via && msg.error_code === 455) { // the edge has no mountpoint for it: elsewhere
        this.edgesFailed.add(this.via);
        this.retry(`${this.via.name} does not carry ${this.id}`);
        return;
      }
      const offline = msg.error_code === 460; // the device has not connected yet (invalid state)
      this.setState(offline ? 'offline' : 'error', offline ? 'Device offline' : msg.error);
      if (offline) setTimeout(() => !this.closed && this.handle && this.sendWatch(), RETRY_MS);
      return;
    }
    const status = msg.result && msg.result.status;
    if (status === 'budget') this.showBudget(msg.result); // the device's data budget changed tier
    else if (status) this.onStatus(status);
    if (jsep) {
      this.handle.createAnswer({
        jsep,
        tracks: [{ type: 'video', capture: false, recv: true }],
        success: (answer) => {
          // When the viewer asked to start, and (onFrame) when its first frame
          // showed: the join as the viewer sees it (tools/bench/join.py).
          this.startSentAt = wallMs(performance.now());
          this.firstFrameAt = null;
          this.handle.send({ message: { request: 'start' }, jsep: answer });
        },
        error: (e) => this.setState('error', 'WebRTC: ' + (e.message || e)),
      });
    }
  }

  onStatus(status) {
    if (status === 'offline' || status === 'online' || status === 'streaming' || status === 'stopped')
      this.deviceState = status;
    if (status === 'offline') this.setState('offline', 'Device offline');
    else if (status === 'stopped') this.setState('stopped', 'Stream stopped by an operator');
    else if (status === 'preparing' || status === 'starting') this.setState(status, 'Waiting for video…');
    else if (status === 'online' || status === 'streaming' || status === 'started') {
      if (this.state !== 'playing') this.setState('waiting', 'Waiting for video…');
    }
  }

  // The device's data budget (its tier and why): said over the picture unless
  // full quality; the picture itself may be reduced or stopped by the device.
  showBudget(b) {
    const reduced = b && b.tier && b.tier !== 'full';
    this.budget.hidden = !reduced;
    this.budget.textContent = reduced ? b.reason || `data budget: ${b.tier}` : '';
  }

  onTrack(track, on) {
    if (!on || track.kind !== 'video') return;
    const cur = this.video.srcObject;
    if (cur && cur.getVideoTracks()[0] === track) return; // janus.js reports a track twice
    this.video.srcObject = new MediaStream([track]);
    if (this.app.jitterBufferTarget !== null) {
      const pc = this.handle && this.handle.webrtcStuff && this.handle.webrtcStuff.pc;
      const r = pc && pc.getReceivers().find((x) => x.track === track);
      if (r && 'jitterBufferTarget' in r) r.jitterBufferTarget = this.app.jitterBufferTarget;
    }
    this.video.play().catch(() => {});
    if (!this.frameLoop) {
      this.frameLoop = true;
      const cb = (now, meta) => {
        if (this.closed) return;
        this.onFrame(meta);
        this.video.requestVideoFrameCallback(cb);
      };
      this.video.requestVideoFrameCallback(cb);
    }
  }

  onFrame(meta) {
    const w = meta.width, h = meta.height;
    if (!this.firstFrameAt) this.firstFrameAt = wallMs(meta.expectedDisplayTime);
    this.lastFrameAt = performance.now();
    this.framesSeen++;
    if (this.state !== 'playing' && this.deviceState !== 'offline' && this.deviceState !== 'stopped')
      this.setState('playing', null);
    const rows = stampBandHeight(w, h);
    if (!rows) return void this.noStamp++;
    if (this.canvas.width !== w || this.canvas.height !== rows) {
      this.canvas.width = w;
      this.canvas.height = rows;
    }
    this.ctx.drawImage(this.video, 0, 0, w, rows, 0, 0, w, rows);
    const img = this.ctx.getImageData(0, 0, w, rows);
    const s = readStamp(img.data, w, rows);
    if (!s) return void this.noStamp++;
    const prev = this.samples[this.samples.length - 1];
    if (prev && prev.frame === s.frame) return; // shown again: its latency is the first showing's
    const at = (t) => (t === undefined ? null : wallMs(t));
    const displayMs = at(meta.expectedDisplayTime);
    // Where the browser's share went (requestVideoFrameCallback's metadata): the
    // frame's last packet received, handed to the compositor (decoded), the
    // decoder's own part of it, and the display it is expected on.
    const sample = {
      frame: s.frame, captureMs: s.timeMs, displayMs, latencyMs: displayMs - s.timeMs,
      receiveMs: at(meta.receiveTime), presentMs: at(meta.presentationTime),
      decodeMs: meta.processingDuration === undefined ? null : meta.processingDuration * 1000,
      rtpTimestamp: meta.rtpTimestamp === undefined ? null : meta.rtpTimestamp,
    };
    if (this.app.keepBands) sample.band = { width: w, height: rows, rgba: img.data };
    this.samples.push(sample);
    if (this.samples.length > WINDOW) this.samples.shift();
  }

  // The device list (refreshed every second) backs up the plugin's events: a
  // tile opened while its device is offline, or an event lost with a reconnect.
  followList() {
    const dev = this.app.devices.find((d) => d.id === this.id);
    if (!dev || this.retrying) return;
    this.showBudget(dev.budget); // the list backs up the budget events too
    // (not "stopped" from the list: an on-demand device is not streaming until
    // this very tile's watch starts it, and the list may be a second old)
    if (!dev.online && this.state !== 'offline') this.onStatus('offline');
    else if (dev.online && this.state === 'offline') this.onStatus('online');
  }

  async poll() {
    this.followList();
    const pc = this.handle && this.handle.webrtcStuff && this.handle.webrtcStuff.pc;
    if (!pc) return;
    let inbound = null;
    try {
      (await pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') inbound = s;
      });
    } catch (e) {
      return;
    }
    if (!inbound) return;
    const now = performance.now();
    const p = this.prev;
    this.prev = { at: now, bytes: inbound.bytesReceived, frames: inbound.framesDecoded || 0 };
    const dt = p ? (now - p.at) / 1000 : 0;
    this.stats = {
      width: inbound.frameWidth || 0,
      height: inbound.frameHeight || 0,
      fps: dt ? (this.prev.frames - p.frames) / dt : 0,
      kbps: dt ? ((this.prev.bytes - p.bytes) * 8) / dt / 1000 : 0,
      packetsLost: inbound.packetsLost || 0,
      packetsReceived: inbound.packetsReceived || 0,
      framesDecoded: inbound.framesDecoded || 0,
      keyFramesDecoded: inbound.keyFramesDecoded || 0,
      codec: inbound.codecId,
    };
    if (this.showBreakdown) this.askTiming();
    const fresh = this.samples.filter((s) => wallMs(now) - s.displayMs < 2000);
    const lat = median(fresh.map((s) => s.latencyMs));
    this.readout = lat === null ? { latencyMs: null, samples: [] }
      : { latencyMs: Math.round(lat), samples: fresh.map((s) => ({ ...s })),
        breakdown: breakdown(fresh, this.timing) };
    const st = this.stats;
    const latency = this.readout.latencyMs === null ? 'no stamp' : `latency ${this.readout.latencyMs} ms`;
    const b = this.showBreakdown && this.readout.breakdown;
    this.overlay.textContent = `${st.width}x${st.height} · ${st.fps.toFixed(1)} fps · ` +
      `${Math.round(st.kbps)} kbit/s · lost ${st.packetsLost} · ${latency}` +
      (b ? ` · mean ${b.totalMs.toFixed(1)} = to the browser ${b.toBrowserMs.toFixed(1)} + ` +
        `jitter buffer and decode ${b.bufferDecodeMs.toFixed(1)} (decode ${b.decodeMs.toFixed(1)}) + ` +
        `to the screen ${b.toScreenMs.toFixed(1)} ms` : '') +
      (b && b.device ? ` · device: to the encoder ${b.device.toEncoderMs.toFixed(1)} + encode ` +
        `${b.device.encodeMs.toFixed(1)} + uplink ${b.device.uplinkMs.toFixed(1)} + network and ` +
        `Janus ${b.device.networkMs.toFixed(1)} ms (${b.device.frames} frames)` : '');
    this.overlay.dataset.latency = this.readout.latencyMs === null ? '' : String(this.readout.latencyMs);
    if (this.state === 'playing' && now - this.lastFrameAt > STALL_MS)
      this.setState('stalled', `No video for ${((now - this.lastFrameAt) / 1000).toFixed(0)} s`);
  }

  // The device's times for the frames of the last seconds (asking keeps the
  // device sending them: 8 bytes a frame on its link, only while a breakdown
  // is shown somewhere).
  askTiming() {
    // (not through an edge: the device's times are the origin's to give, and
    // the edge's timestamps are not the origin's viewers')
    if (!this.handle || this.via || this.timingAsked) return;
    this.timingAsked = true;
    this.handle.send({
      message: { request: 'timing', id: this.id },
      success: (r) => {
        this.timingAsked = false;
        for (const f of (r && r.frames) || []) this.timing.set(f.ts, f);
        for (const k of this.timing.keys()) {
          if (this.timing.size <= TIMING_KEEP) break;
          this.timing.delete(k); // a Map iterates in insertion order: the oldest first
        }
      },
      error: () => { this.timingAsked = false; },
    });
  }

  destroy() {
    this.closed = true;
    clearInterval(this.timer);
    if (this.handle) {
      this.handle.send({ message: { request: 'stop' } });
      this.handle.detach();
    }
    this.node.remove();
  }
}
