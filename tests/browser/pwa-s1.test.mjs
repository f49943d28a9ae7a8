// S1, offline capture: a monitor signs in, goes offline, records a court observation, reloads
// the app with no network, unlocks it: the record is still there, and it is encrypted at rest.
// Back online it syncs by itself, and the server (and a coordinator's phone) have it.

import assert from "node:assert/strict";
import { test } from "node:test";

import { saveArtifacts } from "./helpers.mjs";
import {
  apiAs,
  backToList,
  chooseYesNo,
  containsUtf8,
  createRecord,
  fillField,
  newPhone,
  onScreen,
  phoneSuite,
  problems,
  screenshot,
  signIn,
  storedData,
  unlock,
  waitOffline,
  waitSynced,
} from "./phone.mjs";

const COURT = "សាលាដំបូងខេត្តកណ្ដាល";
const NARRATIVE = "ការឃុំខ្លួនបណ្ដោះអាសន្ន — សាក្សី បានឃើញជនជាប់ចោទចូលក្នុងបន្ទប់សវនាការ។";

const { browser, saksi } = await phoneSuite({ dara: "monitor", sokha: "coordinator" });

test("S1: an observation recorded offline survives a reload and syncs when the network returns", { timeout: 180_000 }, async (t) => {
  const page = await newPhone(browser);
  const context = page.context();
  t.after(async () => {
    if (!t.passed) await saveArtifacts(page, "pwa-s1");
    await context.close();
  });

  await signIn(page, saksi.url, "dara", saksi.passwords.dara);
  await waitSynced(page);
  // Persistent storage was asked for; if the browser refused, the user is told.
  await page.waitForSelector("body[data-persisted]");
  const persisted = await page.getAttribute("body", "data-persisted");
  assert.equal(await page.locator('[data-banner="persist"]').count(), persisted === "true" ? 0 : 1);
  await screenshot(page, "02-records-empty");

  await context.setOffline(true);
  await waitOffline(page, 0);
  const id = await createRecord(page);
  await fillField(page, "court", COURT);
  await fillField(page, "case_number", "០០១/២០២៥");
  await fillField(page, "hearing_date", "2025-03-04");
  await chooseYesNo(page, "counsel_present", "yes");
  await fillField(page, "narrative", NARRATIVE);
  await page.waitForSelector('#sync-status[data-state="offline"][data-waiting="1"]');
  // It counts records (here one), not changes: it once said "1 change(s) waiting" after many.
  assert.match(await page.locator("#sync-status").textContent(), /1 record waiting to sync/);
  await screenshot(page, "03-observation-offline");
  await backToList(page);
  const item = page.locator(`li[data-id="${id}"]`);
  assert.match(await item.textContent(), new RegExp(COURT));
  assert.equal(await item.locator('[data-badge="unsynced"]').count(), 1);
  await screenshot(page, "04-records-waiting");

  // Reload with no network: the shell comes from the service worker, the data from the store.
  await page.reload();
  await onScreen(page, "unlock");
  await screenshot(page, "05-unlock");
  assert.equal(await page.locator("main").textContent().then((s) => s.includes(COURT)), false);

  // At rest: only ciphertext; neither the record's id nor its text is readable.
  const stored = await storedData(page);
  // In the clear: the PIN key's salt and parameters, the wrapped key, the counter, and the
  // record's withdrawal tag (an opaque hash naming the opaque keys of its document and files, for
  // a locked phone told the record was destroyed: see store.js).
  const clearKeys = Object.keys(stored.clear).sort();
  assert.deepEqual(clearKeys.filter((k) => !k.startsWith("w:")), ["kdf", "wrapped", "wrongPins"]);
  const tags = clearKeys.filter((k) => k.startsWith("w:"));
  assert.equal(tags.length, 1, "one withdrawal tag, the record's");
  assert.match(tags[0], /^w:[A-Za-z0-9_-]{43}$/);
  assert.deepEqual([...stored.clear[tags[0]]].sort(), ["doc", "files"]);
  assert.ok(stored.vault.length >= 2, "meta and the record are stored");
  for (const entry of stored.vault) {
    assert.ok(entry.key === "meta" || /^d:[A-Za-z0-9_-]{43}$/.test(entry.key), `opaque key ${entry.key}`);
    assert.ok(!entry.key.includes(id));
    assert.deepEqual(entry.fields.sort(), ["ct", "iv"]);
    for (const secret of [COURT, NARRATIVE.slice(0, 12), id, "dara", "court_observation"]) {
      assert.ok(!containsUtf8(entry.bytes, secret), `"${secret}" is not stored in the clear`);
    }
  }

  await unlock(page);
  await onScreen(page, "list");
  await waitOffline(page, 1);
  await page.click(`li[data-id="${id}"] a`);
  await onScreen(page, "record");
  assert.equal(await page.inputValue('[data-field="narrative"] textarea'), NARRATIVE);
  assert.equal(await page.inputValue('[data-field="court"] input'), COURT);
  assert.ok(await page.locator('[data-field="counsel_present"] input[value="yes"]').isChecked());

  // Signal returns: it syncs with nothing to do.
  await context.setOffline(false);
  await waitSynced(page);
  assert.match(await page.locator("#sync-status").textContent(), /Up to date/);

  // The server has it: its index (as the coordinator sees it) ...
  const api = await apiAs(saksi.url, "sokha", saksi.passwords.sokha);
  t.after(() => api.dispose());
  const index = await api.get("/api/records");
  const row = index.records.find((r) => r.id === id);
  assert.ok(row, "the record is on the server");
  assert.equal(row.kind, "court_observation");
  assert.equal(row.created_by, "dara");
  assert.match(row.title, new RegExp(COURT));
  assert.equal(row.case, saksi.caseId);

  // ... and the whole record reaches another phone.
  const desk = await newPhone(browser);
  t.after(() => desk.context().close());
  await signIn(desk, saksi.url, "sokha", saksi.passwords.sokha);
  await desk.waitForSelector(`li[data-id="${id}"] a`);
  await desk.click(`li[data-id="${id}"] a`);
  await onScreen(desk, "record");
  assert.equal(await desk.inputValue('[data-field="narrative"] textarea'), NARRATIVE);
  assert.deepEqual(problems(page), []);
});
