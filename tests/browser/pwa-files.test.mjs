// S10 on a phone (360×640): evidence captured offline, a photo through the file input (its
// location removed before it is hashed) and a statement recorded from the microphone
// (Chromium's fake media stream stands in for the phone's microphone; the permission is granted
// as a user taps "Allow"), then uploaded when the phone is online again; the connection drops
// mid-upload and the upload continues from where it stopped; a coordinator opens both files in
// the console and downloads them with the SHA-256 the phone took at capture.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { launchBrowser, newPage } from "./helpers.mjs";
import {
  createRecord,
  onScreen,
  openRecord,
  phoneSuite,
  problems,
  screenshot,
  signIn,
  testPhone,
  unlock,
  waitSynced,
} from "./phone.mjs";

const PIECE = 1 << 20;
/** What the photo's EXIF says, which must not leave the phone. */
const WHERE = "GPS 11.5564N 104.9282E home of the family";

// The fake device gives the phone a microphone (a test tone); it hides nothing a phone with a
// real microphone would see.
const { browser, saksi } = await phoneSuite(
  { lina: "liaison", chenda: "coordinator" },
  { launch: () => launchBrowser(["--use-fake-device-for-media-stream"]) },
);

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/** An EXIF APP1 segment (little-endian TIFF) naming a camera and a place. */
function exifSegment() {
  const text = Buffer.from(`PhoneCam X1\0${WHERE}\0`);
  const tiff = Buffer.alloc(8 + 2 + 2 * 12 + 4);
  tiff.write("II", 0, "ascii");
  tiff.writeUInt16LE(42, 2);
  tiff.writeUInt32LE(8, 4);
  tiff.writeUInt16LE(2, 8);
  // Model (ASCII, at the end), and the GPS IFD pointer (to the same text: it is never read).
  tiff.writeUInt16LE(0x0110, 10);
  tiff.writeUInt16LE(2, 12);
  tiff.writeUInt32LE(12, 14);
  tiff.writeUInt32LE(tiff.length, 18);
  tiff.writeUInt16LE(0x8825, 22);
  tiff.writeUInt16LE(4, 24);
  tiff.writeUInt32LE(1, 26);
  tiff.writeUInt32LE(tiff.length + 12, 30);
  const body = Buffer.concat([Buffer.from("Exif\0\0", "binary"), tiff, text]);
  const head = Buffer.from([0xff, 0xe1, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

/** A real JPEG of some 2-3 MB (noise does not compress), drawn in the page, with EXIF added. */
async function photo(page) {
  const b64 = await page.evaluate(async () => {
    const canvas = new OffscreenCanvas(2000, 1500);
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(2000, 1500);
    for (let i = 0; i < image.data.length; i++) image.data[i] = i % 4 === 3 ? 255 : Math.random() * 256;
    ctx.putImageData(image, 0, 0);
    ctx.fillStyle = "#0b5d4b";
    ctx.fillRect(100, 100, 400, 200);
    const blob = await canvas.convertToBlob({ type: "image/jpeg", quality: 0.95 });
    const bytes = new Uint8Array(await blob.arrayBuffer());
    let s = "";
    for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return btoa(s);
  });
  const jpeg = Buffer.from(b64, "base64");
  return Buffer.concat([jpeg.subarray(0, 2), exifSegment(), jpeg.subarray(2)]);
}

/** Every piece the phone keeps of its files, as stored: the keys and the bytes (base64). */
function storedPieces(page) {
  return page.evaluate(
    () =>
      new Promise((ok, fail) => {
        const req = indexedDB.open("saksi");
        req.onerror = () => fail(req.error);
        req.onsuccess = () => {
          const db = req.result;
          const t = db.transaction("files");
          const keys = t.objectStore("files").getAllKeys();
          const values = t.objectStore("files").getAll();
          t.oncomplete = () => {
            db.close();
            ok(
              keys.result.map((key, i) => {
                const bytes = values.result[i].ct;
                let s = "";
                for (let j = 0; j < bytes.length; j += 0x8000) s += String.fromCharCode(...bytes.subarray(j, j + 0x8000));
                return { key: String(key), bytes: btoa(s) };
              }),
            );
          };
        };
      }),
  );
}

/** The record's files as the phone's engine has them. */
function filesOf(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("li.file")].map((li) => ({
      id: li.dataset.file,
      state: li.dataset.state,
      type: li.dataset.type,
      hash: li.querySelector(".file-hash")?.textContent.replace("SHA-256 ", ""),
      name: li.querySelector(".file-name")?.textContent,
    })),
  );
}

test("S10: a photo and a recording taken offline upload by themselves, survive a dropped connection, and reach the coordinator unaltered", { timeout: 300_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-files");
  await page.context().grantPermissions(["microphone"], { origin: saksi.url });
  await signIn(page, saksi.url, "lina", saksi.passwords.lina);
  const record = await createRecord(page, "family_statement");
  await waitSynced(page);

  // Offline from here: no signal at the family's house.
  await page.context().setOffline(true);
  const jpeg = await photo(page);
  assert.ok(jpeg.length > 2 * PIECE, `a photo of several pieces (${jpeg.length} B)`);
  assert.ok(jpeg.includes(Buffer.from(WHERE)), "the original photo says where it was taken");
  await page.setInputFiles('input[data-capture="photo"]', { name: "ផ្ទះ.jpg", mimeType: "image/jpeg", buffer: jpeg });
  await page.waitForSelector('li.file[data-type="image/jpeg"]');

  // A statement recorded with a pause in the middle.
  await page.click('[data-action="files-record"]');
  await page.waitForSelector('.recorder[data-state="recording"]');
  await page.waitForTimeout(2_500);
  await page.click('[data-action="recording-pause"]');
  await page.waitForSelector('.recorder[data-state="paused"]');
  const paused = await page.locator(".recorder .timer").textContent();
  await page.waitForTimeout(1_500);
  assert.equal(await page.locator(".recorder .timer").textContent(), paused, "the timer stops while paused");
  await page.click('[data-action="recording-pause"]');
  await page.waitForTimeout(2_000);
  await page.click('[data-action="recording-stop"]');
  await page.waitForSelector('li.file[data-type="audio/webm"]');
  await screenshot(page, "40-files-offline");
  let files = await filesOf(page);
  assert.deepEqual(files.map((f) => f.state), ["waiting", "waiting"]);
  const shot = files.find((f) => f.type === "image/jpeg");
  const voice = files.find((f) => f.type === "audio/webm");
  assert.match(await page.locator(`li.file[data-file="${shot.id}"] .meta`).textContent(), /location and camera details removed/);

  // On the phone the pieces are ciphertext under opaque keys: no place, no image data, no
  // file's magic bytes, no name or id of the file or the record.
  const pieces = await storedPieces(page);
  const stored = pieces.map((p) => Buffer.from(p.bytes, "base64"));
  const total = stored.reduce((n, b) => n + b.length, 0);
  assert.ok(pieces.length >= 4 && total > jpeg.length, `the pieces of both files are stored (${pieces.length}, ${total} B)`);
  const imageData = jpeg.subarray(jpeg.length >> 1, (jpeg.length >> 1) + 64);
  for (const [i, b] of stored.entries()) {
    assert.ok(!b.includes(Buffer.from(WHERE)) && !b.includes(imageData), `piece ${i} holds the photo in the clear`);
    assert.ok(![[0xff, 0xd8, 0xff], [0x1a, 0x45, 0xdf, 0xa3]].some((m) => b.subarray(0, m.length).equals(Buffer.from(m))), `piece ${i} starts like a JPEG or WebM`);
    assert.ok(![shot.id, voice.id, record, "ផ្ទះ"].some((s) => pieces[i].key.includes(s)), `piece ${i}'s key names the file: ${pieces[i].key}`);
  }

  // Back online; the second piece of the photo is under way when the signal goes again.
  const patches = [];
  page.on("request", (request) => {
    if (request.method() === "PATCH" && request.url().includes("/api/files/uploads/")) {
      patches.push({ offset: Number(request.headers()["upload-offset"]), bytes: Number(request.headers()["content-length"]) || request.postDataBuffer()?.length || 0 });
    }
  });
  let dropped = false;
  let uploading = null;
  const drop = async (route) => {
    if (route.request().method() === "PATCH" && patches.length === 2 && !dropped) {
      dropped = true;
      // The first piece is on the server: the file and the sync status say how far it got.
      uploading = await page.evaluate(() => ({
        file: document.querySelector('li.file[data-state="uploading"]')?.textContent || "",
        status: document.querySelector("#sync-status")?.textContent || "",
      }));
      await page.context().setOffline(true);
      // Going offline may have failed the request already.
      return route.abort("internetdisconnected").catch(() => {});
    }
    return route.continue().catch(() => {});
  };
  await page.route("**/api/files/uploads/**", drop);
  await page.context().setOffline(false);
  await page.waitForFunction(() => document.querySelector('li.file[data-state="uploading"], li.file[data-state="waiting"]'));
  await page.waitForFunction(() => navigator.onLine === false);
  assert.ok(dropped, "the connection dropped mid-upload");
  assert.match(uploading.file, /Uploading [1-9]\d? %/, `the file shows its progress: ${JSON.stringify(uploading)}`);
  assert.match(uploading.status, /Uploading \d+ files? · \d+ %/, `the sync status shows the total: ${JSON.stringify(uploading)}`);
  await page.unroute("**/api/files/uploads/**", drop);
  // Back online it continues; while the third piece is on its way the app is closed, then
  // opened again and unlocked.
  let held = null;
  const hold = async (route) => {
    if (route.request().method() === "PATCH" && patches.length === 4 && !held) {
      held = route;
      return;
    }
    return route.continue().catch(() => {});
  };
  await page.route("**/api/files/uploads/**", hold);
  await page.waitForTimeout(1_000);
  await page.context().setOffline(false);
  for (let i = 0; i < 600 && !held; i++) await page.waitForTimeout(100);
  assert.ok(held, `the third piece was sent: ${JSON.stringify(patches)}`);
  // Closed while the request is held: none of the third piece reaches the server.
  await page.reload();
  await held.abort().catch(() => {});
  await page.unroute("**/api/files/uploads/**", hold);
  await onScreen(page, "unlock");
  await unlock(page);
  await openRecord(page, record);
  await page.waitForFunction(() => document.querySelectorAll('li.file[data-state="done"]').length === 2, null, { timeout: 90_000 });
  await waitSynced(page);
  await screenshot(page, "41-files-on-the-server");

  // It continued from where it stopped, each time: after the dropped connection from the
  // second piece, after the closed app from the third. No piece the server had was sent again.
  assert.equal(patches[2].offset, PIECE, `continued at ${patches[2].offset}: ${JSON.stringify(patches)}`);
  assert.equal(patches[3].offset, 2 * PIECE, `the third piece: ${JSON.stringify(patches)}`);
  const [cut, after] = [patches[3], patches[4]];
  assert.equal(after.offset, 2 * PIECE, `continued after the app was closed: ${JSON.stringify(patches)}`);
  assert.equal(after.offset + after.bytes, cut.offset + cut.bytes, `the same file, to its end: ${JSON.stringify(patches)}`);
  const sent = patches.filter((p, i) => i !== 1 && i !== 3).reduce((n, p) => n + p.bytes, 0);
  files = await filesOf(page);
  const sizes = await page.evaluate(() => [...document.querySelectorAll("li.file .meta")].map((m) => m.textContent));
  assert.ok(sent <= jpeg.length + 2 * PIECE, `bytes sent ${sent}, ${JSON.stringify(sizes)}`);

  // The coordinator, in the console, sees both files and their hashes, and downloads each: the
  // bytes have the hash the phone took at capture, and the photo does not say where it was.
  const desk = await newPage(browser, { viewport: { width: 1280, height: 900 } });
  t.after(() => desk.context().close());
  await desk.goto(`${saksi.url}/console/login`);
  await desk.fill('input[name="username"]', "chenda");
  await desk.fill('input[name="password"]', saksi.passwords.chenda);
  await Promise.all([desk.waitForURL(/\/console\/records$/), desk.click("button.primary")]);
  await desk.goto(`${saksi.url}/console/records/${record}`);
  for (const f of [shot, voice]) {
    const item = desk.locator(`[data-file-sha="${f.hash}"]`);
    await item.waitFor();
    assert.match(await item.textContent(), new RegExp(f.hash));
    assert.match(await item.textContent(), /verified/i);
    const got = await desk.evaluate(async (href) => {
      const res = await fetch(href);
      const bytes = new Uint8Array(await res.arrayBuffer());
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      const text = new TextDecoder("latin1").decode(bytes);
      return { status: res.status, sha: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""), where: text.includes("GPS 11.5564N"), disposition: res.headers.get("content-disposition") };
    }, await item.locator("a[data-action=download]").getAttribute("href"));
    assert.equal(got.status, 200);
    assert.equal(got.sha, f.hash, `${f.type}: the bytes are the ones captured`);
    assert.equal(got.where, false, `${f.type}: no location`);
    assert.match(got.disposition, /^attachment/);
  }
  // The photo shows, the recording plays.
  await desk.waitForFunction(() => [...document.querySelectorAll("img.file-thumb")].some((i) => i.complete && i.naturalWidth > 0));
  await desk.waitForFunction(() => [...document.querySelectorAll("audio")].some((a) => a.readyState >= 1 && a.duration > 0));
  await desk.screenshot({ path: (await import("./helpers.mjs")).ARTIFACTS_DIR + "/42-console-files.png", fullPage: true }).catch(() => {});
  assert.deepEqual(problems(page).filter((p) => !/ERR_INTERNET_DISCONNECTED|internetdisconnected|net::ERR/.test(p)), []);
});

test("a photo whose location the user chose to keep is stored as taken, and says so", { timeout: 120_000 }, async (t) => {
  const page = await testPhone(t, browser, "pwa-files-keep");
  await signIn(page, saksi.url, "lina", saksi.passwords.lina, { device: "keep phone" });
  await createRecord(page, "family_statement");
  await page.context().setOffline(true);
  const jpeg = await photo(page);
  await page.check('input[name="keep_metadata"]');
  await page.setInputFiles('input[data-capture="photo"]', { name: "ផ្លាកសញ្ញា.jpg", mimeType: "image/jpeg", buffer: jpeg });
  await page.waitForSelector('li.file[data-type="image/jpeg"]');
  const [kept] = await filesOf(page);
  assert.equal(kept.hash, sha256(jpeg), "the bytes as they were taken, location included");
  assert.match(await page.locator(`li.file[data-file="${kept.id}"] .meta`).textContent(), /location and camera details kept/);
});
