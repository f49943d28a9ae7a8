// Draws Saksi's app icons (an eye: "saksi" means witness) as PNGs, with no dependencies:
//
//     node pwa/tools/make-icons.mjs
//
// writes pwa/web/icons/icon-192.png and icon-512.png. The mark stays inside the central 80 %
// circle, so the same files serve as "maskable" icons. Antialiased by 4×4 supersampling.

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync } from "node:zlib";

const OUT = join(dirname(fileURLToPath(import.meta.url)), "..", "web", "icons");
const BRAND = [0x0b, 0x5d, 0x4b];
const WHITE = [0xff, 0xff, 0xff];
const AMBER = [0xf0, 0xa5, 0x00];

/** The colour at (x, y) in unit coordinates (0..1). */
function colour(x, y) {
  const cx = x - 0.5;
  const cy = y - 0.5;
  // The eye: the intersection of two discs (a vesica), wide and low.
  const r = 0.42;
  const offset = 0.27;
  const inEye = cx * cx + (cy - offset) ** 2 < r * r && cx * cx + (cy + offset) ** 2 < r * r;
  const d = Math.hypot(cx, cy);
  if (inEye) {
    if (d < 0.065) return BRAND;
    if (d < 0.13) return AMBER;
    return WHITE;
  }
  return BRAND;
}

function crc32(bytes) {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

function png(size) {
  const ss = 4;
  const raw = Buffer.alloc(size * (size * 3 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < size; x++) {
      const sum = [0, 0, 0];
      for (let sy = 0; sy < ss; sy++) {
        for (let sx = 0; sx < ss; sx++) {
          const c = colour((x + (sx + 0.5) / ss) / size, (y + (sy + 0.5) / ss) / size);
          sum[0] += c[0];
          sum[1] += c[1];
          sum[2] += c[2];
        }
      }
      const at = y * (size * 3 + 1) + 1 + x * 3;
      for (let i = 0; i < 3; i++) raw[at + i] = Math.round(sum[i] / (ss * ss));
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

for (const size of [192, 512]) {
  const file = join(OUT, `icon-${size}.png`);
  writeFileSync(file, png(size));
  console.log(`wrote ${file}`);
}
