// Stamps the service worker's VERSION with a hash of the app shell's files, so that any change
// to pwa/web/ makes browsers install the new version:
//
//     node pwa/tools/stamp-sw.mjs          # rewrite pwa/web/sw.js
//     node pwa/tools/stamp-sw.mjs --check  # exit 1 if the stamp is stale (the tests do this)
//
// The wasm module (pwa/dist/pkg, built, not committed) is not part of the hash.

import { createHash } from "node:crypto";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const WEB = join(dirname(fileURLToPath(import.meta.url)), "..", "web");
const SW = join(WEB, "sw.js");
const PATTERN = /const VERSION = "[^"]*";/;

function files(dir) {
  return readdirSync(dir)
    .filter((name) => !name.startsWith("."))
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    });
}

/** The hash of every shell file except sw.js (16 hex digits). */
export function shellHash() {
  const hash = createHash("sha256");
  for (const path of files(WEB).sort()) {
    if (path === SW) continue;
    hash.update(relative(WEB, path).split(sep).join("/"));
    hash.update("\0");
    hash.update(readFileSync(path));
    hash.update("\0");
  }
  return hash.digest("hex").slice(0, 16);
}

export function stampedVersion() {
  return readFileSync(SW, "utf8").match(PATTERN)?.[0].slice(17, -2);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const want = shellHash();
  const have = stampedVersion();
  if (process.argv.includes("--check")) {
    if (have !== want) {
      console.error(`sw.js VERSION is ${have}, the shell hashes to ${want}: run node pwa/tools/stamp-sw.mjs`);
      process.exit(1);
    }
  } else if (have !== want) {
    writeFileSync(SW, readFileSync(SW, "utf8").replace(PATTERN, `const VERSION = "${want}";`));
    console.log(`sw.js VERSION ${have} -> ${want}`);
  } else {
    console.log(`sw.js VERSION ${have} is current`);
  }
}
