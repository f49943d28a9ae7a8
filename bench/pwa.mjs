// Scenario (d) of `cargo xtask bench`: the PWA's transfer size and load times, measured as the
// browser test "transfer size of shell + wasm (gzip), first load and offline reload on slow 3G"
// (tests/browser/pwa-shell.test.mjs) does, several times.
//
//   SAKSI_TEST_CA_DIR=DATA_DIR node bench/pwa.mjs --url https://127.0.0.1:PORT --runs N
//
// The browser and the byte counts trust the server's local CA from DATA_DIR/tls/ca.pem, as a
// user's Chromium does after the `certutil` step (tests/browser/helpers.mjs).
//
// Prints one JSON line: the gzip bytes of every file of the service worker's shell (GET with
// `accept-encoding: gzip`, bytes on the wire after the headers), and per run, in a fresh phone
// context with DevTools' slow-3G profile (400 kbit/s each way, 400 ms latency): the first load
// (navigation until the login screen shows) and, after the service worker is ready, an offline
// reload (the context offline; until the login screen shows again). Headless Debian Chromium
// through the browser tests' playwright-core.

import { readFile } from "node:fs/promises";
import { httpsRequest } from "../tests/browser/helpers.mjs";
import { launchPhoneBrowser, newPhone, onScreen } from "../tests/browser/phone.mjs";

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const url = arg("--url");
const runs = Number(arg("--runs", "3"));
if (!url) {
  console.error("usage: node bench/pwa.mjs --url URL [--runs N]");
  process.exit(2);
}

function fetchGzip(target) {
  return new Promise((ok, fail) => {
    httpsRequest(target, { headers: { "accept-encoding": "gzip" } }, (res) => {
      let bytes = 0;
      res.on("data", (c) => (bytes += c.length));
      res.on("end", () => ok({ status: res.statusCode, bytes, encoding: res.headers["content-encoding"] || "identity" }));
    }).then((req) => {
      req.on("error", fail);
      req.end();
    }, fail);
  });
}

const swText = await readFile(new URL("../pwa/web/sw.js", import.meta.url), "utf8");
const shell = JSON.parse(swText.match(/const SHELL = (\[[^\]]*\])/)[1].replace(/,\s*\]/, "]"));
const files = {};
for (const path of shell) {
  const r = await fetchGzip(`${url}${path}`);
  if (r.status !== 200) throw new Error(`${path}: HTTP ${r.status}`);
  files[path] = r;
}
const WASM = "/pkg/saksi_wasm_bg.wasm";
const wasmBytes = files[WASM].bytes;
// "/" is the same document as /index.html in the shell list: counted once.
const shellBytes = Object.entries(files)
  .filter(([p]) => p !== WASM && p !== "/")
  .reduce((n, [, r]) => n + r.bytes, 0);

const browser = await launchPhoneBrowser();
const first = [];
const offline = [];
try {
  for (let r = 0; r < runs; r++) {
    const page = await newPhone(browser);
    const context = page.context();
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: false });
    await cdp.send("Network.emulateNetworkConditions", {
      offline: false,
      latency: 400,
      downloadThroughput: (400 * 1024) / 8,
      uploadThroughput: (400 * 1024) / 8,
    });
    let started = Date.now();
    await page.goto(`${url}/`, { timeout: 180_000 });
    await onScreen(page, "login", 180_000);
    first.push(Date.now() - started);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await context.setOffline(true);
    started = Date.now();
    await page.reload();
    await onScreen(page, "login");
    offline.push(Date.now() - started);
    await context.close();
  }
} finally {
  await browser.close();
}

console.log(
  JSON.stringify({
    shell_gzip_bytes: shellBytes,
    wasm_gzip_bytes: wasmBytes,
    wasm_encoding: files[WASM].encoding,
    files: Object.fromEntries(Object.entries(files).map(([p, r]) => [p, `${r.bytes} ${r.encoding}`])),
    first_load_ms: first,
    offline_reload_ms: offline,
  }),
);
