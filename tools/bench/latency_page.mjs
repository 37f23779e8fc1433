// Watches one device on the real page in headless Chromium for SECONDS and prints,
// as one JSON line, every stamped frame the page presented:
// {frame, captureMs, displayMs, latencyMs, receiveMs, presentMs, decodeMs}
// (web/tile.js's samples), deduplicated, from the moment the viewer is live.
//   node tools/bench/latency_page.mjs URL DEVICE SECONDS
import { inbound, launchBrowser, sleep, waitFor } from '../../tests/browser/lib.mjs';

const [url, id, seconds] = process.argv.slice(2);
const browser = await launchBrowser();
try {
  await browser.page.goto(`${url}&watch=${id}`);
  await browser.page.bringToFront();
  await waitFor(async () => {
    const s = await inbound(browser.page, id);
    return { ok: s && s.framesDecoded > 30, seen: s };
  }, 20000, 'the first second of video');
  // A viewer joins from the plugin's GOP cache: its first frames are the cached
  // ones, seconds old, sent faster than live. Count only what comes once it is
  // live (a frame shown within 1 s of its capture, then one more second).
  await waitFor(async () => {
    const s = await browser.page.evaluate((id) => window.outpost.tiles.get(id).samples.slice(-1)[0], id);
    if (process.env.OUTPOST_DEBUG && s) console.error(`live? frame ${s.frame} latency ${s.latencyMs.toFixed(0)} received ${(s.receiveMs - s.captureMs).toFixed(0)}`);
    return { ok: s && s.latencyMs < 1000, seen: s };
  }, 20000, 'live video');
  await sleep(1000);
  const before = new Set(await browser.page.evaluate((id) => window.outpost.tiles.get(id).samples.map((s) => s.frame), id));
  const seen = new Map();
  const t0 = Date.now();
  const first = await inbound(browser.page, id);
  while (Date.now() - t0 < Number(seconds) * 1000) {
    // the page keeps the last 120 samples (2 s at 60 fps): polling every 0.4 s misses none
    const samples = await browser.page.evaluate((id) => window.outpost.tiles.get(id).samples, id);
    for (const s of samples) if (!before.has(s.frame)) seen.set(s.frame, s);
    await sleep(400);
  }
  const last = await inbound(browser.page, id);
  const stats = {
    framesDecoded: last.framesDecoded - first.framesDecoded,
    seconds: (last.at - first.at) / 1000,
    packetsLost: last.packetsLost - first.packetsLost,
  };
  console.log(JSON.stringify({ samples: [...seen.values()].sort((a, b) => a.frame - b.frame), stats }));
} catch (e) {
  // what the page said, for the diagnosis
  const tile = await browser.page.evaluate((id) => {
    const t = window.outpost && window.outpost.tiles.get(id);
    return t ? { state: t.state, notice: t.notice.textContent } : null;
  }, id).catch(() => null);
  console.error(`${e.message}\ntile: ${JSON.stringify(tile)}\n${browser.log.slice(-20).join('\n')}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
