// Headless Chromium holding WebRTC viewers of a Janus, driven one JSON line at a time
// by tools/bench/forward_cost.py over stdin/stdout:
//   {"op":"open","plugin":"janus.plugin.outpost","id":"cam1","n":4[,"strip":true]} -> {"ok":true,"handles":[...]}
//       (strip: answer the offer without its a=extmap lines: no RTP header extensions)
//   {"op":"stats"}  -> {"ok":true,"stats":[{packetsReceived, framesDecoded, ...} per viewer]}
//   {"op":"offers"} -> {"ok":true,"offers":[sdp...]}
//   {"op":"close"}  -> {"ok":true,"closed":n}      (detaches every viewer)
//   {"op":"quit"}   -> exits (so does EOF on stdin)
// Errors answer {"ok":false,"error":"..."}. Logs go to stderr.
//   node driver.mjs --server http://127.0.0.1:PORT/janus [--exe /usr/bin/chromium]
// Chromium flags as in ../shared/TESTING.md: loopback allowed in peer connections,
// no DNS leaves the machine, mDNS candidates off (in the one --disable-features
// Chromium honours, merged with playwright's own list).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const REPO = path.resolve(HERE, '..', '..', '..');
const argv = process.argv.slice(2);
const arg = (k, d) => { const i = argv.indexOf(k); return i >= 0 ? argv[i + 1] : d; };
const SERVER = arg('--server');
const EXE = arg('--exe', '/usr/bin/chromium');
const PW = process.env.OUTPOST_PLAYWRIGHT || path.join(REPO, 'tests', 'browser', 'node_modules', 'playwright-core');
const { chromium } = createRequire(path.join(REPO, 'package.json'))(PW);
const log = (...a) => console.error('[driver]', ...a);
if (!SERVER) { log('--server URL is required'); process.exit(2); }

// static files: the page from here, janus.js and adapter.js from Debian's packages
const MIME = { '.html': 'text/html', '.js': 'application/javascript' };
const server = http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (u.pathname === '/favicon.ico') { res.writeHead(204); return res.end(); }
  const f = path.normalize(u.pathname.startsWith('/js/')
    ? path.join('/usr/share/javascript', u.pathname.slice(4))
    : path.join(HERE, u.pathname === '/' ? 'index.html' : u.pathname));
  if (!f.startsWith('/usr/share/javascript/') && !f.startsWith(HERE + path.sep)) { res.writeHead(403); return res.end(); }
  fs.readFile(f, (err, data) => {
    if (err) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': MIME[path.extname(f)] || 'application/octet-stream' });
    res.end(data);
  });
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const PAGE = `http://127.0.0.1:${server.address().port}/index.html?server=${encodeURIComponent(SERVER)}`;

const PW_DISABLED = 'AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,' +
  'HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,ThirdPartyStoragePartitioning,' +
  'AvoidCorsURLLoaderRestartOnRedirect,TcpPortRandomizationWin,OptimizationHints,NetworkTimeServiceQuerying,' +
  'AimEnabled,PreconnectToSearch';
const args = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
  '--disable-features=' + PW_DISABLED + ',WebRtcHideLocalIpsWithMdns',
];
const udd = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'outpost-bench-chromium-'));
let ctx = null;
async function quit(code) {
  try { if (ctx) await ctx.close(); } catch { }
  server.close();
  fs.rmSync(udd, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGTERM', () => quit(0));
process.on('SIGINT', () => quit(0));

const t0 = Date.now();
ctx = await chromium.launchPersistentContext(udd, { executablePath: EXE, headless: true, args });
const page = ctx.pages()[0] || await ctx.newPage();
page.on('pageerror', e => log('pageerror:', e.message));
page.on('console', m => { if (m.type() === 'error' || m.type() === 'warning') log('console', m.type() + ':', m.text()); });
await page.goto(PAGE);
await page.waitForFunction(() => window.bench && (window.bench.ready || window.bench.error), null, { timeout: 15000 });
const err = await page.evaluate(() => window.bench.error);
if (err) { log(err); await quit(1); }
log(`chromium up and the page has a Janus session in ${Date.now() - t0} ms`);
process.stdout.write(JSON.stringify({ ok: true, ready: true, version: await page.evaluate(() => navigator.userAgent) }) + '\n');

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let cmd, reply;
  try {
    cmd = JSON.parse(line);
    if (cmd.op === 'open')
      reply = { ok: true, handles: await page.evaluate(([p, i, n, s]) => window.bench.open(p, i, n, s), [cmd.plugin, cmd.id, cmd.n, !!cmd.strip]) };
    else if (cmd.op === 'stats')
      reply = { ok: true, stats: await page.evaluate(() => window.bench.stats()) };
    else if (cmd.op === 'offers')
      reply = { ok: true, offers: await page.evaluate(() => window.bench.offers()) };
    else if (cmd.op === 'close')
      reply = { ok: true, closed: await page.evaluate(() => window.bench.close()) };
    else if (cmd.op === 'quit')
      break;
    else
      reply = { ok: false, error: 'unknown op ' + cmd.op };
  } catch (e) {
    reply = { ok: false, error: String(e && e.message || e) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
}
await quit(0);
