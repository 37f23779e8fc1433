// What the browser tests stand on: the spine (tools/spine.py: Janus + plugin,
// the web server, device kernels) driven over a pipe, headless Chromium through
// playwright-core with the flags WebRTC needs here (../shared/TESTING.md), and
// readers for what the page shows.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { chromium } from 'playwright-core';

export const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
export const BUILD = process.env.OUTPOST_BUILD || path.join(ROOT, 'build');
export const OUT = process.env.OUTPOST_TEST_OUT || path.join(BUILD, 'tests', 'browser-out');
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the spine --------------------------------------------------------------------------

export async function startSpine(devices, extra = []) {
  const proc = spawn('python3', [path.join(ROOT, 'tools', 'spine.py'), '--devices', devices.join(','), ...extra], {
    env: { ...process.env, OUTPOST_BUILD: BUILD, PYTHONDONTWRITEBYTECODE: '1' },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: proc.stdout });
  const waiting = [];
  const queued = [];
  lines.on('line', (l) => {
    const v = JSON.parse(l);
    const w = waiting.shift();
    if (w) w(v); else queued.push(v);
  });
  const next = () => (queued.length ? Promise.resolve(queued.shift()) : new Promise((r) => waiting.push(r)));
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  const info = await Promise.race([next(), exited.then((c) => { throw new Error(`spine exited ${c}`); })]);
  return {
    info,
    async cmd(obj) {
      proc.stdin.write(JSON.stringify(obj) + '\n');
      const r = await next();
      if (!r.ok) throw new Error(`spine ${JSON.stringify(obj)}: ${r.error}`);
      return r;
    },
    async close() {
      proc.stdin.write('{"cmd":"quit"}\n');
      proc.stdin.end();
      const code = await Promise.race([exited, sleep(20000).then(() => 'timeout')]);
      if (code === 'timeout') proc.kill('SIGKILL');
      return code;
    },
  };
}

// A suite's end: the browser closed (its console printed with OUTPOST_DEBUG),
// then the spine, which must stop cleanly (a sanitizer report in any log of
// ours makes its exit code non-zero).
export async function closeAll(browser, spine) {
  if (browser) {
    if (process.env.OUTPOST_DEBUG) console.log(browser.log.join('\n'));
    await browser.close();
  }
  if (spine) assert.equal(await spine.close(), 0, 'spine: a clean stop (no sanitizer report)');
}

// kill -9 of device id's encoder, then waits (3 s at most) for 5 frames
// captured after it on the page's tile, and checks the page was not reloaded:
// {pid, waitedMs}.
export async function killEncoderSeen(page, spine, id) {
  const before = await page.evaluate(() => performance.timeOrigin);
  const killedAt = Date.now();
  const { pid } = await spine.cmd({ cmd: 'kill', device: id, module: 'encoder' });
  const r = await waitFor(async () => {
    const t = await tileState(page, id);
    const after = t.samples.filter((s) => s.captureMs > killedAt + 100);
    return { ok: after.length >= 5, seen: { state: t.state, n: after.length, first: after[0] } };
  }, 3000, 'frames captured after the kill on screen');
  assert.equal(await page.evaluate(() => performance.timeOrigin), before, 'the page was not reloaded');
  return { pid, waitedMs: r.waitedMs };
}

// The lines of a device kernel's log that match re (for a failure's diagnosis).
export function deviceLog(spine, id, re) {
  try {
    return fs.readFileSync(spine.info.kernel_logs[id], 'utf8').split('\n').filter((l) => re.test(l));
  } catch (e) {
    return [`(no log: ${e.message})`];
  }
}

// ---- Chromium ---------------------------------------------------------------------------

// Chromium honours only the LAST --disable-features: this repeats playwright-core's
// own list (read from its launch line) and adds the mDNS one, so that neither is lost.
const PW_DISABLED = 'AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,' +
  'HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,ThirdPartyStoragePartitioning,' +
  'AvoidCorsURLLoaderRestartOnRedirect,TcpPortRandomizationWin,OptimizationHints,NetworkTimeServiceQuerying,' +
  'AimEnabled,PreconnectToSearch';

export async function launchBrowser() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1300, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--allow-loopback-in-peer-connection',
      // every hostname stays unresolved: no DNS query leaves the machine (but
      // this machine's own addresses named in OUTPOST_BROWSER_HOSTS: the link lab's)
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1' +
        (process.env.OUTPOST_BROWSER_HOSTS || '').split(',').filter(Boolean).map((h) => ` , EXCLUDE ${h}`).join(''),
      '--disable-features=' + PW_DISABLED + ',WebRtcHideLocalIpsWithMdns',
    ],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  const log = [];
  page.on('console', (m) => log.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  return {
    ctx, page, log,
    async close() {
      await ctx.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ---- what the page shows ----------------------------------------------------------------

// The tile of device id as the page sees it (null if it has none).
export function tileState(page, id) {
  return page.evaluate((id) => {
    const t = window.outpost.tiles.get(id);
    if (!t) return null;
    return {
      state: t.state, deviceState: t.deviceState, stats: t.stats, readout: t.readout,
      framesSeen: t.framesSeen, noStamp: t.noStamp,
      samples: t.samples.map(({ band, ...s }) => s),
      overlay: t.overlay.textContent, notice: t.notice.hidden ? '' : t.notice.textContent,
    };
  }, id);
}

// inbound-rtp straight from the PeerConnection (not the page's own arithmetic).
export function inbound(page, id) {
  return page.evaluate(async (id) => {
    const t = window.outpost.tiles.get(id);
    const pc = t && t.handle && t.handle.webrtcStuff && t.handle.webrtcStuff.pc;
    if (!pc) return null;
    let r = null;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') r = s;
    });
    const codec = r && r.codecId && stats.get(r.codecId);
    return r && {
      mimeType: codec ? codec.mimeType : null, sdpFmtpLine: codec ? codec.sdpFmtpLine : null,
      framesDecoded: r.framesDecoded || 0, keyFramesDecoded: r.keyFramesDecoded || 0,
      frameWidth: r.frameWidth, frameHeight: r.frameHeight, bytesReceived: r.bytesReceived,
      packetsReceived: r.packetsReceived, packetsLost: r.packetsLost, at: Date.now(),
      // Where a frame's time goes in the receiver (seconds, summed over the frames).
      jitterBufferDelay: r.jitterBufferDelay, jitterBufferEmittedCount: r.jitterBufferEmittedCount,
      totalDecodeTime: r.totalDecodeTime, framesDropped: r.framesDropped,
    };
  }, id);
}

export async function waitFor(fn, timeoutMs, what) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < timeoutMs) {
    last = await fn();
    if (last && last.ok) return { ...last, waitedMs: Date.now() - t0 };
    await sleep(100);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last && last.seen)}`);
}

// Reads the stamp band with the C reader (build/bin/stamp-read), independently of the
// page's JS: RGBA -> luma (BT.601), neutral chroma, one raw I420 frame per band.
export function cReadBands(bands) {
  if (!bands.length) return [];
  const { width, height } = bands[0];
  const cw = (width + 1) >> 1, ch = (height + 1) >> 1;
  const frame = width * height + 2 * cw * ch;
  const buf = Buffer.alloc(frame * bands.length, 128);
  bands.forEach((b, k) => {
    const base = k * frame;
    for (let i = 0; i < width * height; i++) {
      const r = b.rgba[4 * i], g = b.rgba[4 * i + 1], bl = b.rgba[4 * i + 2];
      buf[base + i] = Math.round(0.299 * r + 0.587 * g + 0.114 * bl);
    }
  });
  const r = spawnSync(path.join(BUILD, 'bin', 'stamp-read'), [`${width}x${height}`, '-'], { input: buf });
  if (r.status !== 0) throw new Error(`stamp-read: ${r.stderr}`);
  return r.stdout.toString().trim().split('\n').map((l) => {
    const [, frameNo, timeMs] = l.split(' ');
    return frameNo === 'none' ? null : { frame: Number(frameNo), timeMs: Number(timeMs) };
  });
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function savePng(name, data) {
  fs.mkdirSync(OUT, { recursive: true });
  const p = path.join(OUT, name);
  fs.writeFileSync(p, data);
  return p;
}
