// The coordinator console in a real browser (headless Chromium), against the real server from
// SAKSI_BIN with a temporary data directory.
//
// An admin sets up two monitors and a case through the console's own admin pages. The two
// monitors are two more browser contexts, each driving the PWA's wasm Engine (served by the
// server at /pkg/) over a real WebSocket to /sync: they edit the same court observation while
// disconnected, so "defence lawyer present" ends up in conflict. The admin opens the record:
// its screenshot with the conflict is kept in tests/artifacts/console-record-conflict/. The
// admin then resolves the conflict with one click and both monitors' engines receive it.
// The printable report is printed to PDF, kept beside the screenshots.
//
// Run: `cargo xtask test`, or `SAKSI_BIN=target/debug/saksi node --test tests/browser/`.

import assert from "node:assert/strict";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { artifactsDir, launchBrowser, newPage, saveArtifacts, startServer } from "./helpers.mjs";

const PASSWORD = "correct horse battery staple";
const COURT = "សាលាដំបូងរាជធានីភ្នំពេញ";
const NARRATIVE =
  "ព្រឹកនេះ សវនាការបានចាប់ផ្តើមយឺតជាងការគ្រោងទុកមួយម៉ោង។ ជនជាប់ចោទត្រូវបាននាំមកដោយពាក់ខ្នោះដៃ។ ".repeat(12) +
  "\n\nសេចក្តីសន្និដ្ឋាន៖ តុលាការមិនបានផ្តល់អ្នកបកប្រែទេ។";

let browser;
let server;
let adminPassword;

/** Waits until the server has printed the first admin's one-time password. */
async function firstAdminPassword(output, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = output.join("").match(/one-time password:\s*\n\s*(\S+)/);
    if (match) return match[1];
    if (Date.now() > deadline) throw new Error(`no admin password in:\n${output.join("")}`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

before(async () => {
  server = await startServer();
  adminPassword = await firstAdminPassword(server.output);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Signs in to the console through its form. */
async function signIn(page, username, password) {
  await page.goto(`${server.url}/console/login`);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(/\/console\/records$/), page.click("button.primary")]);
}

/** Creates an account through the console's users page. */
async function createUser(page, username, role) {
  await page.goto(`${server.url}/console/admin/users`);
  const form = page.locator('form[action="/console/admin/users"]');
  await form.locator('input[name="username"]').fill(username);
  await form.locator('select[name="role"]').selectOption(role);
  await form.locator('input[name="password"]').fill(PASSWORD);
  await Promise.all([page.waitForURL(/done=created/), form.locator("button").click()]);
}

/**
 * A phone: a browser context signed in through the JSON API, with the wasm Engine connected
 * to /sync (the session cookie authenticates the WebSocket). `window.phone` in the page holds
 * the engine and small helpers: flush, connect, disconnect, until.
 */
async function openPhone(username) {
  const page = await newPage(browser);
  // Any page of the origin will do as a place to run the engine; the browser signs in from it
  // (its cookie then authenticates the WebSocket).
  await page.goto(`${server.url}/console/login`);
  const login = await page.evaluate(async (body) => {
    const res = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: res.status, text: await res.text() };
  }, { username, password: PASSWORD, device_name: `${username}'s phone` });
  assert.equal(login.status, 200, login.text);
  const { device_id: device, user } = JSON.parse(login.text);
  await page.evaluate(
    async ({ editor }) => {
      const wasm = await import("/pkg/saksi_wasm.js");
      await wasm.default();
      const random = (n) => crypto.getRandomValues(new Uint8Array(n));
      const engine = new wasm.Engine(`${editor.user}-tab`, random(16), JSON.stringify(editor));
      const phone = { engine, random, ws: null, events: [] };
      phone.flush = () => {
        if (phone.ws?.readyState !== WebSocket.OPEN) return;
        for (const frame of engine.takeOutgoing()) phone.ws.send(frame);
      };
      phone.connect = () =>
        new Promise((ok, fail) => {
          const ws = new WebSocket(`wss://${location.host}/sync`);
          ws.binaryType = "arraybuffer";
          phone.ws = ws;
          ws.onopen = () => ws.send(engine.connect());
          ws.onmessage = (event) => {
            phone.events.push(...JSON.parse(engine.receive(new Uint8Array(event.data))));
            phone.flush();
            if (engine.isConnected()) ok();
          };
          ws.onerror = () => fail(new Error("WebSocket error"));
        });
      phone.disconnect = () => {
        phone.ws.onmessage = null;
        phone.ws.close();
        phone.ws = null;
        engine.disconnected();
      };
      phone.until = (condition, what, ms = 30_000) =>
        new Promise((ok, fail) => {
          const start = Date.now();
          const tick = () => {
            phone.flush();
            if (condition()) return ok();
            if (Date.now() - start > ms) return fail(new Error(`timed out waiting for ${what}`));
            setTimeout(tick, 25);
          };
          tick();
        });
      window.phone = phone;
      await phone.connect();
    },
    { editor: { user: user.username, device, role: user.role } },
  );
  return page;
}

test("a coordinator sees a conflict side by side and resolves it for both phones", async (t) => {
  const admin = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  const phones = [];
  t.after(async () => {
    if (!t.passed) {
      await saveArtifacts(admin, "console-admin-failure");
      for (const [i, p] of phones.entries()) await saveArtifacts(p, `console-phone-${i}-failure`);
    }
    await admin.context().close();
    for (const p of phones) await p.context().close();
  });

  // The admin sets up the team in the console.
  await signIn(admin, "admin", adminPassword);
  await createUser(admin, "sophea", "monitor");
  await createUser(admin, "vanna", "monitor");
  await admin.goto(`${server.url}/console/admin/cases`);
  await admin.locator('form[action="/console/admin/cases"] input[name="name"]').fill("ករណី ក-១២");
  await Promise.all([
    admin.waitForURL(/done=case/),
    admin.locator('form[action="/console/admin/cases"] button').click(),
  ]);
  for (const name of ["sophea", "vanna"]) {
    const add = admin.locator('form[action$="/members"]');
    await add.locator('select[name="username"]').selectOption(name);
    await Promise.all([admin.waitForURL(/done=added/), add.locator("button").click()]);
  }
  const caseId = (await admin.locator("article.case .meta .device-id").first().textContent()).trim();

  // Sophea observes the hearing; Vanna fetches the record.
  const sophea = await openPhone("sophea");
  const vanna = await openPhone("vanna");
  phones.push(sophea, vanna);
  const id = await sophea.evaluate(
    async ({ caseId, court, narrative }) => {
      const { engine, random } = window.phone;
      const now = Date.now();
      const id = engine.createRecord("court_observation", caseId, now, random(16));
      engine.setField(id, "court", JSON.stringify(court), now + 1);
      engine.setField(id, "case_number", JSON.stringify("០១២/២០២៦"), now + 2);
      engine.setField(id, "hearing_date", JSON.stringify("2026-03-02"), now + 3);
      engine.setList(id, "judges", JSON.stringify(["ចៅក្រម សុខ ចាន់ធា", "Judge B"]), now + 4);
      engine.setText(id, "narrative", narrative, now + 5);
      await window.phone.until(() => engine.isSynced(id), "the record to reach the server");
      return id;
    },
    { caseId, court: COURT, narrative: NARRATIVE },
  );
  await vanna.evaluate(async (id) => {
    const { engine } = window.phone;
    engine.request(id);
    await window.phone.until(() => engine.has(id) && !engine.isEmpty(id), "the record");
  }, id);

  // Both go offline and disagree on whether the defence lawyer was present.
  await sophea.evaluate((id) => {
    window.phone.disconnect();
    window.phone.engine.setField(id, "counsel_present", JSON.stringify("yes"), Date.now());
  }, id);
  await vanna.evaluate((id) => {
    const { engine } = window.phone;
    window.phone.disconnect();
    engine.setField(id, "verdict", JSON.stringify("convicted"), Date.now());
    engine.spliceText(id, "narrative", 0, 0, "The accused looked unwell. ", Date.now());
    engine.setField(id, "counsel_present", JSON.stringify("no"), Date.now());
  }, id);
  for (const phone of [sophea, vanna]) {
    await phone.evaluate(async (id) => {
      const { engine } = window.phone;
      await window.phone.connect();
      await window.phone.until(() => engine.isSynced(id), "the offline edits to sync");
    }, id);
  }
  for (const phone of [sophea, vanna]) {
    await phone.evaluate(async (id) => {
      const { engine } = window.phone;
      await window.phone.until(
        () => JSON.parse(engine.view(id)).conflicts.some((c) => c.field === "counsel_present"),
        "both values to merge",
      );
    }, id);
  }

  // The records table flags it.
  const dir = await artifactsDir("console-record-conflict");
  await admin.goto(`${server.url}/console/records`);
  assert.equal(await admin.locator("tr.has-conflict").count(), 1);
  await admin.screenshot({ path: join(dir, "records.png"), fullPage: true });

  // On a phone-sized screen the table is cards: nothing scrolls sideways.
  const narrow = await newPage(browser, { viewport: { width: 360, height: 640 }, isMobile: true });
  await narrow.context().addCookies(await admin.context().cookies());
  await narrow.goto(`${server.url}/console/records`);
  assert.equal(await narrow.locator("tr.has-conflict").count(), 1);
  const [scrollWidth, tableRight, width] = await narrow.evaluate(() => [
    Math.max(document.documentElement.scrollWidth, ...[...document.querySelectorAll("main, main *")].map((e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX !== "visible" ? e.scrollWidth : 0)),
    document.querySelector("table.records").getBoundingClientRect().right,
    window.innerWidth,
  ]);
  // (A phone widens its layout to fit wide content and zooms out: the width must stay 360.)
  assert.ok(width === 360 && scrollWidth <= width && tableRight <= width, `the page scrolls to ${scrollWidth} px, the table ends at ${tableRight} px, on a ${width} px screen`);
  await narrow.screenshot({ path: join(dir, "records-360.png"), fullPage: true });
  await narrow.context().close();

  // The coordinator's view of the record, with the conflict side by side.
  await admin.goto(`${server.url}/console/records/${id}`);
  await admin.locator("section.conflicts").waitFor();
  assert.match(await admin.locator("#conflicts-h").textContent(), /Conflicts to resolve \(1\)/);
  const values = admin.locator("#conflict-counsel_present li.value");
  assert.equal(await values.count(), 2);
  const byText = (await values.allTextContents()).join("\n");
  assert.match(byText, /sophea on “sophea's phone”/);
  assert.match(byText, /vanna on “vanna's phone”/);
  assert.ok((await admin.locator("dd.narrative").textContent()).includes("សេចក្តីសន្និដ្ឋាន៖"));
  // The stylesheet applied (no inline style is allowed by the CSP).
  const background = await admin
    .locator("section.conflicts")
    .evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(background, "rgb(255, 244, 229)");
  await admin.screenshot({ path: join(dir, "record-conflict.png"), fullPage: true });

  // The same page with Khmer labels.
  await Promise.all([admin.waitForURL(new RegExp(`/console/records/${id}$`)), admin.click('button[name="lang"]')]);
  assert.equal(await admin.getAttribute("html", "lang"), "km");
  await admin.screenshot({ path: join(dir, "record-conflict-km.png"), fullPage: true });
  await Promise.all([admin.waitForURL(new RegExp(`/console/records/${id}$`)), admin.click('button[name="lang"]')]);

  // One click on Vanna's value resolves it; both phones receive the resolution.
  const vannas = values.filter({ hasText: "vanna's phone" });
  await Promise.all([admin.waitForURL(/done=resolved/), vannas.locator("button").click()]);
  assert.match(await admin.locator(".flash").textContent(), /chosen value is saved/);
  assert.equal(await admin.locator("section.conflicts").count(), 0);
  await admin.screenshot({ path: join(dir, "record-resolved.png"), fullPage: true });
  for (const phone of [sophea, vanna]) {
    const view = await phone.evaluate(async (id) => {
      const { engine } = window.phone;
      await window.phone.until(
        () => JSON.parse(engine.view(id)).conflicts.length === 0,
        "the resolution to arrive",
      );
      return JSON.parse(engine.view(id));
    }, id);
    assert.equal(view.fields.counsel_present, "no");
    assert.ok(view.review.some((e) => e.action === "resolve" && e.author === "admin"));
    assert.ok(!(await phone.evaluate(() => window.phone.events.some((e) => e.type === "refused"))));
  }

  // The printable report, printed to PDF by the browser.
  await admin.goto(`${server.url}/console/report?case=${caseId}`);
  assert.match(await admin.locator("h1").textContent(), /Saksi report/);
  assert.ok((await admin.locator("table.history tr").count()) > 5, "the edit history is listed");
  await admin.screenshot({ path: join(dir, "report.png"), fullPage: true });
  await admin.pdf({ path: join(dir, "report.pdf"), format: "A4", printBackground: true });
  assert.ok((await stat(join(dir, "report.pdf"))).size > 10_000);

  // No CSP violation, no script error on any console page.
  assert.deepEqual(admin.problems, []);
});
