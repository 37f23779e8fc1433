// The Outpost page: a Janus session (janus.js), the device list refreshed every
// second, a grid of watched devices (tile.js), and the operator's controls.
//
// URL parameters: janus=<Janus HTTP API URL> (default: port 8088 of the page's
// host), watch=<id,id,...> to open tiles at load, keepbands=1 to keep the
// stamp pixels behind each latency sample (the browser tests read them),
// jbt=<ms> to set each tile's receiver jitterBufferTarget (the browser's hint
// for its jitter buffer; unset: the browser's own choice), edges=<URL,URL,...>
// for edge Janus servers (the Janus above is then the origin: the device list,
// operators' requests, and the fallback).
//
// Edges (tools/edge): the stock Streaming plugin, fed by the origin's forwards,
// a mountpoint per device under the device's id. Each tile plays its device
// from one edge, chosen by a hash of this tab's viewer id and the device id
// (viewers spread evenly over the edges, a tab keeps its edge), and says
// which; an edge that is down or has no mountpoint for the device leaves the
// tile on the origin.
// State for tests and the curious: window.outpost.
import { Tile } from './tile.js';

const params = new URLSearchParams(location.search);
const server = params.get('janus') || `${location.protocol}//${location.hostname}:8088/janus`;
const LIST_EVERY_MS = 1000;
const RECONNECT_MS = 3000;
const edgeUrls = (params.get('edges') || '').split(',').filter(Boolean);

const app = {
  server,
  janus: null,
  control: null, // the handle used for list and operator requests
  connected: false,
  devices: [], // the last list
  usage: new Map(), // device id -> the server's day buckets [[ISO day, up, down], ...] (operators)
  tiles: new Map(), // id -> Tile
  wanted: new Set((params.get('watch') || '').split(',').filter(Boolean)),
  pins: new Map(), // device id -> the pin the viewer gave (this tab only, never stored)
  keepBands: params.get('keepbands') === '1',
  jitterBufferTarget: params.has('jbt') ? Number(params.get('jbt')) : null,
  secret: sessionStorage.getItem('outpost-secret') || '',
  // edge servers: {url, name, janus, connected}; this tab's id for choosing among them
  edges: edgeUrls.map((url, i) => ({ url, name: `edge ${i + 1}`, janus: null, connected: false,
    settled: false })),
  viewerId: sessionStorage.getItem('outpost-viewer') || Math.random().toString(36).slice(2),
  pickEdge,
  grid: document.getElementById('grid'),
  banner: null,
  watch,
  unwatch,
  operator,
};
window.outpost = app;

const $ = (sel) => document.querySelector(sel);
document.getElementById('server').textContent = server;

function banner(text, kind = 'error') {
  const b = $('#banner');
  app.banner = text;
  b.hidden = !text;
  b.textContent = text || '';
  b.className = kind;
}

// ---- Janus session ---------------------------------------------------------------------

function connect() {
  app.janus = new Janus({
    server,
    iceServers: [], // Debian's janus.js otherwise asks a public STUN server
    success: () => {
      app.janus.attach({
        plugin: 'janus.plugin.outpost',
        opaqueId: 'outpost-page-' + Janus.randomString(8),
        success: (h) => {
          app.control = h;
          app.connected = true;
          banner(null);
          refresh();
          openWanted();
        },
        error: (e) => lost('attaching to janus.plugin.outpost failed: ' + e),
      });
    },
    error: (e) => lost(e),
    destroyed: () => {},
  });
}

// The tiles asked for in the URL, once the origin is up and every edge has
// answered or failed once (a tile opened before would stay on the origin).
function openWanted() {
  if (!app.control || app.edges.some((e) => !e.settled)) return;
  for (const id of app.wanted) if (!app.tiles.has(id)) app.tiles.set(id, new Tile(app, id));
}

// An edge's Janus session; lost, it is tried again (its tiles retry on their own).
function connectEdge(edge) {
  edge.janus = new Janus({
    server: edge.url,
    iceServers: [],
    success: () => {
      edge.connected = edge.settled = true;
      openWanted();
    },
    error: () => {
      edge.connected = false;
      edge.settled = true;
      openWanted();
      setTimeout(() => {
        try {
          edge.janus.destroy({ notifyDestroyed: false, cleanupHandles: true });
        } catch (e) { /* gone anyway */ }
        connectEdge(edge);
      }, RECONNECT_MS);
    },
    destroyed: () => {},
  });
}

// FNV-1a of a string: a hash that is the same in every browser.
function fnv1a(text) {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

// The edge to play device id from (avoid: edges that failed for it), or null:
// the origin.
function pickEdge(id, avoid = new Set()) {
  const up = app.edges.filter((e) => e.connected && !avoid.has(e));
  return up.length ? up[fnv1a(`${app.viewerId}/${id}`) % up.length] : null;
}

// Janus unreachable or gone: say so, drop what hangs on the session, try again.
function lost(why) {
  const was = app.connected;
  app.connected = false;
  app.control = null;
  banner(`Janus unreachable at ${server} (${why}). ${was ? 'Reconnecting' : 'Retrying'} every ` +
    `${RECONNECT_MS / 1000} s…`);
  for (const t of app.tiles.values()) t.destroy();
  app.tiles.clear();
  renderDevices(null);
  clearTimeout(app.reconnect);
  app.reconnect = setTimeout(() => {
    try {
      if (app.janus) app.janus.destroy({ notifyDestroyed: false, cleanupHandles: true });
    } catch (e) { /* the old session is gone anyway */ }
    connect();
  }, RECONNECT_MS);
}

// ---- Device list -----------------------------------------------------------------------

function refresh() {
  if (!app.control) return;
  const message = app.secret ? { request: 'status', secret: app.secret } : { request: 'list' };
  app.control.send({
    message,
    success: (r) => {
      if (r && r.error_code === 456) { // wrong secret: back to the public list
        app.secret = '';
        sessionStorage.removeItem('outpost-secret');
        setOperator(false, 'wrong secret');
        return;
      }
      if (app.secret && r && r.devices) {
        if (!document.body.classList.contains('operator')) setTimeout(refreshUsage, 0);
        setOperator(true);
      }
      renderDevices(r && (r.devices || r.list));
    },
    error: (e) => lost(e),
  });
}
setInterval(refresh, LIST_EVERY_MS);

function restartsOf(d) {
  if (typeof d.restarts === 'number') return d.restarts < 0 ? null : d.restarts;
  const mods = d.device_status && d.device_status.modules;
  return Array.isArray(mods) ? mods.reduce((n, m) => n + (m.restarts || 0), 0) : null;
}

function renderDevices(list) {
  const body = $('#devices tbody');
  if (!list) {
    body.replaceChildren();
    return;
  }
  app.devices = list;
  $('#no-devices').hidden = list.length > 0;
  const rows = new Map([...body.children].map((tr) => [tr.dataset.device, tr]));
  for (const d of [...list].sort((a, b) => a.id.localeCompare(b.id))) {
    let tr = rows.get(d.id);
    if (!tr) tr = newRow(d.id);
    rows.delete(d.id);
    body.appendChild(tr);
    const state = !d.online ? 'offline' : d.streaming ? 'streaming' : 'online, not streaming';
    tr.dataset.state = state;
    tr.querySelector('.state').innerHTML =
      `<span class="dot ${!d.online ? 'offline' : d.streaming ? 'online' : 'idle'}"></span>${state}`;
    tr.querySelector('.codec').textContent = d.codec || '–';
    tr.querySelector('.viewers').textContent = d.viewers;
    // What the link carries (the plugin's receive rate: congestion control's
    // estimate), the encoder's target beside it, and why the target last moved.
    const st = d.device_status || {};
    const target = st.encoder && st.encoder.target_kbps;
    const why = st.uplink && st.uplink.cc_reason;
    tr.querySelector('.kbps').textContent = !d.online ? '–'
      : `${Math.round(d.bitrate_kbps)}` + (target ? ` / ${target}` : '')
        + (why && why !== 'start' ? ` · ${why}` : '');
    tr.querySelector('.kbps').title = 'kbit/s received / the encoder\'s target · why it last changed';
    tr.querySelector('.age').textContent =
      d.last_packet_age_ms < 0 ? '–' : d.last_packet_age_ms < 1000 ? `${d.last_packet_age_ms} ms`
        : `${(d.last_packet_age_ms / 1000).toFixed(0)} s`;
    const r = restartsOf(d);
    tr.querySelector('.restarts').textContent = r === null ? '–' : r;
    // Operators see what keyframes cost the device's link, and what the GOP cache saved.
    tr.querySelector('.keys').textContent = typeof d.keyframes !== 'number' ? '–'
      : `${d.keyframes}` + (d.gop_cache ? ` · ${d.gop_cache.joins + d.gop_cache.replays}` : '');
    renderMonth(tr.querySelector('.month'), d);
    tr.querySelector('.watch').textContent =
      app.tiles.has(d.id) ? 'Close' : d.pin_required ? 'Watch (PIN)' : 'Watch';
  }
  for (const tr of rows.values()) tr.remove();
}

// ---- Bytes on the paid link (operators) -------------------------------------------------

const USAGE_EVERY_MS = 30000; // the day chart: the days change slowly, the request is larger
const CHART_DAYS = 14;

function bytesText(n) {
  if (typeof n !== 'number') return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${i && n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

// This period's bytes: the device's count (the bill's) against its budget, the
// server's beside it; a bar of the budget used; the last days as bars.
function renderMonth(td, d) {
  const u = d.usage;
  if (!u) return void td.replaceChildren();
  const budget = d.device_status && d.device_status.budget;
  const shown = typeof u.device_period_bytes === 'number' ? u.device_period_bytes : u.server_period_bytes;
  const of = budget && budget.budget_bytes > 0 ? budget.budget_bytes + (budget.override_bytes || 0) : 0;
  const text = document.createElement('span');
  text.className = 'month-text';
  text.textContent = `${bytesText(shown)}${of ? ` of ${bytesText(of)}` : ''}` +
    ` (device ${bytesText(u.device_period_bytes)}, server ${bytesText(u.server_period_bytes)})`;
  const parts = [text];
  if (of) {
    const pct = Math.min(100, (100 * shown) / of);
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.innerHTML = `<span class="${pct >= 100 ? 'full' : pct >= 60 ? 'high' : ''}" style="width:${pct.toFixed(1)}%"></span>`;
    parts.push(bar);
  }
  const days = app.usage.get(d.id);
  if (days && days.length) parts.push(dayChart(days));
  td.replaceChildren(...parts);
}

// The last CHART_DAYS days (up + down, the server's count) as an inline SVG.
function dayChart(rows) {
  const last = rows.slice(-CHART_DAYS).map((r) => ({ day: r[0].slice(0, 10), bytes: r[1] + r[2] }));
  const max = Math.max(1, ...last.map((r) => r.bytes));
  const w = 8, h = 24, ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', CHART_DAYS * w);
  svg.setAttribute('height', h);
  last.forEach((r, i) => {
    const rect = document.createElementNS(ns, 'rect');
    const bh = Math.max(1, Math.round((h * r.bytes) / max));
    rect.setAttribute('x', (CHART_DAYS - last.length + i) * w);
    rect.setAttribute('y', h - bh);
    rect.setAttribute('width', w - 2);
    rect.setAttribute('height', bh);
    const title = document.createElementNS(ns, 'title');
    title.textContent = `${r.day}: ${bytesText(r.bytes)}`;
    rect.appendChild(title);
    svg.appendChild(rect);
  });
  return svg;
}

function refreshUsage() {
  if (!app.secret || !document.body.classList.contains('operator')) return;
  operator('usage').then((r) => {
    for (const u of r.devices || []) app.usage.set(u.id, (u.server && u.server.days) || []);
  }, () => {});
}
setInterval(refreshUsage, USAGE_EVERY_MS);

function newRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.device = id;
  tr.innerHTML = '<td class="id"></td><td class="state"></td><td class="codec"></td>' +
    '<td class="viewers num"></td><td class="kbps num"></td><td class="age num"></td>' +
    '<td class="restarts num"></td><td class="keys num op"></td><td class="month op"></td>' +
    '<td><button class="watch"></button></td>' +
    '<td class="op"></td>';
  tr.querySelector('.id').textContent = id;
  tr.querySelector('.watch').onclick = () => (app.tiles.has(id) ? unwatch(id) : watch(id));
  const controls = document.getElementById('operator-template').content.firstElementChild.cloneNode(true);
  controls.querySelectorAll('button[data-op]').forEach((b) => {
    b.onclick = () => operatorFromRow(id, b.dataset.op, controls);
  });
  tr.lastElementChild.appendChild(controls); // the operator's cell
  return tr;
}

// ---- Watching --------------------------------------------------------------------------

function watch(id) {
  app.wanted.add(id);
  if (!app.tiles.has(id) && app.connected) app.tiles.set(id, new Tile(app, id));
  refresh();
}

function unwatch(id) {
  app.wanted.delete(id);
  const t = app.tiles.get(id);
  if (t) t.destroy();
  app.tiles.delete(id);
  refresh();
}

// ---- Operator --------------------------------------------------------------------------

function setOperator(on, why) {
  document.body.classList.toggle('operator', on);
  $('#operator-state').textContent = on ? 'operator' : why ? `viewer (${why})` : 'viewer';
}

$('#operator').onsubmit = (ev) => {
  ev.preventDefault();
  app.secret = $('#secret').value;
  $('#secret').value = '';
  sessionStorage.setItem('outpost-secret', app.secret);
  refresh();
};

// One operator request; resolves with the plugin's answer, or rejects with its error.
function operator(request, fields = {}) {
  return new Promise((resolve, reject) => {
    if (!app.control) return reject(new Error('not connected to Janus'));
    app.control.send({
      message: { request, secret: app.secret, ...fields },
      success: (r) => (r && r.error ? reject(new Error(r.error)) : resolve(r)),
      error: (e) => reject(new Error(String(e))),
    });
  });
}

function operatorFromRow(id, op, controls) {
  const result = controls.querySelector('.op-result');
  const fields = { id };
  if (op === 'configure') {
    const bitrate = controls.querySelector('[data-field=bitrate]').value;
    const fps = controls.querySelector('[data-field=fps]').value;
    const size = controls.querySelector('[data-field=resolution]').value;
    if (bitrate) fields.bitrate = parseInt(bitrate, 10);
    if (fps) fields.fps = parseInt(fps, 10);
    if (size) [fields.width, fields.height] = size.split('x').map((v) => parseInt(v, 10));
  }
  result.textContent = '…';
  operator(op, fields).then(
    () => { result.textContent = `${op}: sent`; refresh(); },
    (e) => { result.textContent = `${op}: ${e.message}`; },
  );
}

// ---- Start -----------------------------------------------------------------------------

sessionStorage.setItem('outpost-viewer', app.viewerId);
if (app.secret) setOperator(false, 'checking');
Janus.init({
  debug: ['warn', 'error'],
  dependencies: Janus.useDefaultDependencies(),
  callback: () => {
    if (!Janus.isWebrtcSupported()) banner('This browser has no WebRTC: it cannot play the cameras.');
    else {
      for (const e of app.edges) connectEdge(e);
      connect();
    }
  },
});
