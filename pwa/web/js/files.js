// Files attached to records, on the phone: photos, recorded statements, documents.
//
// - Kept encrypted in the store's `files` store in pieces of PIECE bytes (store.js), hashed
//   (SHA-256, in the wasm) while they are written: a 100 MB recording is never in memory whole.
//   A photo loses its location and camera data first (unless the user keeps them), in the wasm.
// - `session.meta.files[attachment id]` says what the phone has of each file: its record, hash,
//   size, type, name, how many pieces, and for its own files how far the upload got:
//   `state` is `waiting` | `uploading` | `done` | `failed`, `sent` the bytes the server has,
//   `reason` why it waits or failed (an i18n key, and the server's message if it gave one).
// - Uploads (the tus protocol, server/src/http/files.rs) run one file at a time while the app
//   is open and online, start by themselves, and continue from the server's offset after a
//   dropped connection, a closed app or a reboot. A file waits until its record has reached the
//   server (the server lets a phone upload only a file one of its records names).
// - Others' files are fetched when opened, checked against their SHA-256, and kept encrypted.
// - A recording in progress is noted in the meta with each stored piece: if the app is closed
//   or the phone dies mid-recording, what was recorded is attached at the next unlock.

import { Sha256Stream, stripPhotoMetadata } from "/pkg/saksi_wasm.js";

/** Bytes per stored piece and per upload request. */
export const PIECE = 1 << 20;
/** Media types a photo may have that this app cleans of location and camera data. */
const CLEANABLE = ["image/jpeg", "image/png"];
/** How long to wait before trying a waiting upload again (grows to the second figure). */
const RETRY_MS = [2_000, 60_000];

const random = (n) => crypto.getRandomValues(new Uint8Array(n));
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/** A new attachment id: 16 random bytes as hex. */
export function newFileId() {
  return hex(random(16));
}

/** The media type without parameters (`audio/webm;codecs=opus` → `audio/webm`). */
export function baseType(type) {
  const t = String(type || "").split(";")[0].trim().toLowerCase();
  return /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/.test(t) ? t : "application/octet-stream";
}

/** A file name as the record may hold it: no path, no control characters, not too long. */
export function cleanName(name, fallback) {
  let n = String(name || "")
    .split(/[\\/]/)
    .pop()
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, "")
    .trim();
  if (!n || n === "." || n === "..") n = fallback;
  return [...n].slice(0, 200).join("");
}

/**
 * Writes a file into the store piece by piece, hashing as it goes. `write` takes any amount
 * of bytes; full pieces are encrypted and stored in order. With `durable`, the piece being
 * filled is stored too after every write (a recording loses at most its last second if the
 * app dies). `onPiece(pieces)` is told how many pieces are stored (the last maybe partial).
 */
export class FileWriter {
  constructor(vault, fileId, { onPiece, durable = false } = {}) {
    this.vault = vault;
    this.fileId = fileId;
    this.hasher = new Sha256Stream();
    // One buffer for the piece being filled, reused for every piece: a large file makes no
    // garbage here (only each piece's ciphertext, which the store keeps).
    this.piece = new Uint8Array(PIECE);
    this.buffered = 0;
    this.pieces = 0;
    this.size = 0;
    this.onPiece = onPiece;
    this.durable = durable;
    this.chain = Promise.resolve();
    this.failed = null;
  }

  /**
   * Appends bytes, copied when the write's turn comes: the caller may reuse its buffer once the
   * returned promise settles (a failure shows at `finish`).
   */
  write(bytes) {
    if (this.closed) return Promise.reject(new Error("the file is finished"));
    this.chain = this.chain.then(() => this.take(bytes));
    return this.chain;
  }

  async take(bytes) {
    if (this.failed) return;
    try {
      let at = 0;
      while (at < bytes.length) {
        const n = Math.min(PIECE - this.buffered, bytes.length - at);
        this.piece.set(bytes.subarray(at, at + n), this.buffered);
        this.buffered += n;
        at += n;
        if (this.buffered === PIECE) await this.storeFull();
      }
      if (this.durable && this.buffered > 0) {
        await this.vault.putPiece(this.fileId, this.pieces, this.piece.subarray(0, this.buffered));
        if (this.onPiece) await this.onPiece(this.pieces + 1);
      }
    } catch (e) {
      this.failed = e;
    }
  }

  async storeFull() {
    const piece = this.piece.subarray(0, this.buffered);
    this.hasher.update(piece);
    await this.vault.putPiece(this.fileId, this.pieces, piece);
    this.pieces += 1;
    this.size += piece.length;
    this.buffered = 0;
    if (this.onPiece) await this.onPiece(this.pieces);
  }

  /** Stores the last piece, after every write before it; returns `{sha256, size, pieces}`. */
  async finish() {
    this.closed = true;
    this.chain = this.chain.then(async () => {
      if (!this.failed && this.buffered > 0) {
        try {
          await this.storeFull();
        } catch (e) {
          this.failed = e;
        }
      }
    });
    await this.chain;
    this.piece.fill(0);
    if (this.failed) {
      await this.abort();
      throw this.failed;
    }
    const sha256 = this.hasher.finish();
    this.hasher.free();
    return { sha256, size: this.size, pieces: this.pieces };
  }

  /** Drops what was stored. */
  async abort() {
    await this.chain.catch(() => {});
    this.piece.fill(0);
    await this.vault.deleteFile(this.fileId, this.pieces + 1).catch(() => {});
  }
}

/**
 * Stores a picked file (a photo from the camera, or any document). A photo of a type this app
 * cleans loses its location and camera data unless `keepMetadata`. Returns the entry to attach
 * (without its author) and what the phone keeps of it.
 */
export async function storePicked(vault, file, { keepMetadata = false, maxBytes, photo = false } = {}) {
  const type = baseType(file.type);
  if (maxBytes && file.size > maxBytes) {
    throw Object.assign(new Error("too large"), { key: "file_too_large", size: file.size, max: maxBytes });
  }
  if (file.size === 0) throw Object.assign(new Error("empty"), { key: "file_empty" });
  const id = newFileId();
  const writer = new FileWriter(vault, id);
  let metadata = null;
  if (type.startsWith("image/")) {
    metadata = "kept";
    if (!keepMetadata && CLEANABLE.includes(type)) {
      // A photo is a few megabytes: cleaned whole, in the wasm, then stored in pieces.
      const cleaned = stripPhotoMetadata(type, new Uint8Array(await file.arrayBuffer()));
      for (let at = 0; at < cleaned.length; at += PIECE) await writer.write(cleaned.subarray(at, at + PIECE));
      metadata = "removed";
    }
  }
  if (metadata !== "removed") await readInto(file, writer);
  const stored = await writer.finish();
  const fallback = photo ? `photo-${stamp()}.${extension(type)}` : `file-${stamp()}.${extension(type)}`;
  return {
    entry: {
      id,
      sha256: stored.sha256,
      size: stored.size,
      type,
      name: cleanName(file.name, fallback),
      captured_at: Date.now(),
      metadata: type.startsWith("image/") ? metadata : undefined,
    },
    pieces: stored.pieces,
    // The photo's type could not be cleaned although the user did not ask to keep its data.
    uncleaned: type.startsWith("image/") && !keepMetadata && metadata === "kept",
  };
}

/**
 * Reads `file` into `writer` a piece at a time, into one buffer reused for every read (a
 * bring-your-own-buffer reader where the browser has one): a 100 MB file allocates nothing per
 * piece on the way in.
 *
 * Each read races a timer. Without one, Chromium's stream of a picked 3 MB photo never answered
 * its first read in 3 of 5 test runs, leaving "Encrypting the file" on the screen for good; with
 * a timer pending it answered in 10 of 10 (the timer never fired). Should a read still stall,
 * the rest of the file is read by slices.
 */
async function readInto(file, writer) {
  let reader = null;
  try {
    reader = file.stream().getReader({ mode: "byob" });
  } catch {
    reader = null;
  }
  let at = 0;
  if (reader) {
    let buffer = new ArrayBuffer(PIECE);
    for (;;) {
      const read = await Promise.race([reader.read(new Uint8Array(buffer)), later(READ_STALL_MS)]);
      if (read === STALLED) {
        // A stream that stopped answering: the rest is read by slices, from where it stopped.
        console.warn("file stream stalled; reading by slices from", at);
        reader.cancel().catch(() => {});
        break;
      }
      if (read.done) return;
      await writer.write(read.value);
      at += read.value.length;
      buffer = read.value.buffer;
    }
  }
  for (; at < file.size; at += PIECE) {
    await writer.write(new Uint8Array(await file.slice(at, at + PIECE).arrayBuffer()));
  }
}

/** How long a read of a picked file may take before it counts as stalled. */
const READ_STALL_MS = 5_000;
const STALLED = Symbol("stalled");
const later = (ms) => new Promise((ok) => setTimeout(() => ok(STALLED), ms));

/** `YYYY-MM-DD-HHMM`, for default file names. */
function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}`;
}

function extension(type) {
  return (
    {
      "image/jpeg": "jpg",
      "image/png": "png",
      "image/webp": "webp",
      "audio/webm": "webm",
      "audio/ogg": "ogg",
      "audio/mp4": "m4a",
      "audio/mpeg": "mp3",
      "application/pdf": "pdf",
    }[type] || "bin"
  );
}

/** The recording format this browser offers (Chromium: WebM with Opus). */
export function recordingType() {
  for (const t of ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/mp4"]) {
    if (window.MediaRecorder?.isTypeSupported?.(t)) return t;
  }
  return "";
}

/**
 * Records audio from the microphone into the store as it comes (a piece at a time), with a
 * timer that leaves out pauses. `onTick(ms)` is told the length every half second,
 * `onPiece(pieces)` after each stored piece, `onLimit()` when the recording reaches
 * `maxBytes` and stops by itself.
 */
export class Recorder {
  constructor(vault, { maxBytes, onTick, onPiece, onLimit }) {
    this.vault = vault;
    this.maxBytes = maxBytes;
    this.onTick = onTick;
    this.onLimit = onLimit;
    this.id = newFileId();
    this.type = recordingType();
    this.writer = new FileWriter(vault, this.id, { onPiece, durable: true });
    this.elapsed = 0;
    this.since = null;
    this.bytes = 0;
    this.timer = null;
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.recorder = new MediaRecorder(this.stream, this.type ? { mimeType: this.type } : {});
    this.type = this.recorder.mimeType || this.type || "audio/webm";
    this.stopped = new Promise((ok) => (this.recorder.onstop = ok));
    // Each piece of audio is read and written in the order it came; the last one (which comes
    // just before `stop`) is in `this.received` when `end` waits for it.
    this.received = Promise.resolve();
    this.recorder.ondataavailable = (event) => {
      if (!event.data?.size) return;
      const data = event.data;
      this.received = this.received.then(async () => {
        const bytes = new Uint8Array(await data.arrayBuffer());
        this.bytes += bytes.length;
        await this.writer.write(bytes);
        if (this.maxBytes && this.bytes >= this.maxBytes - PIECE && this.recorder.state !== "inactive") {
          this.onLimit?.();
        }
      });
    };
    // A piece of audio every second: what was recorded is stored as it comes.
    this.recorder.start(1000);
    this.since = performance.now();
    this.timer = setInterval(() => this.onTick?.(this.length()), 500);
  }

  length() {
    return this.elapsed + (this.since === null ? 0 : performance.now() - this.since);
  }

  get paused() {
    return this.recorder?.state === "paused";
  }

  pause() {
    if (this.recorder?.state !== "recording") return;
    this.recorder.pause();
    this.elapsed += performance.now() - this.since;
    this.since = null;
    this.onTick?.(this.length());
  }

  resume() {
    if (this.recorder?.state !== "paused") return;
    this.recorder.resume();
    this.since = performance.now();
  }

  async end() {
    clearInterval(this.timer);
    if (this.recorder && this.recorder.state !== "inactive") {
      if (this.since !== null) this.elapsed += performance.now() - this.since;
      this.since = null;
      this.recorder.stop();
      await this.stopped;
    }
    for (const track of this.stream?.getTracks() || []) track.stop();
    // The last `dataavailable` came before `stop`: wait until its bytes are written.
    await this.received;
  }

  /** Stops and stores the rest: returns the entry to attach. */
  async stop() {
    await this.end();
    const stored = await this.writer.finish();
    const type = baseType(this.type);
    return {
      entry: {
        id: this.id,
        sha256: stored.sha256,
        size: stored.size,
        type,
        name: `recording-${stamp()}.${extension(type)}`,
        captured_at: Date.now(),
      },
      pieces: stored.pieces,
      ms: Math.round(this.elapsed),
    };
  }

  /** Stops and drops what was recorded. */
  async cancel() {
    await this.end();
    await this.writer.abort();
  }
}

/** Hashes a file already in the store (a recording the app was closed during). */
export async function hashStored(vault, fileId, pieces) {
  const hasher = new Sha256Stream();
  let size = 0;
  let count = 0;
  for (let i = 0; i < pieces; i++) {
    let piece;
    try {
      piece = await vault.getPiece(fileId, i);
    } catch {
      break;
    }
    hasher.update(piece);
    size += piece.length;
    count += 1;
  }
  const sha256 = hasher.finish();
  hasher.free();
  return { sha256, size, pieces: count };
}

/** A file as a Blob for the page to show or save (decrypted piece by piece). */
export async function blobOf(vault, file) {
  const parts = [];
  for (let i = 0; i < file.pieces; i++) parts.push(await vault.getPiece(file.fileId || file.id, i));
  return new Blob(parts, { type: file.type });
}

/** Fetches another person's file from the server, checks its SHA-256, keeps it encrypted. */
export async function fetchFile(vault, token, attachment) {
  const res = await fetch(`/api/files/${attachment.sha256}`, {
    headers: { authorization: `Bearer ${token}` },
    credentials: "omit",
    cache: "no-store",
  });
  if (!res.ok) {
    const json = await res.json().catch(() => null);
    throw Object.assign(new Error(json?.message || `HTTP ${res.status}`), { key: json?.error === "not_uploaded" ? "file_not_uploaded" : "file_fetch_failed" });
  }
  const writer = new FileWriter(vault, attachment.id);
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    await writer.write(value);
  }
  const stored = await writer.finish();
  if (stored.sha256 !== attachment.sha256) {
    await vault.deleteFile(attachment.id, stored.pieces);
    throw Object.assign(new Error("hash mismatch"), { key: "file_hash_mismatch" });
  }
  return stored;
}

/**
 * The phone's uploads: one file at a time, while `app` has a session and is online. `kick()`
 * starts the queue (after a capture, a sync, the network coming back); it runs until every file
 * is on the server or waiting for something.
 */
export class Uploads {
  constructor(app, session) {
    this.app = app;
    this.session = session;
    this.running = false;
    this.stopped = false;
    this.timer = null;
    this.attempt = 0;
    this.controller = null;
  }

  get files() {
    return this.session.meta.files || {};
  }

  /** Own files not yet on the server. */
  pending() {
    return Object.entries(this.files).filter(([, f]) => f.own && f.state !== "done" && f.state !== "failed");
  }

  /** `{files, sent, total}` of the uploads still to do (for the sync status). */
  progress() {
    const pending = this.pending();
    return {
      files: pending.length,
      sent: pending.reduce((n, [, f]) => n + (f.sent || 0), 0),
      total: pending.reduce((n, [, f]) => n + f.size, 0),
    };
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  kick() {
    if (this.stopped || this.running) return;
    clearTimeout(this.timer);
    this.run();
  }

  later() {
    if (this.stopped) return;
    const delay = Math.min(RETRY_MS[1], RETRY_MS[0] * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 10);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.kick(), delay);
  }

  async run() {
    this.running = true;
    try {
      for (;;) {
        if (this.stopped || !navigator.onLine || this.app.session !== this.session) break;
        // Files whose record has reached the server first; a file of a record still waiting
        // goes after.
        const next = this.pending().find(([, f]) => !this.session.meta.records[f.record]?.dirty);
        if (!next) {
          for (const [, f] of this.pending()) this.set(f, { state: "waiting", reason: "file_waits_record" });
          break;
        }
        const [id, file] = next;
        const outcome = await this.upload(id, file);
        if (outcome === "later") {
          this.later();
          break;
        }
        this.attempt = 0;
      }
    } finally {
      this.running = false;
    }
  }

  set(file, changes) {
    Object.assign(file, changes);
    this.app.filesChanged();
  }

  headers(extra = {}) {
    return { "tus-resumable": "1.0.0", authorization: `Bearer ${this.session.meta.token}`, ...extra };
  }

  async send(method, url, { headers = {}, body } = {}) {
    this.controller = new AbortController();
    const timer = setTimeout(() => this.controller.abort(), 60_000);
    try {
      return await fetch(url, {
        method,
        headers: this.headers(headers),
        body,
        credentials: "omit",
        cache: "no-store",
        signal: this.controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }

  /** Uploads one file as far as it goes: "done", "failed" or "later". */
  async upload(id, file) {
    let offset;
    let location = file.location;
    try {
      const start = await this.send("POST", "/api/files", {
        headers: { "upload-length": String(file.size), "upload-metadata": `sha256 ${btoa(file.sha256)}` },
      });
      if (start.status !== 201) return this.refused(file, start);
      location = start.headers.get("location");
      offset = Number(start.headers.get("upload-offset"));
      this.set(file, { location, state: "uploading", sent: offset, reason: null, message: null });
      while (offset < file.size) {
        if (this.stopped || this.app.session !== this.session) return "later";
        const index = Math.floor(offset / PIECE);
        const piece = await this.session.vault.getPiece(id, index);
        const body = piece.subarray(offset - index * PIECE);
        if (body.length === 0) throw new Error("a piece of the file is missing on this phone");
        const res = await this.send("PATCH", location, {
          headers: { "content-type": "application/offset+octet-stream", "upload-offset": String(offset) },
          body,
        });
        piece.fill(0);
        if (res.status === 204 || res.status === 409) {
          offset = Number(res.headers.get("upload-offset"));
          this.set(file, { sent: offset });
          this.app.saveMeta();
          continue;
        }
        return this.refused(file, res);
      }
      this.set(file, { state: "done", sent: file.size, location: null, reason: null });
      this.app.saveMeta();
      return "done";
    } catch (e) {
      console.warn("upload interrupted:", e?.name, e?.message);
      if (e?.message?.includes("missing")) {
        this.set(file, { state: "failed", reason: "file_missing_here" });
        this.app.saveMeta();
        return "failed";
      }
      // The network went (or the server): the next try continues from what the server has.
      this.set(file, { state: "waiting", reason: navigator.onLine ? "file_retrying" : "file_offline" });
      this.app.saveMeta();
      return "later";
    }
  }

  /** A refusal: waits or fails, with the server's words. */
  async refused(file, res) {
    const json = await res.json().catch(() => null);
    const code = json?.error || `http_${res.status}`;
    if (code === "device_revoked" || code === "session_expired" || code === "unauthenticated") {
      this.session.sync.checkStillAllowed();
      return "later";
    }
    if (code === "not_named") {
      // The server does not have the record's entry yet (or no longer: removed).
      this.set(file, { state: "waiting", reason: "file_waits_record" });
      return "later";
    }
    if (["file_too_large", "quota_exceeded", "hash_mismatch"].includes(code)) {
      this.set(file, { state: "failed", reason: `file_${code}`, message: json?.message || null });
      this.app.saveMeta();
      return "failed";
    }
    this.set(file, { state: "waiting", reason: "file_retrying", message: json?.message || null });
    return "later";
  }
}
