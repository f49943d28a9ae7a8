// S8 on phones (360×640): a family statement with a recording, on two phones of the liaison;
// the family withdraws consent and the liaison records it; an admin purges the statement at
// once in the console. The online phone drops it at once; the other phone, offline with an edit
// of its own and then locked, drops it (and the recording it had fetched) at its next contact,
// without its PIN, and says so when unlocked, with nothing left to send and no retry loop. The
// database file and its WAL no longer hold a phrase of the statement, nor the file store its
// recording; the console and the exports no longer list it; the audit chain verifies. Then
// discarding drafts: one the server has, and one that never left the phone.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { admin, newPage } from "./helpers.mjs";
import {
  apiAs,
  backToList,
  containsUtf8,
  createRecord,
  fillField,
  onScreen,
  openRecord,
  phoneSuite,
  problems,
  screenshot,
  signIn,
  storedData,
  testPhone,
  unlock,
  waitFor,
  waitSynced,
} from "./phone.mjs";

/** A phrase of the statement (fictional): nothing of it may survive the purge. */
const PHRASE = "ម្តាយរបស់គាត់ត្រូវបានចាប់ខ្លួននៅភូមិត្រពាំងឈូក";

const { browser, saksi } = await phoneSuite({ lina: "liaison", chenda: "coordinator", ana: "admin" });

/** Whether the database file or its WAL holds `text`. */
function databaseHolds(text) {
  return ["saksi.sqlite3", "saksi.sqlite3-wal"].some((name) => {
    const path = join(saksi.server.dataDir, name);
    return existsSync(path) && containsUtf8(readFileSync(path), text);
  });
}

/** The phone's stored records (`d:` keys), file pieces and withdrawal tags. */
async function held(page) {
  const stored = await storedData(page);
  const pieces = await page.evaluate(
    () =>
      new Promise((ok, fail) => {
        const req = indexedDB.open("saksi");
        req.onerror = () => fail(req.error);
        req.onsuccess = () => {
          const db = req.result;
          if (!db.objectStoreNames.contains("files")) return ok(0);
          const count = db.transaction("files").objectStore("files").count();
          count.onsuccess = () => {
            db.close();
            ok(count.result);
          };
        };
      }),
  );
  const tags = Object.entries(stored.clear).filter(([k]) => k.startsWith("w:"));
  return {
    docs: stored.vault.filter((e) => e.key.startsWith("d:")).length,
    pieces,
    tags: tags.length,
    gone: tags.filter(([, v]) => Array.isArray(v) && v.includes("gone")).length,
  };
}

async function consoleAs(user) {
  const desk = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  await desk.goto(`${saksi.url}/console/login`);
  await desk.fill('input[name="username"]', user);
  await desk.fill('input[name="password"]', saksi.passwords[user]);
  await Promise.all([desk.waitForURL(/\/console\/records$/), desk.click("button.primary")]);
  return desk;
}

test("S8: consent withdrawn, the statement is purged from the server and from every phone", { timeout: 300_000 }, async (t) => {
  // The liaison's field phone: the statement, with a recording.
  const field = await testPhone(t, browser, "pwa-purge-field");
  await signIn(field, saksi.url, "lina", saksi.passwords.lina, { device: "field phone" });
  const id = await createRecord(field, "family_statement");
  await fillField(field, "detainee", PHRASE);
  await fillField(field, "statement", `${PHRASE}។ សាក្សី`);
  const audio = Buffer.from(`សំឡេង ${PHRASE} `.repeat(2000));
  const sha = createHash("sha256").update(audio).digest("hex");
  await field.setInputFiles('input[data-capture="file"]', { name: "សក្ខីកម្ម.webm", mimeType: "audio/webm", buffer: audio });
  await field.waitForSelector('li.file[data-state="done"]', { timeout: 60_000 });
  await waitSynced(field);
  const blob = join(saksi.server.dataDir, "files", "blobs", sha.slice(0, 2), sha);
  assert.ok(existsSync(blob), "the recording is on the server");

  // Her second phone opens it and its recording, then loses the signal, adds a line, and locks.
  const second = await testPhone(t, browser, "pwa-purge-second");
  await signIn(second, saksi.url, "lina", saksi.passwords.lina, { device: "second phone" });
  await second.waitForSelector(`li[data-id="${id}"]`, { timeout: 30_000 });
  await openRecord(second, id);
  await second.click('li.file [data-action="file-open"]');
  await second.waitForSelector(".file-viewer");
  await second.click('[data-action="file-close"]');
  await waitSynced(second);
  await second.context().setOffline(true);
  await fillField(second, "statement", `${PHRASE}។ សាក្សី។ បន្ថែម`);
  await backToList(second);
  await second.click('[data-action="lock"]');
  await onScreen(second, "unlock");
  const before = await held(second);
  assert.ok(before.docs >= 1 && before.pieces >= 1 && before.tags >= 1, `the locked phone holds it: ${JSON.stringify(before)}`);

  // The family withdraws consent: the liaison records it on her field phone.
  field.once("dialog", (d) => d.accept());
  await field.click('[data-action="withdraw-consent"]');
  await field.waitForSelector('[data-banner="consent-withdrawn"]');
  await waitSynced(field);
  await screenshot(field, "50-consent-withdrawn");
  assert.ok(databaseHolds(PHRASE), "before the purge, the database holds the phrase");

  // An admin purges it at once, in the console.
  const desk = await consoleAs("ana");
  t.after(() => desk.context().close());
  await desk.goto(`${saksi.url}/console/records/${id}`);
  await desk.waitForSelector('[data-consent="withdrawn"]');
  await desk.selectOption('form[data-form="purge"] select[name="reason"]', "consent_withdrawn");
  await desk.check('form[data-form="purge"] input[name="confirm"]');
  await desk.check('form[data-form="purge"] input[name="now"]');
  await Promise.all([desk.waitForURL(/\/console\/records\?done=purged$/), desk.click('[data-action="purge"]')]);

  // The online phone drops it at once (it had it open), and says so without content.
  await field.waitForSelector('[data-banner="withdrawn"]', { timeout: 30_000 });
  await onScreen(field, "list");
  assert.equal(await field.locator(`li[data-id="${id}"]`).count(), 0);
  assert.ok(!(await field.locator("body").textContent()).includes(PHRASE));
  const fieldHeld = await held(field);
  assert.equal(fieldHeld.docs, 0, "no record left on the field phone");
  assert.equal(fieldHeld.pieces, 0, "no file left on the field phone");
  await screenshot(field, "51-withdrawn-online");

  // The server: nothing of it in the database file, its WAL or the file store.
  assert.ok(!databaseHolds(PHRASE), "the phrase survived the purge");
  assert.ok(!existsSync(blob), "the recording survived the purge");
  for (const path of ["/console/records", "/console/export.json", "/console/export.csv?kind=family_statement"]) {
    const body = await desk.evaluate(async (p) => (await fetch(p)).text(), path);
    assert.ok(!body.includes(id) && !body.includes(PHRASE), `${path} still lists it`);
  }
  assert.match(await admin(saksi.server, ["verify-audit"]), /audit log intact/);

  // The locked second phone comes back: it deletes the record and the recording it fetched,
  // without the PIN.
  await second.context().setOffline(false);
  // The record deleted and marked so that the unlock will say so (reads of several object
  // stores are not one snapshot: wait for that end state, then check the files).
  const locked = await waitFor(
    async () => {
      const h = await held(second);
      return h.docs === 0 && h.gone === 1 && h;
    },
    60_000,
    "the locked phone deleting the record",
  );
  assert.equal(locked.pieces, 0, "the recording was deleted while locked");
  await onScreen(second, "unlock");

  // Unlocked: it says a record was withdrawn, shows nothing of it, and has nothing to send.
  await unlock(second);
  await onScreen(second, "list");
  await second.waitForSelector('[data-banner="withdrawn"]');
  assert.equal(await second.locator(`li[data-id="${id}"]`).count(), 0);
  await waitSynced(second);
  await second.waitForTimeout(3_000);
  assert.equal(await second.locator("#sync-status").getAttribute("data-state"), "synced", "no retry loop");
  assert.equal(await second.locator("#sync-status").getAttribute("data-waiting"), "0");
  const unlocked = await held(second);
  assert.deepEqual([unlocked.docs, unlocked.pieces, unlocked.gone], [0, 0, 0]);
  await screenshot(second, "52-withdrawn-after-unlock");
  assert.ok(!databaseHolds(PHRASE), "the offline edit did not bring it back");
  assert.deepEqual(problems(field), []);
  assert.deepEqual(problems(second).filter((p) => !/ERR_INTERNET_DISCONNECTED|net::ERR/.test(p)), []);
});

test("an author discards a draft, on the server and on her phone; a draft never sent goes offline too", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-discard");
  await signIn(page, saksi.url, "lina", saksi.passwords.lina, { device: "discard phone" });
  const sent = await createRecord(page, "family_statement");
  await fillField(page, "detainee", "សាក្សី ព្រាង");
  await waitSynced(page);
  page.once("dialog", (d) => d.accept());
  await page.click('[data-action="discard"]');
  await onScreen(page, "list");
  assert.equal(await page.locator(`li[data-id="${sent}"]`).count(), 0);
  const api = await apiAs(saksi.url, "lina", saksi.passwords.lina);
  const listing = await api.get("/api/records");
  assert.ok(!listing.records.some((r) => r.id === sent));
  assert.match(await admin(saksi.server, ["list-purges"]), new RegExp(`${sent}\tdestroyed\tdiscarded`), "the server destroyed it");
  // Her own discard is no news: no "withdrawn by a coordinator" banner.
  await page.waitForTimeout(1_000);
  assert.equal(await page.locator('[data-banner="withdrawn"]').count(), 0);

  // Offline, a draft the server never had goes at once.
  await page.context().setOffline(true);
  const id = await createRecord(page, "family_statement");
  await fillField(page, "detainee", "សាក្សី មិនទាន់ផ្ញើ");
  page.once("dialog", (d) => d.accept());
  await page.click('[data-action="discard"]');
  await onScreen(page, "list");
  assert.equal(await page.locator(`li[data-id="${id}"]`).count(), 0);
  await page.context().setOffline(false);
  await waitSynced(page);
  const after = await api.get("/api/records");
  assert.ok(!after.records.some((r) => r.id === id), "it never reached the server");
  assert.equal((await held(page)).docs, 0);
});
