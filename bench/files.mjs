// Scenario (e) of `cargo xtask bench`, the phone's side: the page's extra memory while a large
// file is hashed (SHA-256, in the wasm) and encrypted piece by piece into the phone's store.
//
//   SAKSI_TEST_CA_DIR=DATA_DIR node bench/files.mjs --url https://127.0.0.1:PORT \
//       --user NAME --password PASSWORD [--mb 100] [--runs N]
//
// Per run, in a fresh phone context (360×640): sign in, set the PIN, create a family statement,
// then attach a file of --mb MB (random bytes, written to a temporary file and picked through
// the file input: the same pipeline a recording takes, a piece at a time). The memory is the
// resident set of Chromium's renderer processes (/proc/<pid>/status, VmRSS, summed), sampled
// every 50 ms: its peak while the file is stored, less its level with the record open just
// before. Prints one JSON line: `extra_mb` and `seconds` per run.

import { randomBytes } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { createRecord, launchPhoneBrowser, newPhone, signIn } from "../tests/browser/phone.mjs";

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const url = arg("--url");
const user = arg("--user");
const password = arg("--password");
const mb = Number(arg("--mb", "100"));
const runs = Number(arg("--runs", "3"));
if (!url || !user || !password) {
  console.error("usage: node bench/files.mjs --url URL --user NAME --password PASSWORD [--mb N] [--runs N]");
  process.exit(2);
}

/** Resident memory (bytes) of every Chromium renderer process. */
function renderers() {
  let total = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "latin1");
      if (!cmdline.includes("--type=renderer")) continue;
      const status = readFileSync(`/proc/${pid}/status`, "latin1");
      const kb = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] || 0);
      total += kb * 1024;
    } catch {
      // The process ended.
    }
  }
  return total;
}

const dir = await mkdtemp(join(tmpdir(), "saksi-bench-files-"));
const path = join(dir, "recording.webm");
await writeFile(path, randomBytes(mb * 1_000_000));
const browser = await launchPhoneBrowser();
const extra = [];
const seconds = [];
try {
  for (let run = 0; run < runs; run++) {
    const page = await newPhone(browser);
    await signIn(page, url, user, password, { device: `bench phone ${run}` });
    await createRecord(page, "family_statement");
    // Offline: the measure is capture, not upload.
    await page.context().setOffline(true);
    await page.waitForTimeout(1_000);
    const before = renderers();
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, renderers())), 50);
    const started = Date.now();
    await page.setInputFiles('input[data-capture="file"]', path);
    await page.waitForSelector("li.file", { timeout: 600_000 });
    const took = (Date.now() - started) / 1000;
    clearInterval(sampler);
    peak = Math.max(peak, renderers());
    extra.push(Math.round((peak - before) / 1e5) / 10);
    seconds.push(Math.round(took * 10) / 10);
    console.error(`files.mjs: run ${run + 1}: ${mb} MB stored in ${took.toFixed(1)} s, renderer peak +${((peak - before) / 1e6).toFixed(1)} MB`);
    await page.context().close();
  }
} finally {
  await browser.close();
  await rm(dir, { recursive: true, force: true });
}
console.log(JSON.stringify({ mb, extra_mb: extra, seconds }));
