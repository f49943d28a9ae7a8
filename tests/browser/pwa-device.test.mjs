// S5 on the phone: the PIN lock, auto-lock when idle, the wipe after too many wrong PINs, the
// panic wipe, and the wipe of a device its organisation revoked, at its next contact.

import assert from "node:assert/strict";
import { test } from "node:test";

import { admin } from "./helpers.mjs";
import {
  apiAs,
  devicesOf,
  fillField,
  onScreen,
  phoneSuite,
  problems,
  screenshot,
  signIn,
  storedData,
  testPhone,
  unlock,
  waitFor,
  waitOffline,
  waitSynced,
  withRecord,
} from "./phone.mjs";

const COURT = "តុលាការកំពូល";

// Idle connections closed after 6 s: the server then re-checks each connected device every
// 2 s (a third of that), so a revocation reaches a connected phone quickly.
const { browser, saksi } = await phoneSuite(
  { dara: "monitor", vanna: "monitor", mealea: "monitor", chea: "monitor", bopha: "monitor", srey: "monitor", kanha: "monitor" },
  { env: { SAKSI_IDLE_CONNECTION_SECONDS: "6" } },
);

/** Asserts that nothing of Saksi's data is left on the phone. */
async function assertWiped(page) {
  const stored = await storedData(page);
  assert.ok(!stored.databases.includes("saksi") || stored.vault.length === 0, "no encrypted data left");
  assert.deepEqual(stored.clear, {}, "no salt, key check or counter left");
  const left = await page.evaluate(() => Object.keys(localStorage).filter((k) => k !== "saksi.lang"));
  assert.deepEqual(left, []);
}

test("the PIN locks the app; the lock hides everything and a wrong PIN does not open it", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-lock");
  const id = await withRecord(page, saksi, "dara", { fields: { court: COURT } });

  await page.click('[data-action="back"]');
  await page.click('[data-action="lock"]');
  await onScreen(page, "unlock");
  assert.ok(!(await page.locator("body").textContent()).includes(COURT), "nothing of the record is on screen");
  assert.equal(await page.locator("#sync-status").isHidden(), true);

  await page.fill('input[name="pin"]', "111111");
  await page.click('form button[type="submit"]');
  await page.waitForSelector(".message.error:not([hidden])");
  assert.match(await page.locator(".message.error").textContent(), /Wrong PIN\. 9 attempts left/);
  assert.equal((await storedData(page)).clear.wrongPins, 1);
  await screenshot(page, "08-wrong-pin");

  await unlock(page);
  await onScreen(page, "list");
  assert.equal((await storedData(page)).clear.wrongPins, 0, "a right PIN resets the counter");
  assert.match(await page.locator(`li[data-id="${id}"]`).textContent(), new RegExp(COURT));
  assert.deepEqual(problems(page), []);
});

test("the app locks itself after the idle time and after a while in the background", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-auto-lock");
  await page.clock.install();
  await signIn(page, saksi.url, "chea", saksi.passwords.chea);
  await page.clock.fastForward("04:00");
  assert.equal(await page.evaluate(() => document.body.dataset.screen), "list", "not yet after 4 minutes");
  await page.clock.fastForward("01:30");
  await onScreen(page, "unlock");
  await unlock(page);
  await onScreen(page, "list");

  // Another app in front for a moment: still open. For more than a minute: locked on return.
  const setVisibility = (state) =>
    page.evaluate((s) => {
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => s });
      document.dispatchEvent(new Event("visibilitychange"));
    }, state);
  await setVisibility("hidden");
  await page.clock.fastForward("00:10");
  await setVisibility("visible");
  assert.equal(await page.evaluate(() => document.body.dataset.screen), "list");
  await setVisibility("hidden");
  await page.clock.fastForward("01:05");
  await setVisibility("visible");
  await onScreen(page, "unlock");
});

test("ten wrong PINs wipe the phone's data", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-wrong-pins");
  await withRecord(page, saksi, "vanna", { fields: { court: COURT }, sync: false });
  await page.reload();
  await onScreen(page, "unlock");
  for (let i = 1; i <= 9; i++) {
    await page.fill('input[name="pin"]', `99999${i}`);
    await page.click('form button[type="submit"]');
    await page.waitForFunction(
      (left) =>
        document
          .querySelector(".message.error")
          ?.textContent.includes(left === 1 ? "1 attempt left" : `${left} attempts left`),
      10 - i,
    );
  }
  assert.equal((await storedData(page)).clear.wrongPins, 9);
  await page.fill('input[name="pin"]', "000000");
  await page.click('form button[type="submit"]');
  await onScreen(page, "login");
  assert.equal(await page.locator("[data-notice]").getAttribute("data-notice"), "wiped_notice");
  await assertWiped(page);
  // The device is revoked on the server too, as after the panic action.
  await waitFor(async () => (await devicesOf(saksi.server, "vanna")).every((d) => d.status === "revoked"));
  // The right PIN no longer opens anything: there is nothing left to open.
  await page.reload();
  await onScreen(page, "login");
});

test("the panic action wipes at once after one confirmation, and signs the device out", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-panic");
  await withRecord(page, saksi, "mealea", { fields: { court: COURT }, sync: false });
  await page.click('[data-action="back"]');
  await page.click('[data-action="settings"]');
  await onScreen(page, "settings");
  await page.click('[data-action="panic"]');
  await page.waitForSelector('[data-action="wipe-confirm"]');
  await screenshot(page, "09-panic-confirm");
  await page.click('[data-action="wipe-confirm"]');
  await onScreen(page, "login");
  await assertWiped(page);
  // Online, so the device was also signed out on the server.
  const devices = await devicesOf(saksi.server, "mealea");
  await waitFor(async () => (await devicesOf(saksi.server, "mealea")).every((d) => d.status === "revoked"));
  assert.equal(devices.length, 1);
});

test("a revoked device wipes its data at its next contact with the server", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-revoked");
  await withRecord(page, saksi, "dara", { device: "seized phone", fields: { court: COURT } });
  await page.context().setOffline(true);
  await waitOffline(page);

  // The phone is seized; a coordinator revokes it.
  const device = (await devicesOf(saksi.server, "dara")).find((d) => d.name === "seized phone");
  assert.equal(device.status, "active");
  await admin(saksi.server, ["revoke-device", "--device", device.id]);

  // Still offline: the data is there (the phone does not know yet).
  assert.ok((await storedData(page)).vault.length >= 2);
  await page.context().setOffline(false);
  await onScreen(page, "login");
  assert.equal(await page.locator("[data-notice]").getAttribute("data-notice"), "revoked_notice");
  await assertWiped(page);
  await screenshot(page, "10-revoked");
});

test("a locked phone whose device was revoked wipes at its next contact, without its PIN", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-revoked-locked");
  await withRecord(page, saksi, "kanha", { device: "locked phone", fields: { court: COURT } });
  await page.click('[data-action="back"]');
  await page.click('[data-action="lock"]');
  await onScreen(page, "unlock");
  await page.context().setOffline(true);

  // The locked phone is seized; a coordinator revokes it.
  const device = (await devicesOf(saksi.server, "kanha")).find((d) => d.name === "locked phone");
  await admin(saksi.server, ["revoke-device", "--device", device.id]);
  assert.ok((await storedData(page)).vault.length >= 2, "offline, the data is still there");

  // Back online, still locked, nobody types the PIN: it asks with its probe, and wipes.
  await page.context().setOffline(false);
  await onScreen(page, "login", 45_000);
  assert.equal(await page.locator("[data-notice]").getAttribute("data-notice"), "revoked_notice");
  await assertWiped(page);
});

test("a device revoked while connected is told so by the server and wipes at once", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-revoked-online");
  await withRecord(page, saksi, "bopha", { device: "phone in a bag", fields: { court: COURT } });
  // She is typing when it happens: the narrative keeps the focus. (Chromium fires `blur` on a
  // focused field as the wipe removes it from the page; the field's handler once ran with the
  // session gone and threw reading its user.)
  await page.locator('[data-field="narrative"] textarea').first().pressSequentially("សាក្សី");
  const [device] = await devicesOf(saksi.server, "bopha");
  await admin(saksi.server, ["revoke-device", "--device", device.id]);
  await onScreen(page, "login");
  assert.equal(await page.locator("[data-notice]").getAttribute("data-notice"), "revoked_notice");
  await assertWiped(page);
  // Nothing in the page broke on the way, nor in the debounce after it.
  await page.waitForTimeout(1000);
  assert.deepEqual(problems(page).filter((p) => !/Failed to load resource|ERR_/.test(p)), []);
});

test("an ended session asks for the password; the phone keeps its offline edits and renews the same device", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-session-ended");
  const id = await withRecord(page, saksi, "srey", { device: "field phone", fields: { court: COURT } });
  // The title line follows the title fields as they are typed.
  await page.waitForFunction((court) => document.querySelector(".record-head h1")?.textContent.includes(court), COURT);

  // Offline, the monitor goes on recording while the organisation ends her sessions (after a
  // password reset, say): the phone does not know yet.
  await page.context().setOffline(true);
  await waitOffline(page);
  await fillField(page, "case_number", "០៤២/២០២៥");
  await waitOffline(page, 1);
  const [before] = await devicesOf(saksi.server, "srey");
  assert.equal(before.status, "active");
  assert.match(await admin(saksi.server, ["end-sessions", "--username", "srey"]), /ended 1 session/);
  assert.equal((await devicesOf(saksi.server, "srey"))[0].status, "expired");

  // Back online: told to sign in again; nothing is wiped, the edit still waits.
  await page.context().setOffline(false);
  await page.waitForSelector('#sync-status[data-state="signed-out"][data-waiting="1"]');
  await page.waitForSelector('[data-banner="signed-out"]');
  assert.equal(await page.inputValue('[data-field="case_number"] input'), "០៤២/២០២៥");
  assert.ok((await storedData(page)).vault.length >= 2, "the data stays");
  await screenshot(page, "11-session-ended");

  // A wrong password is refused and changes nothing; the right one renews the same device.
  await page.click('[data-banner="signed-out"] button');
  await onScreen(page, "relogin");
  await page.fill('input[name="password"]', "not the password at all");
  await page.click('form button[type="submit"]');
  await page.waitForSelector("form .message.error");
  assert.ok((await storedData(page)).vault.length >= 2);
  await page.fill('input[name="password"]', saksi.passwords.srey);
  await page.click('form button[type="submit"]');
  await waitSynced(page);
  const after = await devicesOf(saksi.server, "srey");
  assert.deepEqual(
    after.map((d) => [d.id, d.status]),
    [[before.id, "active"]],
    "the same device, renewed; no second device",
  );

  // The server has the offline edit.
  const api = await apiAs(saksi.url, "srey", saksi.passwords.srey);
  t.after(() => api.dispose());
  const row = (await api.get("/api/records")).records.find((r) => r.id === id);
  assert.ok(row, "the record is on the server");
  assert.match(row.title, /០៤២\/២០២៥/, "with the case number typed while the session had ended");
  assert.deepEqual(problems(page), []);
});
