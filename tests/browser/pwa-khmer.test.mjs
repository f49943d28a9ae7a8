// Khmer everywhere: the switch changes the app's words and the catalogue's labels, sets
// `<html lang="km">`, is remembered across reloads (also before sign-in), and dates follow
// the language. Screenshots show that Khmer renders (fonts-khmeros on Debian).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  createRecord,
  onScreen,
  phoneSuite,
  PIN,
  problems,
  screenshot,
  signIn,
  testPhone,
} from "./phone.mjs";

const { browser, saksi } = await phoneSuite({ srey: "liaison", dara: "monitor" });

test("switching to Khmer changes UI strings and catalogue labels, and is remembered", { timeout: 180_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-khmer");
  await page.goto(`${saksi.url}/`);
  await onScreen(page, "login");
  assert.equal(await page.getAttribute("html", "lang"), "en-GB");
  assert.equal(await page.textContent("h1"), "Sign in");

  // Typed text survives the switch.
  await page.fill('input[name="username"]', "srey");
  await page.click("#lang-toggle");
  await page.waitForFunction(() => document.documentElement.lang === "km");
  assert.equal(await page.textContent("h1"), "ចូលប្រើ");
  assert.equal(await page.textContent("#lang-toggle"), "English");
  assert.equal(await page.inputValue('input[name="username"]'), "srey");
  await screenshot(page, "11-login-km");

  // Remembered before sign-in.
  await page.reload();
  await onScreen(page, "login");
  assert.equal(await page.getAttribute("html", "lang"), "km");
  assert.equal(await page.textContent("h1"), "ចូលប្រើ");

  // A liaison's family statement: the form's labels come from the catalogue, in Khmer.
  await signIn(page, saksi.url, "srey", saksi.passwords.srey);
  assert.equal(await page.textContent(".toolbar h1"), "កំណត់ត្រា");
  await createRecord(page, "family_statement");
  const labels = await page.locator(".field .label").allTextContents();
  assert.ok(labels.some((l) => /[\u1780-\u17FF]/.test(l)), "Khmer field labels");
  assert.ok(!labels.some((l) => /^[A-Za-z ]+\*?$/.test(l.trim())), `no English label left: ${labels.join(" | ")}`);
  await screenshot(page, "12-family-statement-km");

  // Validation messages on submit, in Khmer.
  await page.click('[data-action="submit"]');
  await page.waitForSelector(".problems:not([hidden])");
  const problemsText = await page.textContent(".problems");
  assert.match(problemsText, /[\u1780-\u17FF]/);
  assert.ok(await page.locator(".field.invalid").count() > 0, "fields are marked");
  await screenshot(page, "13-validation-km");

  // Back to English: the same form in English, dates for the locale.
  await page.click("#lang-toggle");
  await page.waitForFunction(() => document.documentElement.lang === "en-GB");
  const english = await page.locator(".field .label").allTextContents();
  assert.ok(!english.some((l) => /[\u1780-\u17FF]/.test(l)), "English labels");
  assert.match(await page.textContent(".problems"), /[A-Za-z]/);
  await screenshot(page, "14-family-statement-en");

  // Remembered after reload (and unlock), in the records list.
  await page.click('[data-action="back"]');
  await onScreen(page, "list");
  await page.click("#lang-toggle");
  await page.reload();
  await onScreen(page, "unlock");
  assert.equal(await page.textContent("h1"), "សាក្សីត្រូវបានចាក់សោ");
  await page.fill('input[name="pin"]', PIN);
  await page.click('form button[type="submit"]');
  await onScreen(page, "list");
  const meta = await page.locator(".records li .meta").last().textContent();
  assert.match(meta, /[\u17E0-\u17E9]|[\u1780-\u17FF]/, `a Khmer date: ${meta}`);
  await screenshot(page, "15-records-km");
  assert.deepEqual(problems(page), []);
});
