// The wasm module in a real browser: `pwa/dist/pkg` (built by `cargo xtask wasm`) is served by
// a tiny local HTTP server and driven in headless Chromium. Khmer text must survive an edit,
// save and load into a second engine; errors must arrive as JS `Error`s.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { PKG_DIR, launchBrowser, newPage, saveArtifacts, serveStatic } from "./helpers.mjs";

const SAKSI = "សាក្សី";
const NARRATIVE = "ការឃុំខ្លួនបណ្ដោះអាសន្ន";

let browser;
let site;

before(async () => {
  if (!existsSync(join(PKG_DIR, "saksi_wasm.js"))) {
    throw new Error(`${PKG_DIR}/saksi_wasm.js is missing: run \`cargo xtask wasm\` first`);
  }
  site = await serveStatic(PKG_DIR, {
    "/":
      '<!doctype html><html lang="km"><meta charset="utf-8"><title>saksi-wasm</title>' +
      '<link rel="icon" href="data:,"></html>',
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await site?.close();
});

test("a court observation keeps its Khmer text through save and load", async (t) => {
  const page = await newPage(browser);
  t.after(async () => {
    if (!t.passed) await saveArtifacts(page, "wasm-khmer-round-trip");
    await page.context().close();
  });
  await page.goto(`${site.url}/`);

  const result = await page.evaluate(
    async ({ saksi, narrative }) => {
      const wasm = await import("/saksi_wasm.js");
      await wasm.default();
      const random = (n) => crypto.getRandomValues(new Uint8Array(n));
      const editor = (user, role) => JSON.stringify({ user, device: `${user}-browser`, role });
      const now = Date.now();

      // A coordinator opens the case; a monitor observes a hearing in it.
      const desk = new wasm.Engine("desk-tab", random(16), editor("sokha", "coordinator"));
      const caseId = desk.createRecord("case", "", now, random(16));
      const phone = new wasm.Engine("phone-tab", random(16), editor("dara", "monitor"));
      const id = phone.createRecord("court_observation", caseId, now, random(16));
      phone.setField(id, "court", JSON.stringify(saksi), now + 1);
      phone.setText(id, "narrative", narrative, now + 2);
      // spliceText counts code points: insert a space after "ការ" (3 code points).
      phone.spliceText(id, "narrative", 3, 0, " ", now + 3);
      phone.spliceText(id, "narrative", 3, 1, "", now + 4);
      const bytes = phone.save(id);

      const tablet = new wasm.Engine("tablet-tab", random(16), editor("dara", "monitor"));
      tablet.addDocument(id, bytes, null);
      const view = JSON.parse(tablet.view(id));

      let error;
      try {
        tablet.view("not-an-id");
      } catch (e) {
        error = { isError: e instanceof Error, message: e.message };
      }
      return {
        caseId,
        id,
        documents: tablet.documents(),
        bytesIsUint8Array: bytes instanceof Uint8Array,
        view,
        sameAsOriginal: JSON.stringify(view) === phone.view(id),
        allowed: JSON.parse(tablet.allowedTransitions(id)),
        history: JSON.parse(tablet.history(id)).length,
        outgoing: tablet.takeOutgoing(),
        syncState: tablet.syncState(id),
        join: tablet.connect() instanceof Uint8Array,
        date: wasm.dateOfMillis(951782400000),
        kinds: JSON.parse(wasm.catalogue()).kinds.length,
        error,
      };
    },
    { saksi: SAKSI, narrative: NARRATIVE },
  );

  assert.equal(result.view.kind, "court_observation");
  assert.equal(result.view.case, result.caseId);
  assert.equal(result.view.created_by, "dara");
  assert.equal(result.view.fields.court, SAKSI);
  assert.equal(result.view.fields.narrative, NARRATIVE);
  assert.ok(result.sameAsOriginal, "the loaded record reads the same as the original");
  assert.deepEqual(result.documents, [result.id]);
  assert.ok(result.bytesIsUint8Array);
  assert.deepEqual(result.allowed, [{ to: "submitted", action: "submit" }]);
  assert.equal(result.history, 5);
  assert.deepEqual(result.outgoing, []);
  assert.equal(result.syncState, undefined);
  assert.ok(result.join);
  assert.equal(result.date, "2000-02-29");
  assert.equal(result.kinds, 3);
  assert.deepEqual(result.error, {
    isError: true,
    message: "`not-an-id` is not a document id: document id is not valid base58check",
  });
  assert.deepEqual(page.problems, []);
});
