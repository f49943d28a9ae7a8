// What a new user tripped over on the phone (issue 22, §4), each checked as they met it: dates
// the browser cannot read, an arrest after the hearing, the kind filter, the storage banner,
// section links, and signing out from Settings.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  createRecord,
  devicesOf,
  fillField,
  onScreen,
  phoneSuite,
  problems,
  screenshot,
  signIn,
  testPhone,
  unlock,
  waitSynced,
} from "./phone.mjs";

const { browser, saksi } = await phoneSuite({ dara: "monitor", vanna: "monitor", chea: "monitor" });

test("a date the browser cannot read says so; an arrest after the hearing is flagged when entered", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-field-dates");
  await signIn(page, saksi.url, "dara", saksi.passwords.dara);
  await createRecord(page);
  // 31 February, typed into the date field in the browser's own order (Chromium follows its
  // own locale here, as a phone follows its system language): learn the order from a real date.
  const hearing = page.locator('[data-field="hearing_date"] input');
  await hearing.focus();
  await page.keyboard.type("01022026");
  const monthFirst = (await hearing.inputValue()) === "2026-01-02";
  await hearing.fill("");
  await hearing.focus();
  await page.keyboard.type(monthFirst ? "02312026" : "31022026");
  assert.equal(await hearing.evaluate((e) => e.validity.badInput), true, "the browser cannot read it");
  await hearing.blur();
  const problem = page.locator('[data-field="hearing_date"] .problem');
  await problem.waitFor({ state: "visible" });
  assert.equal(await problem.textContent(), "This is not a date (check day and month).");
  // A real date clears it.
  await fillField(page, "hearing_date", "2026-11-02");
  await page.waitForSelector('[data-field="hearing_date"] .problem[hidden]', { state: "attached" });

  // No Submit yet: an arrest after the hearing shows at once; "required" fields do not.
  await fillField(page, "arrest_date", "2026-11-05");
  const order = page.locator('[data-field="arrest_date"] .problem');
  await order.waitFor({ state: "visible" });
  assert.match(await order.textContent(), /after the hearing date/);
  assert.ok(await page.locator('[data-field="court"] .problem').isHidden(), "nothing about what is still empty");
  await screenshot(page, "33-arrest-after-hearing");
  await fillField(page, "arrest_date", "2026-10-01");
  await page.waitForSelector('[data-field="arrest_date"] .problem[hidden]', { state: "attached" });
  assert.deepEqual(problems(page), []);
});

test("the kind filter offers what the person can record or see; the storage banner can be dismissed; section links", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-field-list");
  await signIn(page, saksi.url, "vanna", saksi.passwords.vanna);
  const kinds = await page.locator('select[name="filter_kind"] option').evaluateAll((els) => els.map((e) => e.value));
  assert.deepEqual(kinds, ["", "court_observation"], "a monitor records observations; no family statements here");

  // The storage warning, when the browser did not grant persistence, goes with one tap and
  // stays gone.
  const banner = page.locator('[data-banner="persist"]');
  if (await banner.count()) {
    await banner.locator('[data-action="dismiss"]').click();
    await page.waitForSelector('[data-banner="persist"]', { state: "detached" });
    await page.click('[data-action="lock"]');
    await unlock(page);
    await onScreen(page, "list");
    await page.waitForTimeout(300);
    assert.equal(await page.locator('[data-banner="persist"]').count(), 0, "still dismissed after unlocking");
  }

  // A long record: the section links jump below the bar.
  await createRecord(page);
  const links = await page.locator(".section-nav a").evaluateAll((els) => els.map((e) => e.dataset.goto));
  assert.ok(links.length >= 5, `${links}`);
  // The files come last, after the catalogue's sections.
  assert.equal(links[links.length - 1], "files");
  for (const id of [links[links.length - 2], "files"]) {
    await page.click(`.section-nav a[data-goto="${id}"]`);
    const [bar, top] = await page.evaluate((id) => [
      document.querySelector(".bar").getBoundingClientRect().bottom,
      document.querySelector(`[data-section="${id}"]`).getBoundingClientRect().top,
    ], id);
    assert.ok(top >= bar - 1 && top < 200, `section ${id} at ${top}, bar ends at ${bar}`);
  }
  await screenshot(page, "34-section-link");
  assert.deepEqual(problems(page), []);
});

test("Settings → Sign out: asks first, needs the network, signs the device out and erases the phone", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-field-sign-out");
  await signIn(page, saksi.url, "chea", saksi.passwords.chea, { device: "borrowed phone" });
  await createRecord(page);
  await fillField(page, "court", "តុលាការខេត្តតាកែវ");
  await waitSynced(page);
  await page.evaluate(() => (location.hash = "#/settings"));
  await onScreen(page, "settings");

  // Offline it explains and does nothing.
  await page.context().setOffline(true);
  await page.waitForSelector('#sync-status[data-state="offline"]');
  await page.click('[data-action="sign-out"]');
  assert.match(await page.locator(".sign-out .confirm").textContent(), /needs the network/);
  assert.equal(await page.locator('[data-action="sign-out-confirm"]').count(), 0);
  await page.context().setOffline(false);
  await waitSynced(page);
  // Asked again online (the question may have been redrawn meanwhile).
  if (await page.locator('[data-action="sign-out"]').count()) await page.click('[data-action="sign-out"]');
  else await page.locator(".sign-out .confirm button").last().click().then(() => page.click('[data-action="sign-out"]'));
  await page.click('[data-action="sign-out-confirm"]');
  await onScreen(page, "login");
  assert.equal(await page.locator("[data-notice]").getAttribute("data-notice"), "signed_out_notice");
  const deadline = Date.now() + 10_000;
  while ((await devicesOf(saksi.server, "chea")).some((d) => d.status !== "revoked")) {
    assert.ok(Date.now() < deadline, "the device is signed out on the server");
    await new Promise((ok) => setTimeout(ok, 200));
  }
  assert.deepEqual(problems(page).filter((p) => !/Failed to load resource|ERR_/.test(p)), []);
});
