// S2, concurrent offline edits: two monitors of the same case edit the same observation with
// no network. One fills the judges, the other the verdict; both type into the narrative; one
// records "defence lawyer present: yes", the other "no". After both reconnect, both phones
// show the same merged record: both edits, both texts, and the yes/no conflict naming both.

import assert from "node:assert/strict";
import { test } from "node:test";

import { saveArtifacts } from "./helpers.mjs";
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
  waitOffline,
  waitSynced,
} from "./phone.mjs";

const BASE = "សវនាការចាប់ផ្ដើម។";
const FROM_DARA = " ចៅក្រមបានអានការចោទប្រកាន់។";
const FROM_VANNA = " មេធាវីបានសុំពន្យារពេល។";

const { browser, saksi } = await phoneSuite({ dara: "monitor", vanna: "monitor", sokha: "coordinator" });

test("S2: two phones edit one observation offline, reconnect, converge, and show the conflict with both names", { timeout: 180_000 }, async (t) => {
  const dara = await newPhone(browser);
  const vanna = await newPhone(browser);
  t.after(async () => {
    if (!t.passed) {
      await saveArtifacts(dara, "pwa-s2-dara");
      await saveArtifacts(vanna, "pwa-s2-vanna");
    }
    await dara.context().close();
    await vanna.context().close();
  });

  // Dara opens the observation online; Vanna's phone downloads it.
  await signIn(dara, saksi.url, "dara", saksi.passwords.dara);
  const id = await createRecord(dara);
  await fillField(dara, "court", "សាលាឧទ្ធរណ៍ភ្នំពេញ");
  await fillField(dara, "narrative", BASE);
  await waitSynced(dara);
  await signIn(vanna, saksi.url, "vanna", saksi.passwords.vanna);
  await vanna.waitForSelector(`li[data-id="${id}"] a`);
  await waitSynced(vanna);
  await vanna.click(`li[data-id="${id}"] a`);
  await onScreen(vanna, "record");
  assert.equal(await vanna.inputValue('[data-field="narrative"] textarea'), BASE);

  // Both go offline and edit.
  await dara.context().setOffline(true);
  await vanna.context().setOffline(true);
  await waitOffline(dara);
  await waitOffline(vanna);

  await addItems(dara, "judges", ["ចៅក្រម ក", "ចៅក្រម ខ"]);
  await chooseYesNo(dara, "counsel_present", "yes");
  const daraText = dara.locator('[data-field="narrative"] textarea');
  await daraText.focus();
  await dara.keyboard.press("End");
  await dara.keyboard.type(FROM_DARA);
  await daraText.blur();

  await selectChoice(vanna, "verdict", "adjourned");
  await chooseYesNo(vanna, "counsel_present", "no");
  const vannaText = vanna.locator('[data-field="narrative"] textarea');
  await vannaText.focus();
  await vanna.keyboard.press("End");
  await vanna.keyboard.type(FROM_VANNA);
  await vannaText.blur();

  await waitOffline(dara, 1);
  await waitOffline(vanna, 1);

  // Signal returns.
  await dara.context().setOffline(false);
  await vanna.context().setOffline(false);
  await waitSynced(dara);
  await waitSynced(vanna);

  // Both phones converge on the same narrative holding both texts...
  const merged = async (page) =>
    page.waitForFunction(
      ([a, b]) => {
        const v = document.querySelector('[data-field="narrative"] textarea')?.value || "";
        return v.includes(a.trim()) && v.includes(b.trim()) ? v : false;
      },
      [FROM_DARA, FROM_VANNA],
      { timeout: 30_000 },
    );
  const textDara = await (await merged(dara)).jsonValue();
  const textVanna = await (await merged(vanna)).jsonValue();
  assert.equal(textDara, textVanna, "both phones hold the same narrative");
  assert.ok(textDara.startsWith(BASE));

  // ... both edits of other fields ...
  for (const page of [dara, vanna]) {
    await page.waitForFunction(() => document.querySelector('[data-field="verdict"] select')?.value === "adjourned");
    await page.waitForFunction(() => document.querySelectorAll('[data-field="judges"] li input').length === 2);
    const judges = await page.locator('[data-field="judges"] li input').evaluateAll((els) => els.map((e) => e.value));
    assert.deepEqual(judges, ["ចៅក្រម ក", "ចៅក្រម ខ"]);
  }

  // ... and the yes/no disagreement as a conflict naming both monitors, with both values.
  for (const page of [dara, vanna]) {
    const conflict = page.locator('[data-field="counsel_present"] .conflict');
    await conflict.waitFor({ state: "visible" });
    const rows = await conflict.locator("li").evaluateAll((els) =>
      els.map((li) => ({ user: li.dataset.user, value: li.querySelector(".value").textContent, time: li.querySelector("time")?.textContent })),
    );
    assert.deepEqual(rows.map((r) => r.user).sort(), ["dara", "vanna"]);
    assert.deepEqual(rows.map((r) => r.value).sort(), ["No", "Yes"]);
    for (const r of rows) assert.ok(r.time, "each value shows when it was written");
  }
  await dara.locator('[data-field="counsel_present"]').scrollIntoViewIfNeeded();
  await screenshot(dara, "06-conflict");
  // At the top of the record, a summary names the field and leads to it.
  for (const page of [dara, vanna]) {
    await page.waitForSelector('.conflicts-summary:not([hidden]) [data-conflict="counsel_present"]');
  }
  await dara.click('.conflicts-summary [data-conflict="counsel_present"]');
  const [bar, fieldTop] = await dara.evaluate(() => [
    document.querySelector(".bar").getBoundingClientRect().bottom,
    document.querySelector('[data-field="counsel_present"]').getBoundingClientRect().top,
  ]);
  assert.ok(fieldTop >= bar && fieldTop < 640, `the field comes into view below the bar (${fieldTop}, bar ${bar})`);

  // The list shows the conflict badge.
  await backToList(dara);
  await dara.waitForSelector(`li[data-id="${id}"] [data-badge="conflict"]`);
  await screenshot(dara, "07-records-conflict");

  // A coordinator resolves it on a phone: the chosen value shows at once, the conflict is gone,
  // and the review trail names the field by its label.
  const sokha = await newPhone(browser);
  t.after(() => sokha.context().close());
  await signIn(sokha, saksi.url, "sokha", saksi.passwords.sokha);
  await sokha.waitForSelector(`li[data-id="${id}"] a`);
  await sokha.click(`li[data-id="${id}"] a`);
  await onScreen(sokha, "record");
  const box = sokha.locator('[data-field="counsel_present"] .conflict');
  await box.waitFor({ state: "visible" });
  await box.locator('li[data-user="vanna"] button').click();
  await sokha.waitForSelector('[data-field="counsel_present"] .conflict[hidden]', { state: "attached", timeout: 5_000 });
  assert.equal(await sokha.locator('[data-field="counsel_present"] input:checked').getAttribute("value"), "no");
  assert.ok(await sokha.locator(".conflicts-summary").isHidden());
  const resolved = sokha.locator('.review-list li[data-review="resolve"]');
  await resolved.waitFor();
  assert.match(await resolved.textContent(), /Defence lawyer present/);
  assert.ok(!(await resolved.textContent()).includes("counsel_present"), "not the raw field id");
  // And the monitors' phones follow: the badge leaves the list.
  await dara.waitForSelector(`li[data-id="${id}"] [data-badge="conflict"]`, { state: "detached" });
  assert.deepEqual(problems(sokha), []);

  assert.deepEqual(problems(dara), []);
  assert.deepEqual(problems(vanna), []);
});

test("typing while the other phone's typing arrives loses nothing", { timeout: 180_000 }, async (t) => {
  const dara = await newPhone(browser);
  const vanna = await newPhone(browser);
  t.after(async () => {
    if (!t.passed) {
      await saveArtifacts(dara, "pwa-typing-dara");
      await saveArtifacts(vanna, "pwa-typing-vanna");
    }
    await dara.context().close();
    await vanna.context().close();
  });
  await signIn(dara, saksi.url, "dara", saksi.passwords.dara, { device: "second phone" });
  const id = await createRecord(dara);
  await fillField(dara, "narrative", BASE);
  await waitSynced(dara);
  await signIn(vanna, saksi.url, "vanna", saksi.passwords.vanna, { device: "second phone" });
  await vanna.waitForSelector(`li[data-id="${id}"] a`);
  await vanna.click(`li[data-id="${id}"] a`);
  await onScreen(vanna, "record");
  await vanna.waitForFunction((base) => document.querySelector('[data-field="narrative"] textarea')?.value === base, BASE);

  // Both online, both typing at once: every merge lands while the other is mid-sentence.
  const typeInto = async (page, text) => {
    const area = page.locator('[data-field="narrative"] textarea');
    await area.focus();
    await page.keyboard.press("End");
    await page.keyboard.type(text, { delay: 40 });
  };
  const A = " ក្រុមប្រឹក្សាបានចូលបន្ទប់។ The panel entered at 9:40.";
  const B = " ជនជាប់ចោទបានឆ្លើយតប។ The accused replied through counsel.";
  await Promise.all([typeInto(dara, A), typeInto(vanna, B)]);
  await dara.locator('[data-field="narrative"] textarea').blur();
  await vanna.locator('[data-field="narrative"] textarea').blur();

  const final = async (page) =>
    (
      await page.waitForFunction(
        ([a, b]) => {
          const v = document.querySelector('[data-field="narrative"] textarea').value;
          return v.includes(a) && v.includes(b) ? v : false;
        },
        [A, B],
        { timeout: 30_000 },
      )
    ).jsonValue();
  const textDara = await final(dara);
  const textVanna = await final(vanna);
  assert.equal(textDara, textVanna);
  assert.equal(textDara.length, BASE.length + A.length + B.length, "nothing lost, nothing doubled");
  await waitSynced(dara);
  await waitSynced(vanna);
});
