// Helpers for the PWA's browser tests: a phone-sized Chromium context, the sign-in and unlock
// flows, the sync status, test accounts made with the admin CLI, and direct looks at what the
// phone stores. All test data is fictional.

import assert from "node:assert/strict";
import { join } from "node:path";
import { after } from "node:test";

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";

import { chromium } from "playwright-core";

import {
  CHROMIUM,
  CHROMIUM_ARGS,
  admin,
  artifactsDir,
  browserEnv,
  httpsFetch,
  launchBrowser,
  newPage,
  saveArtifacts,
  startServer,
  watch,
} from "./helpers.mjs";

/** Chromium for the PWA tests: no flag a phone lacks; it trusts the CA as a user does. */
export function launchPhoneBrowser() {
  return launchBrowser();
}

export const PIN = "24681357";
export const PHONE = {
  viewport: { width: 360, height: 640 },
  isMobile: true,
  hasTouch: true,
  deviceScaleFactor: 2,
  locale: "en-GB",
  timezoneId: "Asia/Phnom_Penh",
};

/** A password made up for one test account. */
export function password(user) {
  return `pw-${user}-${Math.random().toString(36).slice(2)}-Saksi!`;
}

/**
 * A test file's phones and server, started now (top-level await) and closed after the file's
 * tests: a Chromium with nothing a phone lacks (`launch` for a flag a test needs, documented
 * where it is used) and a server with a case and `users` (see `startSaksi`; `options` as there).
 * Returns `{browser, saksi}`; a file that restarts its server puts the new one in `saksi` so
 * that it is the one closed.
 */
export async function phoneSuite(users, { launch = launchPhoneBrowser, ...options } = {}) {
  const suite = { browser: await launch(), saksi: null };
  after(async () => {
    await suite.browser?.close();
    await suite.saksi?.stop();
  });
  suite.saksi = await startSaksi(users, options);
  return suite;
}

/**
 * The usual start of a phone test: `user` (of `saksi`) signs in on `page` (as device `device`),
 * creates a record of `kind`, fills `fields` ({field: value}, in order) and, unless `sync` is
 * false, waits until the server has it all. Returns the record's id.
 */
export async function withRecord(page, saksi, user, { device, kind, fields = {}, sync = true } = {}) {
  await signIn(page, saksi.url, user, saksi.passwords[user], { device });
  const id = await createRecord(page, kind);
  for (const [field, value] of Object.entries(fields)) await fillField(page, field, value);
  if (sync) await waitSynced(page);
  return id;
}

/**
 * Starts the server with a case and its team. `users` maps usernames to roles. Returns
 * `{server, url, caseId, passwords, stop}`.
 */
export async function startSaksi(users, { caseName = "Case 7 (test)", env = {} } = {}) {
  const server = await startServer({ env: { SAKSI_LOG: "warn", ...env } });
  const passwords = {};
  try {
    const out = await admin(server, ["create-case", "--name", caseName]);
    const caseId = out.trim().split(/\s+/).pop();
    assert.match(caseId, /^[1-9A-HJ-NP-Za-km-z]{20,}$/, `create-case printed ${out}`);
    for (const [user, role] of Object.entries(users)) {
      passwords[user] = password(user);
      await admin(server, ["create-user", "--username", user, "--role", role], `${passwords[user]}\n`);
      if (role === "monitor" || role === "liaison") {
        await admin(server, ["add-member", "--case", caseId, "--username", user]);
      }
    }
    return { server, url: server.url, caseId, passwords, stop: server.stop };
  } catch (e) {
    await server.stop();
    throw e;
  }
}

/**
 * A phone with a persistent profile (not an incognito-like context: Chromium refuses to
 * install apps from those). Returns `{context, page, close}`.
 */
export async function persistentPhone() {
  const dir = await mkdtemp(join(tmpdir(), "saksi-profile-"));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
    headless: true,
    env: await browserEnv(),
    ...PHONE,
  });
  const page = watch(context.pages()[0] || (await context.newPage()));
  return {
    context,
    page,
    close: async () => {
      await context.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A phone for one test: its own context (its own storage, like a separate device), closed when
 * the test ends; if the test failed, its screen and console are kept under
 * tests/artifacts/<name>/ first.
 */
export async function testPhone(t, browser, name, options = {}) {
  const page = await newPhone(browser, options);
  t.after(async () => {
    if (!t.passed) await saveArtifacts(page, name);
    await page.context().close();
  });
  return page;
}

/** A new phone (its own browser context: its own storage, like a separate device). */
export async function newPhone(browser, options = {}) {
  return newPage(browser, { ...PHONE, ...options });
}

/**
 * Polls `check` (run here, in Node) until it returns something truthy, and returns that.
 * For state a page cannot wait on itself (IndexedDB, the server's database): Playwright's
 * `waitForFunction` does not await a promise the page function returns.
 */
export async function waitFor(check, timeoutMs = 10_000, what = "condition") {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`${what} not met in ${timeoutMs} ms`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** Waits for the app to show `screen` (body[data-screen]). */
export async function onScreen(page, screen, timeout = 30_000) {
  await page.waitForSelector(`body[data-screen="${screen}"]`, { timeout });
}

/** Signs in and sets the PIN; ends on the records list. */
export async function signIn(page, url, user, pass, { device = `${user}'s test phone`, pin = PIN } = {}) {
  if (page.url() === "about:blank") await page.goto(`${url}/`);
  await onScreen(page, "login");
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', pass);
  await page.fill('input[name="device_name"]', device);
  await page.click('form button[type="submit"]');
  await onScreen(page, "pin");
  await page.fill('input[name="pin"]', pin);
  await page.fill('input[name="pin_repeat"]', pin);
  await page.click('form button[type="submit"]');
  await onScreen(page, "list");
}

export async function unlock(page, pin = PIN) {
  await onScreen(page, "unlock");
  await page.fill('input[name="pin"]', pin);
  await page.click('form button[type="submit"]');
}

/** Waits until the sync status says "up to date" with nothing waiting. */
export async function waitSynced(page, timeout = 30_000) {
  await page.waitForSelector('#sync-status[data-state="synced"][data-waiting="0"]', { timeout });
}

export async function waitOffline(page, waiting) {
  const sel = waiting === undefined ? "" : `[data-waiting="${waiting}"]`;
  await page.waitForSelector(`#sync-status[data-state="offline"]${sel}`);
}

/**
 * Creates a record from the list screen and returns its id (from the open record: the address
 * holds only a token that means nothing once the app is locked).
 */
export async function createRecord(page, kind = "court_observation") {
  await page.click('[data-action="new"]');
  await onScreen(page, "new");
  await page.check(`input[name="kind"][value="${kind}"]`);
  await page.click('form button[type="submit"]');
  await onScreen(page, "record");
  const id = await page.locator("section.screen.record").getAttribute("data-id");
  assert.ok(id && id.length > 20, `a record id on the record screen (${id})`);
  assert.ok(!page.url().includes(id), `the address names no record: ${page.url()}`);
  return id;
}

/** Opens record `id` from the list, as a user taps its card. */
export async function openRecord(page, id) {
  await onScreen(page, "list");
  await page.click(`li[data-id="${id}"] a.card`);
  await onScreen(page, "record");
}

/** Fills a text-like field of the open record and leaves it (commits at once). */
export async function fillField(page, field, value) {
  const input = page.locator(`[data-field="${field}"] input, [data-field="${field}"] textarea`).first();
  await input.fill(value);
  await input.blur();
}

export async function chooseYesNo(page, field, value) {
  await page.locator(`[data-field="${field}"] input[value="${value}"]`).check({ force: true });
}

export async function selectChoice(page, field, value) {
  await page.selectOption(`[data-field="${field}"] select`, value);
}

/** Adds list items to a list field. */
export async function addItems(page, field, items) {
  for (const item of items) {
    await page.click(`[data-field="${field}"] [data-action="add-item"]`);
    const input = page.locator(`[data-field="${field}"] li input`).last();
    await input.fill(item);
  }
  await page.locator(`[data-field="${field}"] li input`).last().blur();
}

/** Waits until the record's "saved" mark shows (the edit is in the encrypted store's queue). */
export async function backToList(page) {
  await page.click('[data-action="back"]');
  await onScreen(page, "list");
}

/** Keeps a 360×640 screenshot under tests/artifacts/pwa/. */
export async function screenshot(page, name) {
  const dir = await artifactsDir("pwa");
  await page.screenshot({ path: join(dir, `${name}.png`) });
}

/** What IndexedDB holds on this phone: `{databases, clear: {key: value}, vault: [{key, bytes}]}`. */
export async function storedData(page) {
  return page.evaluate(async () => {
    const databases = (await indexedDB.databases()).map((d) => d.name);
    if (!databases.includes("saksi")) return { databases, clear: {}, vault: [] };
    const db = await new Promise((ok, fail) => {
      const req = indexedDB.open("saksi");
      req.onsuccess = () => ok(req.result);
      req.onerror = () => fail(req.error);
    });
    const all = (store) =>
      new Promise((ok, fail) => {
        if (!db.objectStoreNames.contains(store)) return ok([]);
        const t = db.transaction(store);
        const s = t.objectStore(store);
        const keys = s.getAllKeys();
        const values = s.getAll();
        t.oncomplete = () => ok(keys.result.map((k, i) => [k, values.result[i]]));
        t.onerror = () => fail(t.error);
      });
    const clear = Object.fromEntries((await all("clear")).map(([k, v]) => [k, typeof v === "object" ? Object.keys(v) : v]));
    const vault = (await all("vault")).map(([key, v]) => ({
      key,
      fields: Object.keys(v),
      bytes: Array.from(v.ct),
    }));
    db.close();
    return { databases, clear, vault };
  });
}

/** Whether `needle` (UTF-8) occurs in `bytes`. */
export function containsUtf8(bytes, needle) {
  const n = [...Buffer.from(needle, "utf8")];
  outer: for (let i = 0; i + n.length <= bytes.length; i++) {
    for (let j = 0; j < n.length; j++) if (bytes[i + j] !== n[j]) continue outer;
    return true;
  }
  return false;
}

/** A signed-in API client (outside the browser), for checking what the server has. */
export async function apiAs(url, user, pass) {
  const res = await httpsFetch(`${url}/api/login`, {
    method: "POST",
    body: { username: user, password: pass, device_name: "test checker" },
  });
  assert.equal(res.status, 200, res.text());
  const { token } = res.json();
  return {
    get: async (path) => {
      const r = await httpsFetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(r.status, 200, r.text());
      return r.json();
    },
    dispose: () => {},
  };
}

/** The devices of `user` (from `saksi admin list-devices`): `[{id, user, name, status}]`. */
export async function devicesOf(server, user) {
  const out = await admin(server, ["list-devices", "--username", user]);
  return out
    .trim()
    .split("\n")
    .slice(1)
    .map((line) => {
      const [id, username, name, , status] = line.split("\t");
      return { id, user: username, name, status };
    });
}

/** The page's console errors and uncaught exceptions, less the browser's own network noise. */
export function problems(page) {
  return page.problems.filter(
    (p) => !/Failed to load resource|net::ERR_|WebSocket connection to .* failed/.test(p),
  );
}
