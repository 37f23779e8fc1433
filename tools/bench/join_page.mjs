// Viewers joining a device on the real page in headless Chromium. One viewer
// (page A) watches throughout: the live latency to compare with. Then JOINS
// times, a second page (B) opens, watches for SECONDS and closes; before each,
// the driver waits WAIT_MS (a phase within the device's GOP) while A, in
// front, is sampled (a tab behind another gets no frame callbacks). Prints,
// per join, one JSON line: the join as B saw it (start sent -> first frame
// shown), B's stamped frames over its first SECONDS {frame, captureMs,
// displayMs, latencyMs} and A's over the 1.5 s before B opened.
//   node tools/bench/join_page.mjs URL DEVICE JOINS WAIT_MS SECONDS
import { inbound, launchBrowser, sleep, waitFor } from '../../tests/browser/lib.mjs';

const [url, id, joins, waitMs, seconds] = process.argv.slice(2);

async function collect(page, into) {
  const samples = await page.evaluate((id) => window.outpost.tiles.get(id).samples, id);
  for (const s of samples) into.set(s.frame, s);
}

const browser = await launchBrowser();
try {
  const a = browser.page;
  await a.goto(`${url}&watch=${id}`);
  await waitFor(async () => {
    const s = await inbound(a, id);
    return { ok: s && s.framesDecoded > 60, seen: s };
  }, 20000, 'two seconds of video on the first page');
  for (let j = 0; j < Number(joins); j++) {
    const seenA = new Map(), seenB = new Map();
    const until = Date.now() + Math.max(Number(waitMs), 1500);
    while (Date.now() < until) {
      if (until - Date.now() < 1500) await collect(a, seenA);
      await sleep(150);
    }
    const b = await browser.ctx.newPage();
    await b.goto(`${url}&watch=${id}`);
    await b.bringToFront(); // requestVideoFrameCallback needs a foreground tab
    await waitFor(async () => {
      const t = await b.evaluate((id) => {
        const t = window.outpost && window.outpost.tiles.get(id);
        return t && t.startSentAt;
      }, id);
      return { ok: !!t, seen: t };
    }, 20000, 'the second page starting');
    const t0 = Date.now();
    while (Date.now() - t0 < Number(seconds) * 1000) {
      await collect(b, seenB);
      await sleep(150);
    }
    const { startSentAt, firstFrameAt } = await b.evaluate((id) => {
      const t = window.outpost.tiles.get(id);
      return { startSentAt: t.startSentAt, firstFrameAt: t.firstFrameAt };
    }, id);
    const stats = await inbound(b, id);
    console.log(JSON.stringify({
      startSentAt, firstFrameAt, framesDecoded: stats && stats.framesDecoded, stats,
      b: [...seenB.values()].sort((x, y) => x.frame - y.frame),
      a: [...seenA.values()].sort((x, y) => x.frame - y.frame),
    }));
    await b.close();
    await a.bringToFront();
  }
} finally {
  await browser.close();
}
