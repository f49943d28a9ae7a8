// The PWA as an installable app: the manifest and its icons, the service worker, the shell
// starting with no network (and with no server at all), the stamp of the service worker's
// version, and the transfer size of shell + wasm (gzip) and the first and offline load times
// on a slow-3G profile.

import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";

import { shellHash, stampedVersion } from "../../pwa/tools/stamp-sw.mjs";
import { artifactsDir, forgeCertificate, httpsRequest, saveArtifacts, startServer } from "./helpers.mjs";
import { newPhone, onScreen, persistentPhone, phoneSuite, screenshot, startSaksi } from "./phone.mjs";

const suite = await phoneSuite({});
const browser = suite.browser;
let saksi = suite.saksi;

test("the service worker's VERSION is stamped from the current shell files", () => {
  assert.equal(stampedVersion(), shellHash(), "run `node pwa/tools/stamp-sw.mjs`");
});

/** The dimensions in a PNG's IHDR. */
function pngSize(bytes) {
  assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47], "a PNG");
  return [bytes.readUInt32BE(16), bytes.readUInt32BE(20)];
}

test("installable: valid manifest, 192 and 512 px icons, an active service worker; the shell starts offline", { timeout: 180_000 }, async (t) => {
  const { context, page, close } = await persistentPhone();
  t.after(async () => {
    if (!t.passed) await saveArtifacts(page, "pwa-shell");
    await close();
  });
  await page.goto(`${saksi.url}/`);
  await onScreen(page, "login");
  await screenshot(page, "01-login");

  // The manifest, as the browser fetched and parsed it.
  const cdp = await context.newCDPSession(page);
  const { url: manifestUrl, errors, data } = await cdp.send("Page.getAppManifest");
  assert.equal(new URL(manifestUrl).pathname, "/manifest.webmanifest");
  assert.deepEqual(errors, [], "the manifest parses without errors");
  const manifest = JSON.parse(data);
  assert.equal(manifest.display, "standalone");
  assert.equal(manifest.start_url, "/");
  assert.match(manifest.name, /Saksi/);
  assert.match(manifest.name, /សាក្សី/);
  for (const size of [192, 512]) {
    const icon = manifest.icons.find((i) => i.sizes === `${size}x${size}` && i.purpose === "any");
    assert.ok(icon, `a ${size}px icon`);
    // Fetched by the page (Node-side requests do not share the browser's trust store).
    const res = await page.evaluate(async (src) => {
      const r = await fetch(src);
      return { status: r.status, type: r.headers.get("content-type"), bytes: [...new Uint8Array(await r.arrayBuffer())] };
    }, icon.src);
    assert.equal(res.status, 200);
    assert.equal(res.type, "image/png");
    assert.deepEqual(pngSize(Buffer.from(res.bytes)), [size, size]);
  }

  // The service worker is active and controls the page.
  const sw = await page.evaluate(async () => {
    const reg = await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((ok) => navigator.serviceWorker.addEventListener("controllerchange", ok, { once: true }));
    }
    return { state: reg.active.state, scope: reg.scope, controlled: Boolean(navigator.serviceWorker.controller) };
  });
  assert.deepEqual(sw, { state: "activated", scope: `${saksi.url}/`, controlled: true });
  const { installabilityErrors } = await cdp.send("Page.getInstallabilityErrors");
  assert.deepEqual(installabilityErrors, [], "Chromium sees no installability problem");

  // The shell is cached; nothing from /api is.
  const cached = await page.evaluate(async () => {
    const names = await caches.keys();
    const urls = [];
    for (const name of names) for (const r of await (await caches.open(name)).keys()) urls.push(new URL(r.url).pathname);
    return { names, urls };
  });
  assert.equal(cached.names.length, 1);
  // The shell hash, then (stamped by server/build.rs) the hash of the wasm the binary embeds.
  assert.match(cached.names[0], /^saksi-shell-[0-9a-f]{16}-[0-9a-f]{12}$/);
  for (const path of ["/index.html", "/js/app.js", "/pkg/saksi_wasm.js", "/pkg/saksi_wasm_bg.wasm", "/manifest.webmanifest"]) {
    assert.ok(cached.urls.includes(path), `${path} is cached`);
  }
  assert.ok(!cached.urls.some((u) => u.startsWith("/api")), "no API response is cached");

  // Offline: the shell (with its wasm) starts from the cache.
  await context.setOffline(true);
  await page.reload();
  await onScreen(page, "login");
  assert.equal(await page.locator("h1").textContent(), "Sign in");

  // With the server gone entirely, too.
  await context.setOffline(false);
  await saksi.stop();
  await page.reload();
  await onScreen(page, "login");
  assert.ok(await page.evaluate(() => typeof WebAssembly === "object" && document.querySelector("form") !== null));
  assert.deepEqual(page.problems.filter((p) => !/Failed to load resource|ERR_/.test(p)), []);
  saksi = suite.saksi = await startSaksi({});
});

test("Chromium refuses a certificate the local CA signs for an address outside tls_names", { timeout: 60_000 }, async (t) => {
  // The test CA was made for localhost and 127.0.0.1. With its key (as a thief of the server
  // would have it) sign for 127.0.0.2, which is just as reachable here, and for 127.0.0.1 as a
  // control; serve each with `tls = "files"`.
  const results = {};
  for (const ip of ["127.0.0.2", "127.0.0.1"]) {
    const forged = await forgeCertificate([ip]);
    const server = await startServer({
      listen: `${ip}:0`,
      env: { SAKSI_TLS: "files", SAKSI_TLS_CERT: forged.cert, SAKSI_TLS_KEY: forged.key },
    });
    t.after(() => server.stop());
    assert.ok(server.url.startsWith(`https://${ip}:`), server.url);
    const page = await newPhone(browser);
    t.after(() => page.context().close());
    const failed = new Promise((ok) => {
      page.on("requestfailed", (r) => r.url().startsWith(server.url) && ok(r.failure()?.errorText));
      page.on("load", () => ok("loaded"));
    });
    await page.goto(`${server.url}/`).catch(() => {});
    results[ip] = await failed;
  }
  t.diagnostic(`Chromium on the forged certificates: ${JSON.stringify(results)}`);
  // Chromium refuses the certificate as invalid (its critical name constraints are broken),
  // not for a wrong name (ERR_CERT_COMMON_NAME_INVALID): the same certificate for 127.0.0.1
  // loads.
  assert.match(results["127.0.0.2"], /ERR_CERT_(INVALID|NAME_CONSTRAINT_VIOLATION)\b/, JSON.stringify(results));
  assert.equal(results["127.0.0.1"], "loaded", JSON.stringify(results));
});

test("the browser trusts the server only through the installed CA: another server's own CA is refused", { timeout: 60_000 }, async (t) => {
  // A server that made its own CA, which this browser's NSS database does not hold: the same
  // browser that installs the app from the test servers must refuse it, or the trust above
  // proves nothing.
  const stranger = await startServer({ ownCa: true });
  t.after(() => stranger.stop());
  const page = await newPhone(browser);
  t.after(() => page.context().close());
  const failed = new Promise((ok) =>
    page.on("requestfailed", (r) => r.url().startsWith(stranger.url) && ok(r.failure()?.errorText)),
  );
  await page.goto(`${stranger.url}/`).catch(() => {});
  assert.match(await failed, /ERR_CERT_AUTHORITY_INVALID/);
  const trusted = await newPhone(browser);
  t.after(() => trusted.context().close());
  await trusted.goto(`${saksi.url}/`);
  await onScreen(trusted, "login");
});

/** GET with `accept-encoding: gzip`: the bytes on the wire and whether they were gzip. */
function fetchGzip(url) {
  return new Promise((ok, fail) => {
    httpsRequest(url, { headers: { "accept-encoding": "gzip" } }, (res) => {
      let bytes = 0;
      res.on("data", (c) => (bytes += c.length));
      res.on("end", () => ok({ status: res.statusCode, bytes, encoding: res.headers["content-encoding"] || "identity" }));
    }).then((req) => {
      req.on("error", fail);
      req.end();
    }, fail);
  });
}

test("transfer size of shell + wasm (gzip), first load and offline reload on slow 3G", { timeout: 180_000 }, async (t) => {
  const swText = await readFile(new URL("../../pwa/web/sw.js", import.meta.url), "utf8");
  const shell = JSON.parse(swText.match(/const SHELL = (\[[^\]]*\])/)[1].replace(/,\s*\]/, "]"));
  const sizes = {};
  for (const path of shell) {
    const r = await fetchGzip(`${saksi.url}${path}`);
    assert.equal(r.status, 200, path);
    sizes[path] = r;
  }
  const wasm = sizes["/pkg/saksi_wasm_bg.wasm"].bytes;
  const shellBytes = Object.entries(sizes)
    .filter(([p]) => p !== "/pkg/saksi_wasm_bg.wasm" && p !== "/")
    .reduce((n, [, r]) => n + r.bytes, 0);
  assert.equal(sizes["/pkg/saksi_wasm_bg.wasm"].encoding, "gzip");

  // First load and an offline reload with a slow-3G profile (DevTools: 400 kbit/s, 400 ms RTT).
  const page = await newPhone(browser);
  const context = page.context();
  t.after(() => context.close());
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.emulateNetworkConditions", {
    offline: false,
    latency: 400,
    downloadThroughput: (400 * 1024) / 8,
    uploadThroughput: (400 * 1024) / 8,
  });
  let started = Date.now();
  await page.goto(`${saksi.url}/`, { timeout: 120_000 });
  await onScreen(page, "login", 120_000);
  const firstLoadMs = Date.now() - started;
  await page.evaluate(() => navigator.serviceWorker.ready);
  await context.setOffline(true);
  started = Date.now();
  await page.reload();
  await onScreen(page, "login");
  const offlineLoadMs = Date.now() - started;

  const report = {
    shell_gzip_bytes: shellBytes,
    wasm_gzip_bytes: wasm,
    total_gzip_bytes: shellBytes + wasm,
    files: Object.fromEntries(Object.entries(sizes).map(([p, r]) => [p, `${r.bytes} ${r.encoding}`])),
    slow3g_first_load_ms: firstLoadMs,
    offline_reload_ms: offlineLoadMs,
  };
  const dir = await artifactsDir("pwa");
  await writeFile(join(dir, "sizes.json"), JSON.stringify(report, null, 2) + "\n");
  t.diagnostic(
    `shell ${shellBytes} B + wasm ${wasm} B = ${shellBytes + wasm} B gzip; ` +
      `slow-3G first load ${firstLoadMs} ms, offline reload ${offlineLoadMs} ms`,
  );
  assert.ok(shellBytes < 100_000, `the shell stays small (${shellBytes} B gzip)`);
});
