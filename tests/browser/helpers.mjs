// Shared helpers of the browser tests (`node --test tests/browser/`, run by `cargo xtask test`).
//
// - launchBrowser(): headless Debian Chromium through playwright-core (no browser download).
// - newPage(browser, options): a page that records console errors and uncaught exceptions.
// - artifactsDir(name): tests/artifacts/<name>/ (gitignored) for screenshots and logs.
// - saveArtifacts(page, name): a screenshot and the page's console, kept for a failed test.
// - serveStatic(root, extra): a tiny HTTP server on 127.0.0.1 for files (e.g. pwa/dist/pkg).
// - startServer(): the real Saksi server from SAKSI_BIN on a free port with a temporary data
//   directory; stop() kills it and removes the directory.
// - testCa(): the local CA every test server of this process serves with, and browserHome(): a
//   throwaway HOME whose NSS database trusts it, as a user trusts it with `certutil` (the printed
//   step of `saksi serve`). No test passes `--ignore-certificate-errors` or ignores HTTPS errors.
// - httpsRequest(url, options): Node's https.request trusting that CA (for checks outside the
//   browser).

import { execFile, spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { request as nodeHttpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
/** Where `cargo xtask wasm` puts the wasm module and its JS glue. */
export const PKG_DIR = join(ROOT, "pwa", "dist", "pkg");
export const ARTIFACTS_DIR = join(ROOT, "tests", "artifacts");
export const CHROMIUM = process.env.SAKSI_CHROMIUM || "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--headless",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Launches headless Chromium with HOME set to `browserHome()`: it trusts the test servers' local
 * CA through its NSS database, as a user's Chromium does after the printed `certutil` step.
 * Close it in `after()`. `extraArgs` are added to CHROMIUM_ARGS.
 */
export async function launchBrowser(extraArgs = []) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium is not at ${CHROMIUM}: install it with \`apt-get install chromium\` ` +
        "(or set SAKSI_CHROMIUM)",
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    headless: true,
    env: await browserEnv(),
  });
}

/** The environment Chromium runs with: this process's, with HOME at `browserHome()`. */
export async function browserEnv() {
  return { ...process.env, HOME: await browserHome() };
}

/**
 * A new page in a fresh context. `page.problems` collects console errors and uncaught
 * exceptions; `page.consoleLines` every console message.
 * Phone size: `{ viewport: { width: 360, height: 640 }, isMobile: true }`.
 */
export async function newPage(browser, contextOptions = {}) {
  const context = await browser.newContext({ ...contextOptions });
  const page = await context.newPage();
  watch(page);
  return page;
}

/** Collects a page's console errors and uncaught exceptions into `page.problems`. */
export function watch(page) {
  page.problems = [];
  page.consoleLines = [];
  page.on("console", (msg) => {
    page.consoleLines.push(`[${msg.type()}] ${msg.text()}`);
    if (msg.type() === "error") page.problems.push(`console error: ${msg.text()}`);
  });
  page.on("pageerror", (err) => page.problems.push(`uncaught: ${err.stack || err}`));
  return page;
}

/** Temporary directories of this process, removed when it exits. */
const scratch = [];
process.on("exit", () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

let caPromise = null;
/**
 * The local CA of this process's test servers: made once by a first server's first start
 * (`tls = "local_ca"`, the default) and kept, like an operator keeps `data_dir/tls/` when
 * moving a server. Every later test server starts with a copy of that directory, so one
 * browser trusts them all. Returns `{ dir, pem }` (`dir` holds the `tls/` directory).
 * `SAKSI_TEST_CA_DIR=DATA_DIR` names the data directory of a server started elsewhere instead.
 */
export function testCa() {
  caPromise ||= (async () => {
    // A server started elsewhere (the benchmarks' own): trust its data directory's CA.
    const given = process.env.SAKSI_TEST_CA_DIR;
    if (given) return { dir: given, pem: await readFile(join(given, "tls", "ca.pem"), "utf8") };
    const server = await startServer({ ownCa: true });
    // The CA key's passphrase, printed once at the first start (for the test that shows a
    // browser refusing a certificate this CA signs for a name outside its constraints).
    let passphrase = null;
    for (let i = 0; i < 100 && !passphrase; i++) {
      passphrase = server.output.join("").match(/passphrase, shown only now[^\n]*\n\s+(\S+)/)?.[1] || null;
      if (!passphrase) await new Promise((ok) => setTimeout(ok, 50));
    }
    const dir = await mkdtemp(join(tmpdir(), "saksi-ca-"));
    scratch.push(dir);
    await cp(join(server.dataDir, "tls"), join(dir, "tls"), { recursive: true });
    await server.stop();
    return { dir, passphrase, pem: await readFile(join(dir, "tls", "ca.pem"), "utf8") };
  })();
  return caPromise;
}

function run(cmd, args) {
  return new Promise((ok, fail) =>
    execFile(cmd, args, (err, stdout, stderr) => (err ? fail(new Error(`${cmd} ${args.join(" ")}: ${stderr || err}`)) : ok(stdout))),
  );
}

let homePromise = null;
/**
 * A throwaway HOME whose NSS database (`.pki/nssdb`, which Chromium on Linux reads) trusts
 * `testCa()`: the same `certutil` command `saksi serve` prints for its operator.
 */
export function browserHome() {
  homePromise ||= (async () => {
    const { dir } = await testCa();
    const home = await mkdtemp(join(tmpdir(), "saksi-home-"));
    scratch.push(home);
    const db = join(home, ".pki", "nssdb");
    await mkdir(db, { recursive: true });
    try {
      await run("certutil", ["-d", `sql:${db}`, "-N", "--empty-password"]);
      await run("certutil", ["-d", `sql:${db}`, "-A", "-t", "C,,", "-n", "Saksi local CA", "-i", join(dir, "tls", "ca.pem")]);
    } catch (e) {
      throw new Error(`cannot trust the test CA (is libnss3-tools installed?): ${e.message}`);
    }
    return home;
  })();
  return homePromise;
}

/**
 * Node's `https.request` trusting the test servers' CA: `httpsRequest(url, options, onResponse)`
 * returns the request (call `.end()`).
 */
export async function httpsRequest(url, options, onResponse) {
  const { pem } = await testCa();
  return nodeHttpsRequest(url, { ...options, ca: pem }, onResponse);
}

/** A small fetch over `httpsRequest`: `{ status, headers, text(), json() }`. */
export async function httpsFetch(url, { method = "GET", headers = {}, body } = {}) {
  const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  const allHeaders = { ...headers };
  if (payload !== undefined && !allHeaders["content-type"]) allHeaders["content-type"] = "application/json";
  return new Promise((ok, fail) => {
    httpsRequest(url, { method, headers: allHeaders }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        ok({ status: res.statusCode, headers: res.headers, text: () => text, json: () => JSON.parse(text) });
      });
      res.on("error", fail);
    }).then((req) => {
      req.on("error", fail);
      req.end(payload);
    }, fail);
  });
}

/** `tests/artifacts/<name>/`, created. */
export async function artifactsDir(name) {
  const dir = join(ARTIFACTS_DIR, name.replace(/[^\w.-]+/g, "_"));
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Keeps a screenshot and the console of `page` under tests/artifacts/<name>/. */
export async function saveArtifacts(page, name) {
  const dir = await artifactsDir(name);
  await page.screenshot({ path: join(dir, "page.png"), fullPage: true }).catch(() => {});
  await writeFile(join(dir, "console.txt"), (page.consoleLines || []).join("\n") + "\n");
  return dir;
}

const CONTENT_TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".wasm": "application/wasm",
  ".ts": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/**
 * Serves the files under `root` on 127.0.0.1 (a free port). `extra` maps paths to contents
 * served from memory (e.g. `{ "/": "<!doctype html>..." }`). Returns `{ url, close }`.
 */
export async function serveStatic(root, extra = {}) {
  const base = resolve(root);
  const server = createServer(async (req, res) => {
    try {
      const path = decodeURIComponent(new URL(req.url, "http://localhost").pathname);
      if (Object.hasOwn(extra, path)) {
        const type = path.endsWith("/") ? ".html" : extname(path);
        res.writeHead(200, { "content-type": CONTENT_TYPES[type] || "text/plain" });
        res.end(extra[path]);
        return;
      }
      const file = normalize(join(base, path));
      if (!file.startsWith(base + sep)) {
        res.writeHead(403).end();
        return;
      }
      const body = await readFile(file);
      res.writeHead(200, {
        "content-type": CONTENT_TYPES[extname(file)] || "application/octet-stream",
        "cache-control": "no-store",
      });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(0, "127.0.0.1", ok);
  });
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

/** Whether the server binary is available (`cargo xtask test` sets SAKSI_BIN). */
export function serverAvailable() {
  return Boolean(process.env.SAKSI_BIN) && existsSync(process.env.SAKSI_BIN);
}

/**
 * The environment for the server binary: this process's, less the SAKSI_* variables that are
 * not server settings (SAKSI_BIN, SAKSI_CHROMIUM, ...), which the server refuses as typos.
 */
function serverEnv() {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (name.startsWith("SAKSI_") && name !== "SAKSI_LOG") delete env[name];
  }
  return env;
}

/**
 * A certificate and key (`{cert, key}`: file paths) for `names`, signed with the test CA's key
 * without the check `saksi admin renew-certificate` makes (`server/examples/forge_certificate.rs`,
 * which `cargo test` builds beside SAKSI_BIN): what someone holding the CA key could make.
 */
export async function forgeCertificate(names) {
  const { dir, passphrase } = await testCa();
  if (!passphrase) throw new Error("the test CA's passphrase was not printed (SAKSI_TEST_CA_DIR?)");
  const out = await mkdtemp(join(tmpdir(), "saksi-forged-"));
  scratch.push(out);
  const bin = join(resolve(process.env.SAKSI_BIN, ".."), "examples", "forge_certificate");
  const child = spawn(bin, [dir, out, ...names], { stdio: ["pipe", "pipe", "pipe"] });
  let err = "";
  child.stderr.setEncoding("utf8").on("data", (c) => (err += c));
  child.stdin.end(`${passphrase}\n`);
  const code = await new Promise((ok, fail) => {
    child.once("error", fail);
    child.once("exit", ok);
  });
  if (code !== 0) throw new Error(`forge_certificate failed (${code}): ${err}`);
  return { cert: join(out, "cert.pem"), key: join(out, "key.pem") };
}

/**
 * Runs `$SAKSI_BIN admin ARGS...` against a running server's data directory (SQLite allows it
 * beside the server). `input` goes to standard input (passwords). Returns standard output.
 */
export async function admin(server, args, input = "") {
  const child = spawn(process.env.SAKSI_BIN, ["admin", ...args], {
    env: { ...serverEnv(), SAKSI_DATA_DIR: server.dataDir },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.setEncoding("utf8").on("data", (c) => (out += c));
  child.stderr.setEncoding("utf8").on("data", (c) => (err += c));
  // A command that reads nothing may exit before its input is written: that is no error.
  child.stdin.on("error", (e) => {
    if (e.code !== "EPIPE") err += String(e);
  });
  child.stdin.end(input);
  const code = await new Promise((ok, fail) => {
    child.once("error", fail);
    child.once("exit", ok);
  });
  if (code !== 0) throw new Error(`saksi admin ${args[0]} failed (${code}): ${err}`);
  return out;
}

/**
 * Starts the Saksi server (`$SAKSI_BIN serve`) on 127.0.0.1 with a free port and a fresh
 * temporary data directory, and waits for its `listening on https://...` line on stdout.
 * Returns `{ url, dataDir, process, output, stop }`; `stop()` kills it and removes the data
 * directory. `env` adds environment variables (SAKSI_*), `args` adds arguments after `serve`;
 * the data directory starts with the CA of `testCa()` unless `ownCa` (then it makes its own).
 * `dataDir` restarts a stopped server on its data directory (`stop({keepData: true})`), and
 * `listen` on its address (a phone's storage belongs to the origin, port included).
 */
export async function startServer({ env = {}, args = [], timeoutMs = 60_000, ownCa = false, dataDir: reuse = null, listen = "127.0.0.1:0" } = {}) {
  const bin = process.env.SAKSI_BIN;
  if (!bin || !existsSync(bin)) {
    throw new Error(
      "SAKSI_BIN does not name the server binary: run the browser tests with " +
        "`cargo xtask test`, or set SAKSI_BIN=target/debug/saksi",
    );
  }
  const dataDir = reuse || (await mkdtemp(join(tmpdir(), "saksi-test-")));
  if (!ownCa && !reuse) {
    // The CA the test browser trusts (see testCa).
    const { dir } = await testCa();
    await cp(join(dir, "tls"), join(dataDir, "tls"), { recursive: true });
  }
  const child = spawn(bin, ["serve", ...args], {
    env: {
      ...serverEnv(),
      SAKSI_LISTEN: listen,
      SAKSI_DATA_DIR: dataDir,
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output = [];
  let stopped = false;
  const stop = async ({ keepData = false } = {}) => {
    if (!stopped) {
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((ok) => child.once("exit", ok));
        child.kill("SIGKILL");
        await exited;
      }
    }
    if (!keepData) await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise((ok, fail) => {
      const timer = setTimeout(
        () => fail(new Error(`the server did not say where it listens within ${timeoutMs} ms`)),
        timeoutMs,
      );
      let pending = "";
      child.stdout.setEncoding("utf8");
      child.stdout.on("data", (chunk) => {
        output.push(chunk);
        pending += chunk;
        const match = pending.match(/listening on (https?:\/\/\S+)/);
        if (match) {
          clearTimeout(timer);
          ok(match[1].replace(/\/$/, ""));
        }
      });
      child.stderr.setEncoding("utf8");
      child.stderr.on("data", (chunk) => output.push(chunk));
      child.once("error", (err) => {
        clearTimeout(timer);
        fail(err);
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        fail(new Error(`the server exited (${signal || code}) before listening:\n${output.join("")}`));
      });
    });
    return { url, dataDir, process: child, output, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
