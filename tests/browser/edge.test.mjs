// Beyond one Janus: the origin (Janus + janus.plugin.outpost, where the device
// ingests, under ASan + UBSan) forwards the device's stream to an edge Janus
// (the stock Streaming plugin, an RTP mountpoint written by tools/edge, SRTP
// with the key it made), and the page, given the edge, plays the device from
// there in headless Chromium.
//   1. the tile says it plays via the edge; the device's frames decode there,
//      their stamps in order (glass to glass printed);
//   2. the edge's keyframe request for its new viewer reaches the origin and is
//      answered from the GOP cache: no keyframe request reaches the device,
//      its encoder is not asked;
//   3. kill -9 of the device's encoder: frames captured after it decode on the
//      edge within 3 s, no reload;
//   4. unforward: the edge's mountpoint gets no more packets.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { closeAll, inbound, killEncoderSeen, launchBrowser, median, sleep, startSpine, tileState, waitFor } from './lib.mjs';

describe('origin and one edge', { timeout: 180000 }, () => {
  let spine, browser, forward;
  const plugin = async () => (await spine.cmd({ cmd: 'status', device: 'cam1' })).device;
  const uplink = async () => (await spine.cmd({ cmd: 'modules', device: 'cam1' })).modules
    .find((m) => m.name === 'uplink').module;
  const forwards = async () => (await spine.cmd({ cmd: 'list_forwards' })).forwards;
  let p0, u0;

  before(async () => {
    spine = await startSpine(['cam1'], ['--edges', '1']);
    await waitFor(async () => {
      const d = await plugin();
      return { ok: d.gop_cache && d.gop_cache.frames > 0, seen: d.gop_cache };
    }, 20000, 'the device streaming, a GOP in the cache');
    forward = (await spine.cmd({ cmd: 'forward', device: 'cam1', edge: 0 })).forward;
    // The forward started from the cache; an edge's request within 2 s of that
    // replay would go to the device (forwards.h): the viewer comes after.
    await sleep(2500);
    [p0, u0] = [await plugin(), await uplink()];
    browser = await launchBrowser();
  });
  after(() => closeAll(browser, spine));

  test('a viewer on the edge decodes the device\'s frames, stamps in order; its keyframe from the cache', async () => {
    const { page } = browser;
    const edgeUrl = spine.info.edges[0];
    await page.goto(`${spine.info.url}&edges=${encodeURIComponent(edgeUrl)}&watch=cam1&keepbands=1`);
    await page.bringToFront();
    await waitFor(async () => {
      const s = await inbound(page, 'cam1');
      const t = s && await tileState(page, 'cam1');
      return { ok: t && t.samples.length >= 30, seen: { s, stamps: t && t.samples.length } };
    }, 20000, 'frames decoded from the edge, their stamps read');
    const via = await page.evaluate(() => {
      const t = window.outpost.tiles.get('cam1');
      return { url: t.via && t.via.url, label: t.node.querySelector('.tile-via').textContent };
    });
    assert.equal(via.url, edgeUrl, 'the tile plays from the edge');
    assert.equal(via.label, 'via edge 1');
    const t = await tileState(page, 'cam1');
    const frames = t.samples.map((s) => s.frame);
    assert.ok(frames.length >= 20, `stamps read on the edge: ${frames.length}`);
    for (let i = 1; i < frames.length; i++) assert.ok(frames[i] > frames[i - 1], `stamps in order: ${frames}`);
    const latency = Math.round(median(t.samples.map((s) => s.latencyMs)));
    const [p1, u1, f1] = [await plugin(), await uplink(), (await forwards())[0]];
    const info = (await spine.cmd({ cmd: 'edge_info', device: 'cam1', edge: 0 })).info;
    console.log(`  ${via.label} (${edgeUrl}): ${frames.length} stamps in order, glass to glass ` +
      `${latency} ms (median); the edge's mountpoint: ${info.viewers} viewer, srtp ${info.srtp}; ` +
      `the forward: ${f1.packets} packets, ${f1.bytes} B, ${f1.sender_reports} SRs, edge asked ` +
      `${f1.plis} PLI ${f1.firs} FIR; GOP cache replays ${p0.gop_cache.replays} -> ` +
      `${p1.gop_cache.replays}; keyframe requests to the device ${p0.keyframe_requests} -> ` +
      `${p1.keyframe_requests}, the encoder asked ${u0.keyframes_requested} -> ${u1.keyframes_requested}`);
    assert.ok(latency > 0 && latency < 2000, `a plausible glass-to-glass latency: ${latency} ms`);
    assert.ok(f1.plis + f1.firs >= 1, 'the edge asked the origin for a keyframe');
    assert.ok(p1.gop_cache.replays > p0.gop_cache.replays, 'answered from the GOP cache');
    assert.equal(p1.keyframe_requests, p0.keyframe_requests, 'no keyframe request to the device');
    assert.equal(u1.keyframes_requested, u0.keyframes_requested, 'the encoder was not asked');
  });

  test('kill -9 of the encoder: frames captured after it decode on the edge within 3 s', async () => {
    const { pid, waitedMs } = await killEncoderSeen(browser.page, spine, 'cam1');
    console.log(`  encoder pid ${pid} killed; frames captured after it shown through the edge ` +
      `${waitedMs} ms later`);
  });

  test('unforward: the edge gets no more packets', async () => {
    const r = await spine.cmd({ cmd: 'unforward', forward_id: forward.forward_id });
    assert.equal(r.forward.forward_id, forward.forward_id);
    await sleep(1500);
    const info = (await spine.cmd({ cmd: 'edge_info', device: 'cam1', edge: 0 })).info;
    const age = info.media[0].age_ms;
    const d = await plugin();
    console.log(`  unforwarded after ${r.forward.packets} packets: the edge's last packet ` +
      `${age} ms ago; forwards left ${JSON.stringify(await forwards())}, the device's ${d.forwards}`);
    assert.ok(age >= 1000, `the edge still gets packets (last ${age} ms ago)`);
    assert.deepEqual(await forwards(), []);
    assert.equal(d.forwards, 0);
  });
});
