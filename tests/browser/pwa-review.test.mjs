// S4 on the phones: validation on submit, a coordinator's "needs changes" with a comment shown
// to the author, resubmission; and changes the server refuses: a banner on the record, the
// local data kept.

import assert from "node:assert/strict";
import { test } from "node:test";

import { admin, saveArtifacts } from "./helpers.mjs";
import {
  addItems,
  backToList,
  chooseYesNo,
  createRecord,
  fillField,
  newPhone,
  onScreen,
  phoneSuite,
  problems,
  screenshot,
  selectChoice,
  signIn,
  testPhone,
  waitOffline,
  waitSynced,
} from "./phone.mjs";

const COMMENT = "សូមបញ្ជាក់ឈ្មោះចៅក្រមទាំងអស់។";

const { browser, saksi } = await phoneSuite({ dara: "monitor", sokha: "coordinator", vanna: "monitor" });

/** The author's answer to the coordinator's comment. */
const REPLY = "បានបន្ថែមឈ្មោះមេធាវីហើយ។";

async function status(page) {
  return page.getAttribute(".record-head [data-status]", "data-status");
}

test("submit is validated; a coordinator's request for changes reaches the author, who resubmits", { timeout: 180_000 }, async (t) => {
  const dara = await newPhone(browser);
  const sokha = await newPhone(browser);
  t.after(async () => {
    if (!t.passed) {
      await saveArtifacts(dara, "pwa-review-dara");
      await saveArtifacts(sokha, "pwa-review-sokha");
    }
    await dara.context().close();
    await sokha.context().close();
  });

  await signIn(dara, saksi.url, "dara", saksi.passwords.dara);
  const id = await createRecord(dara);
  await fillField(dara, "court", "សាលាដំបូងរាជធានីភ្នំពេញ");
  await fillField(dara, "case_number", "១២៣/២០២៥");
  await fillField(dara, "hearing_date", "2025-02-11");
  await selectChoice(dara, "stage", "trial");
  await addItems(dara, "charges", ["ញុះញង់ (មាត្រា ៤៩៥)"]);
  await addItems(dara, "accused", ["ជនជាប់ចោទ A"]);
  for (const f of ["public_admitted", "monitors_admitted", "counsel_present", "accused_present"]) {
    await chooseYesNo(dara, f, "yes");
  }

  // The narrative is still empty: submit says so, at the field and in the summary.
  await dara.click('[data-action="submit"]');
  await dara.waitForSelector(".problems:not([hidden])");
  assert.deepEqual(
    await dara.locator(".problems li").evaluateAll((els) => els.map((e) => e.dataset.problem)),
    ["narrative"],
  );
  assert.ok(await dara.locator('[data-field="narrative"].invalid .problem').isVisible());
  assert.equal(await status(dara), "draft");
  // The summary scrolled into view sits below the sticky bar, not under it.
  const [barBottom, problemsTop] = await dara.evaluate(() => [
    document.querySelector(".bar").getBoundingClientRect().bottom,
    document.querySelector(".problems").getBoundingClientRect().top,
  ]);
  assert.ok(problemsTop >= barBottom, `problems at ${problemsTop}, bar ends at ${barBottom}`);
  await screenshot(dara, "16-validation");

  // Filling the field clears its "required" at once, not at the next Submit.
  await fillField(dara, "narrative", "សវនាការបានចាប់ផ្ដើមយឺត ៤០ នាទី។");
  await dara.waitForSelector('[data-field="narrative"]:not(.invalid)');
  assert.ok(await dara.locator('[data-field="narrative"] .problem').isHidden());
  assert.ok(await dara.locator(".problems").isHidden(), "no problem left in the summary");
  await dara.click('[data-action="submit"]');
  await dara.waitForFunction(() => document.querySelector(".record-head [data-status]")?.dataset.status === "submitted");
  assert.ok(await dara.locator(".problems").isHidden());
  // Online and connected: it says it was sent, not that it waits for the network.
  await dara.waitForSelector(".toast");
  assert.equal(await dara.locator(".toast").last().textContent(), "Submitted and sent to the server.");
  await waitSynced(dara);

  // The coordinator asks for changes, with a comment.
  await signIn(sokha, saksi.url, "sokha", saksi.passwords.sokha);
  await sokha.waitForSelector(`li[data-id="${id}"][data-status="submitted"] a`);
  await sokha.click(`li[data-id="${id}"] a`);
  await onScreen(sokha, "record");
  await sokha.fill('textarea[name="review_comment"]', COMMENT);
  await sokha.click('[data-action="request_changes"]');
  await sokha.waitForFunction(() => document.querySelector(".record-head [data-status]")?.dataset.status === "needs_changes");
  await waitSynced(sokha);

  // The author's phone shows it, with the comment and who made it.
  const banner = dara.locator('[data-banner="needs-changes"]');
  await banner.waitFor({ timeout: 30_000 });
  assert.match(await banner.textContent(), /A coordinator asked for changes/);
  assert.match(await banner.textContent(), new RegExp(COMMENT));
  assert.match(await banner.textContent(), /sokha/);
  assert.equal(await status(dara), "needs_changes");
  const trail = await dara.locator(".review-list li").evaluateAll((els) => els.map((e) => e.dataset.review));
  assert.deepEqual(trail, ["submit", "request_changes"]);
  await screenshot(dara, "17-needs-changes");

  // The author answers the comment; the coordinator reads the answer.
  assert.equal(await dara.textContent('[data-action="comment"]'), "Reply");
  await dara.fill('textarea[name="review_comment"]', REPLY);
  await dara.click('[data-action="comment"]');
  await dara.waitForFunction(() => document.querySelectorAll(".review-list li").length === 3);
  await sokha.waitForFunction((reply) => [...document.querySelectorAll('.review-list li[data-review="comment"]')].some((li) => li.textContent.includes(reply)), REPLY);
  assert.match(await sokha.locator('.review-list li[data-review="comment"]').textContent(), /dara/);

  // The author resubmits; the coordinator's phone sees it.
  assert.equal(await dara.textContent('[data-action="submit"]'), "Resubmit");
  await dara.click('[data-action="submit"]');
  await dara.waitForFunction(() => document.querySelector(".record-head [data-status]")?.dataset.status === "submitted");
  await sokha.waitForFunction(() => document.querySelector(".record-head [data-status]")?.dataset.status === "submitted");
  assert.deepEqual(problems(dara), []);
  assert.deepEqual(problems(sokha), []);
});

test("changes the server refuses are flagged on the record and kept on the phone", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-refused");
  await signIn(page, saksi.url, "vanna", saksi.passwords.vanna);
  const id = await createRecord(page);
  await fillField(page, "court", "សាលាដំបូងខេត្តកំពត");
  await waitSynced(page);

  // Offline, Vanna keeps writing; meanwhile she is taken off the case team.
  await page.context().setOffline(true);
  await waitOffline(page);
  await admin(saksi.server, ["remove-member", "--case", saksi.caseId, "--username", "vanna"]);
  await fillField(page, "prosecutor", "ព្រះរាជអាជ្ញា ខ");
  await waitOffline(page, 1);

  await page.context().setOffline(false);
  const banner = page.locator('[data-banner="refused"]');
  await banner.waitFor({ timeout: 30_000 });
  assert.match(await banner.textContent(), /refused/);
  await page.waitForSelector('#sync-status[data-state="refused"]');
  assert.equal(await page.inputValue('[data-field="prosecutor"] input'), "ព្រះរាជអាជ្ញា ខ", "the local value is kept");
  await screenshot(page, "18-refused");
  await backToList(page);
  await page.waitForSelector(`li[data-id="${id}"] [data-badge="refused"]`);
  assert.equal(await page.locator(`li[data-id="${id}"] [data-badge="unsynced"]`).count(), 1);
});
