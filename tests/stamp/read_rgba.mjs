// node read_rgba.mjs WIDTHxHEIGHT FILE: reads raw RGBA frames of that size and
// prints one line per frame with web/stamp.js, as tools/stamp-read does with
// I420: "index frame time_ms" or "index none". Each frame is read twice, whole
// and as only its band's rows (what a page would take from its canvas): exit 1
// when the two differ or the input ends inside a frame, 2 on usage.
import { closeSync, openSync, readSync } from "node:fs";
import { readStamp, stampBandHeight } from "../../web/stamp.js";

const [size, path] = process.argv.slice(2);
const m = /^(\d+)x(\d+)$/.exec(size || "");
if (!m || !path) {
  process.stderr.write("usage: node read_rgba.mjs WIDTHxHEIGHT FILE  (raw RGBA frames)\n");
  process.exit(2);
}
const width = Number(m[1]);
const height = Number(m[2]);
const frame = Buffer.alloc(width * height * 4);
const rows = stampBandHeight(width, height);
const fd = openSync(path, "r");
const out = [];
let rc = 0;
for (let index = 0; ; index++) {
  let got = 0;
  while (got < frame.length) {
    const n = readSync(fd, frame, got, frame.length - got, null);
    if (n === 0) break;
    got += n;
  }
  if (got === 0) break;
  if (got < frame.length) {
    const what = `input ends inside frame ${index} (${got} of ${frame.length} bytes)`;
    process.stderr.write(`read_rgba: ${what}\n`);
    rc = 1;
    break;
  }
  const s = readStamp(frame, width, height);
  const band = readStamp(frame.subarray(0, width * rows * 4), width, rows);
  if (JSON.stringify(s) !== JSON.stringify(band)) {
    process.stderr.write(`read_rgba: frame ${index}: ${JSON.stringify(s)} whole, ` +
                         `${JSON.stringify(band)} from the band alone\n`);
    rc = 1;
  }
  out.push(s ? `${index} ${s.frame} ${s.timeMs}` : `${index} none`);
}
closeSync(fd);
process.stdout.write(out.length ? out.join("\n") + "\n" : "");
process.exitCode = rc;
