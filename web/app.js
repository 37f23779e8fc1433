// The Outpost page: a Janus session (janus.js), the device list refreshed every
// second, a grid of watched devices (tile.js), and the operator's controls.
//
// URL parameters: janus=<Janus HTTP API URL> (default: port 8088 of the page's
// host), watch=<id,id,...> to open tiles at load, keepbands=1 to keep the
// stamp pixels behind each latency sample (the browser tests read them).
// State for tests and the curious: window.outpost.
import { Tile } from './tile.js';

const params = new URLSearchParams(location.search);
const server = params.get('janus') || `${location.protocol}//${location.hostname}:8088/janus`;
const LIST_EVERY_MS = 1000;
const RECONNECT_MS = 3000;

const app = {
  server,
  janus: null,
  control: null, // the handle used for list and operator requests
  connected: false,
  devices: [], // the last list
  tiles: new Map(), // id -> Tile
  wanted: new Set((params.get('watch') || '').split(',').filter(Boolean)),
  pins: new Map(), // device id -> the pin the viewer gave (this tab only, never stored)
  keepBands: params.get('keepbands') === '1',
  secret: sessionStorage.getItem('outpost-secret') || '',
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
          for (const id of app.wanted) if (!app.tiles.has(id)) app.tiles.set(id, new Tile(app, id));
        },
        error: (e) => lost('attaching to janus.plugin.outpost failed: ' + e),
      });
    },
    error: (e) => lost(e),
    destroyed: () => {},
  });
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
      if (app.secret && r && r.devices) setOperator(true);
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
    tr.querySelector('.kbps').textContent = d.online ? Math.round(d.bitrate_kbps) : '–';
    tr.querySelector('.age').textContent =
      d.last_packet_age_ms < 0 ? '–' : d.last_packet_age_ms < 1000 ? `${d.last_packet_age_ms} ms`
        : `${(d.last_packet_age_ms / 1000).toFixed(0)} s`;
    const r = restartsOf(d);
    tr.querySelector('.restarts').textContent = r === null ? '–' : r;
    // Operators see what keyframes cost the device's link, and what the GOP cache saved.
    tr.querySelector('.keys').textContent = typeof d.keyframes !== 'number' ? '–'
      : `${d.keyframes}` + (d.gop_cache ? ` · ${d.gop_cache.joins + d.gop_cache.replays}` : '');
    tr.querySelector('.watch').textContent =
      app.tiles.has(d.id) ? 'Close' : d.pin_required ? 'Watch (PIN)' : 'Watch';
  }
  for (const tr of rows.values()) tr.remove();
}

function newRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.device = id;
  tr.innerHTML = '<td class="id"></td><td class="state"></td><td class="codec"></td>' +
    '<td class="viewers num"></td><td class="kbps num"></td><td class="age num"></td>' +
    '<td class="restarts num"></td><td class="keys num op"></td><td><button class="watch"></button></td>' +
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

if (app.secret) setOperator(false, 'checking');
Janus.init({
  debug: ['warn', 'error'],
  dependencies: Janus.useDefaultDependencies(),
  callback: () => {
    if (!Janus.isWebrtcSupported()) banner('This browser has no WebRTC: it cannot play the cameras.');
    else connect();
  },
});
