// The encrypted store on the phone.
//
// Everything the app keeps lives in one IndexedDB database, `saksi`:
// - store `clear`: the only values kept in the clear: the PIN key's parameters (`kdf`: salt,
//   Argon2id costs, and whether the PIN is digits or a passphrase, for the keyboard), the
//   wrapped master secret (which doubles as the key check: a wrong PIN fails its AES-GCM tag),
//   and the wrong-PIN counter.
// - store `vault`: AES-GCM-256 ciphertexts, a fresh 96-bit random IV for every write, the entry's
//   key bound in as additional data (entries cannot be swapped). Keys are opaque: `meta` (the
//   account, settings, case list and per-record sync flags, as JSON) and `d:<HMAC(record id)>`
//   (a record's automerge bytes and its sync state), so the database shows neither record ids
//   nor contents, only how many records there are and their sizes.
// - store `files`: attached files (photos, recordings, documents) in pieces of 1 MiB, each
//   encrypted the same way under `f:<HMAC(file id)>:<piece>`, so that a 100 MB recording is
//   never in memory whole. The database shows how many pieces there are, not what they are.
//
// The PIN never leaves this module: Argon2id (ARGON2_MEMORY_KIB, ARGON2_PASSES; in the wasm,
// in a worker: js/kdf-worker.js) turns it into a key that unwraps a random 32-byte master secret,
// imported as a non-extractable HKDF key from which the data key (AES-GCM) and the id key
// (HMAC-SHA256) are derived. Changing the PIN rewraps only the master secret. Phones set up
// before Argon2id (PBKDF2-SHA256, 600,000 iterations) are rewrapped at their next unlock.

/** Argon2id memory per PIN guess (KiB): what makes a copied profile costly to attack on a GPU. */
export const ARGON2_MEMORY_KIB = 64 * 1024;
/** Argon2id passes: one, so that unlocking stays within 1.5 s on a low-end phone (BENCHMARKS.md). */
export const ARGON2_PASSES = 1;
/** PBKDF2 iterations of phones set up before Argon2id (read to migrate them). */
const PBKDF2_ITERATIONS = 600_000;
/** The shortest PIN allowed by this app whatever the server says. */
export const MIN_PIN_DIGITS = 6;
/** Wrong PINs in a row after which the phone's data is wiped. */
export const MAX_WRONG_PINS = 10;
const DB_NAME = "saksi";
const DB_VERSION = 2;

const subtle = crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder();

function request(req) {
  return new Promise((ok, fail) => {
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
  });
}

let dbPromise = null;
/** Set by a wipe: nothing may write (and so recreate the database) until a new vault is made. */
let sealed = false;

function openDb() {
  if (sealed) return Promise.reject(new Error("the local data was wiped"));
  if (!dbPromise) {
    dbPromise = new Promise((ok, fail) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        // Future versions add stores or migrate here; they never drop a store holding data.
        const db = req.result;
        if (!db.objectStoreNames.contains("clear")) db.createObjectStore("clear");
        if (!db.objectStoreNames.contains("vault")) db.createObjectStore("vault");
        if (!db.objectStoreNames.contains("files")) db.createObjectStore("files");
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab wipes or upgrades: let it.
        db.onversionchange = () => {
          db.close();
          dbPromise = null;
        };
        ok(db);
      };
      req.onerror = () => fail(req.error);
      req.onblocked = () => fail(new Error("the local database is blocked by another tab"));
    });
    dbPromise.catch(() => (dbPromise = null));
  }
  return dbPromise;
}

async function tx(store, mode, fn) {
  const db = await openDb();
  return new Promise((ok, fail) => {
    const t = db.transaction(store, mode, { durability: "strict" });
    let result;
    t.oncomplete = () => ok(result);
    t.onerror = () => fail(t.error);
    t.onabort = () => fail(t.error || new Error("transaction aborted"));
    Promise.resolve(fn(t.objectStore(store))).then((r) => (result = r), fail);
  });
}

const getClear = (key) => tx("clear", "readonly", (s) => request(s.get(key)));
const putClear = (key, value) => tx("clear", "readwrite", (s) => request(s.put(value, key)));

/** Whether a PIN has been set on this phone (an account is set up). */
export async function hasVault() {
  return Boolean(await getClear("wrapped"));
}

/** Wrong PINs entered in a row so far. */
export async function wrongPins() {
  return (await getClear("wrongPins")) || 0;
}

/** The PIN policy of a server that sends none (before `pin_policy`). */
export const DEFAULT_PIN_POLICY = { min_length: 8, letters: false };

/**
 * Why `pin` falls short of `policy` (`{min_length, letters}`): a message key of i18n.js and its
 * parameters, or null if it is fine.
 */
export function pinProblem(pin, policy = DEFAULT_PIN_POLICY) {
  const min = Math.max(MIN_PIN_DIGITS, policy.min_length || 0);
  if (!policy.letters && !/^[0-9]*$/.test(pin)) return { key: "pin_digits_only" };
  if ([...pin].length < min) return { key: policy.letters ? "passphrase_too_short" : "pin_too_short", n: min };
  return null;
}

function checkPin(pin) {
  if ([...pin].length < MIN_PIN_DIGITS) throw new Error(`a PIN is at least ${MIN_PIN_DIGITS} characters`);
}

async function pbkdf2Key(pin, salt, iterations) {
  const base = await subtle.importKey("raw", enc.encode(pin), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
  );
}

/** How long the last Argon2id derivation took in its worker (ms), for the tests' measurement. */
export let lastKdfMs = null;

/** Argon2id of the PIN in a worker (its 64 MiB are freed when it ends), as an AES-GCM key. */
async function argon2Key(pin, salt, memoryKib, passes) {
  const result = await new Promise((ok, fail) => {
    const worker = new Worker("/js/kdf-worker.js", { type: "module" });
    worker.onmessage = (event) => {
      worker.terminate();
      if (event.data.error) fail(new Error(event.data.error));
      else ok(event.data);
    };
    worker.onerror = (event) => {
      worker.terminate();
      fail(new Error(event.message || "the PIN key could not be derived"));
    };
    worker.postMessage({ secret: enc.encode(pin), salt, memoryKib, passes });
  });
  lastKdfMs = result.ms;
  const key = await subtle.importKey("raw", result.key, "AES-GCM", false, ["encrypt", "decrypt", "wrapKey", "unwrapKey"]);
  result.key.fill(0);
  return key;
}

/** The PIN key for the stored parameters. */
function pinKey(pin, kdf) {
  if (kdf.alg === "argon2id") return argon2Key(pin, kdf.salt, kdf.memoryKib, kdf.passes);
  return pbkdf2Key(pin, kdf.salt, kdf.iterations || PBKDF2_ITERATIONS);
}

/** New Argon2id parameters (a fresh salt) for a PIN of this kind. */
function newKdf(pin) {
  return {
    alg: "argon2id",
    salt: crypto.getRandomValues(new Uint8Array(16)),
    memoryKib: ARGON2_MEMORY_KIB,
    passes: ARGON2_PASSES,
    kind: /^[0-9]+$/.test(pin) ? "digits" : "passphrase",
  };
}

/** Whether the stored PIN is digits (the unlock screen shows a number pad) or a passphrase. */
export async function pinKind() {
  return (await getClear("kdf"))?.kind || "digits";
}

const WRAP_AAD = enc.encode("saksi master secret v1");

/** Bytes as unpadded base64url (an HMAC in a storage key). */
function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
}

/** Wraps the master secret under a new Argon2id key of `pin` (one atomic write). */
async function wrapSecret(secret, pin, { resetWrongPins }) {
  const kdf = newKdf(pin);
  const key = await pinKey(pin, kdf);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv, additionalData: WRAP_AAD }, key, secret));
  await tx("clear", "readwrite", (s) => {
    s.put(kdf, "kdf");
    s.put({ iv, ct }, "wrapped");
    if (resetWrongPins) s.put(0, "wrongPins");
  });
}

// ---- records withdrawn while the phone is locked ----
//
// A coordinator may destroy a record (consent withdrawn, recorded in error, safety) while this
// phone is locked. The locked phone learns the record's id from the server (`/api/probe`, with
// its probe, no credential) and must delete what it holds of it without the PIN, which it
// cannot use. So every record it stores has a *withdrawal tag* in the clear store: the key
// `w:` + SHA-256(probe, record id), holding the opaque storage keys of the record's document
// and files (never its id, title or content). Given an id, the tag is found and those entries
// deleted; without an id (from a seized phone alone) the tags name nothing: record ids are
// random and live only on the server and in the encrypted store.

/** The withdrawal tag of record `recordId` on the phone whose probe is `probe`. */
export async function withdrawalTag(probe, recordId) {
  const digest = await subtle.digest("SHA-256", enc.encode(`saksi withdrawal tag v1\n${probe}\n${recordId}`));
  return "w:" + base64url(new Uint8Array(digest));
}

/**
 * Deletes, without the PIN, what the phone holds of the records `ids` (a locked phone told they
 * were destroyed): their documents (with unsynced changes) and files. Each tag is kept, marked
 * `gone`, so that the next unlock removes the records' entries from the encrypted index and
 * says so. Returns how many records were deleted.
 */
export async function dropWithdrawnLocked(probe, ids) {
  let dropped = 0;
  for (const id of ids) {
    const tag = await withdrawalTag(probe, id);
    const entry = await getClear(tag);
    if (!entry || entry.gone) continue;
    // One transaction: the document, the files and the mark go together, or not at all.
    const db = await openDb();
    await new Promise((ok, fail) => {
      const t = db.transaction(["vault", "files", "clear"], "readwrite", { durability: "strict" });
      t.oncomplete = () => ok();
      t.onerror = () => fail(t.error);
      t.onabort = () => fail(t.error || new Error("transaction aborted"));
      t.objectStore("vault").delete(entry.doc);
      const files = t.objectStore("files");
      for (const prefix of entry.files || []) files.delete(IDBKeyRange.bound(`${prefix}:`, `${prefix};`));
      t.objectStore("clear").put({ gone: true }, tag);
    });
    dropped += 1;
  }
  return dropped;
}

/** Which of `ids` were deleted while the phone was locked (their tags say `gone`). */
export async function goneWhileLocked(probe, ids) {
  const gone = [];
  for (const id of ids) {
    const entry = await getClear(await withdrawalTag(probe, id));
    if (entry?.gone) gone.push(id);
  }
  return gone;
}

/** Forgets record `recordId`'s withdrawal tag (the record is gone, or no longer held). */
export async function deleteWithdrawalTag(probe, recordId) {
  const tag = await withdrawalTag(probe, recordId);
  await tx("clear", "readwrite", (s) => request(s.delete(tag)));
}

/** The unlocked vault: the derived keys, held only in memory. */
export class Vault {
  constructor(dataKey, idKey) {
    this.dataKey = dataKey;
    this.idKey = idKey;
  }

  static async fromMaster(master) {
    const derive = (info, algorithm, usages) =>
      subtle.deriveKey(
        { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: enc.encode(info) },
        master,
        algorithm,
        false,
        usages,
      );
    return new Vault(
      await derive("saksi data key v1", { name: "AES-GCM", length: 256 }, ["encrypt", "decrypt"]),
      await derive("saksi id key v1", { name: "HMAC", hash: "SHA-256", length: 256 }, ["sign"]),
    );
  }

  /** Sets up a new vault protected by `pin` (replacing any old one: wipe first). */
  static async create(pin) {
    checkPin(pin);
    sealed = false;
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const master = await subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
    await wrapSecret(secret, pin, { resetWrongPins: true });
    return Vault.fromMaster(master);
  }

  /**
   * Unlocks with `pin`. The attempt is counted before the slow key derivation starts (so
   * killing the page mid-attempt still counts) and the counter is reset on success. A vault
   * still under PBKDF2 is rewrapped with Argon2id now. Returns `{vault}` or
   * `{wrong: n, left}`; at MAX_WRONG_PINS the data is wiped (`{wiped: true}`).
   */
  static async unlock(pin) {
    const attempts = (await wrongPins()) + 1;
    await putClear("wrongPins", attempts);
    const kdf = await getClear("kdf");
    const wrapped = await getClear("wrapped");
    if (!kdf || !wrapped) throw new Error("no PIN is set on this phone");
    let secret = null;
    if (pin.length > 0) {
      try {
        const key = await pinKey(pin, kdf);
        secret = new Uint8Array(
          await subtle.decrypt({ name: "AES-GCM", iv: wrapped.iv, additionalData: WRAP_AAD }, key, wrapped.ct),
        );
      } catch (e) {
        if (!(e instanceof DOMException && e.name === "OperationError")) {
          // Not a wrong PIN (the derivation itself failed, e.g. out of memory): not counted.
          await putClear("wrongPins", attempts - 1);
          throw e;
        }
        secret = null;
      }
    }
    if (!secret) {
      if (attempts >= MAX_WRONG_PINS) {
        await wipeLocalData();
        return { wiped: true };
      }
      return { wrong: attempts, left: MAX_WRONG_PINS - attempts };
    }
    const master = await subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
    // The right PIN: the attempt no longer counts, whatever happens to the migration.
    await putClear("wrongPins", 0);
    let migrated = false;
    if (kdf.alg !== "argon2id") {
      try {
        await wrapSecret(secret, pin, { resetWrongPins: true });
        migrated = true;
      } catch (e) {
        // Argon2id could not run (out of memory on a small phone): the PBKDF2 vault stays as
        // it was, the phone opens, and the next unlock tries again.
        console.warn("the PIN key could not be strengthened yet:", e.message);
      }
    }
    secret.fill(0);
    return { vault: await Vault.fromMaster(master), migrated };
  }

  /**
   * Protects the vault with `newPin` instead of `oldPin` (which must open it): only the master
   * secret is rewrapped, nothing else is touched. Returns `{changed: true}`, or for a wrong
   * `oldPin` (counted with the unlock screen's) `{wrong: n, left}`, and at MAX_WRONG_PINS the
   * data is wiped (`{wiped: true}`).
   */
  static async changePin(oldPin, newPin) {
    checkPin(newPin);
    // A wrong current PIN counts like one at the unlock screen: someone who picks up an
    // unlocked phone cannot guess the PIN here without limit.
    const attempts = (await wrongPins()) + 1;
    await putClear("wrongPins", attempts);
    const kdf = await getClear("kdf");
    const wrapped = await getClear("wrapped");
    const key = await pinKey(oldPin, kdf);
    let secret;
    try {
      secret = new Uint8Array(
        await subtle.decrypt({ name: "AES-GCM", iv: wrapped.iv, additionalData: WRAP_AAD }, key, wrapped.ct),
      );
    } catch (e) {
      if (e instanceof DOMException && e.name === "OperationError") {
        if (attempts >= MAX_WRONG_PINS) {
          await wipeLocalData();
          return { wiped: true };
        }
        return { wrong: attempts, left: MAX_WRONG_PINS - attempts };
      }
      await putClear("wrongPins", attempts - 1);
      throw e;
    }
    try {
      await wrapSecret(secret, newPin, { resetWrongPins: true });
    } finally {
      secret.fill(0);
    }
    return { changed: true };
  }

  async encrypt(key, bytes) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = await subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: enc.encode(key) },
      this.dataKey,
      bytes,
    );
    return { iv, ct: new Uint8Array(ct) };
  }

  async decrypt(key, entry) {
    const plain = await subtle.decrypt(
      { name: "AES-GCM", iv: entry.iv, additionalData: enc.encode(key) },
      this.dataKey,
      entry.ct,
    );
    return new Uint8Array(plain);
  }

  /** The opaque storage key of a record. */
  async docKey(recordId) {
    const mac = new Uint8Array(await subtle.sign("HMAC", this.idKey, enc.encode(recordId)));
    return "d:" + base64url(mac);
  }

  async getMeta() {
    const entry = await tx("vault", "readonly", (s) => request(s.get("meta")));
    if (!entry) return null;
    return JSON.parse(dec.decode(await this.decrypt("meta", entry)));
  }

  async putMeta(meta) {
    const entry = await this.encrypt("meta", enc.encode(JSON.stringify(meta)));
    await tx("vault", "readwrite", (s) => request(s.put(entry, "meta")));
  }

  /** Stores a record's document and sync state together (one atomic write). */
  async putDoc(recordId, doc, syncState) {
    const key = await this.docKey(recordId);
    const idBytes = enc.encode(recordId);
    const state = syncState || new Uint8Array(0);
    // [u32 id length][id][u32 doc length][doc][sync state]
    const plain = new Uint8Array(8 + idBytes.length + doc.length + state.length);
    const view = new DataView(plain.buffer);
    view.setUint32(0, idBytes.length);
    plain.set(idBytes, 4);
    view.setUint32(4 + idBytes.length, doc.length);
    plain.set(doc, 8 + idBytes.length);
    plain.set(state, 8 + idBytes.length + doc.length);
    const entry = await this.encrypt(key, plain);
    plain.fill(0);
    await tx("vault", "readwrite", (s) => request(s.put(entry, key)));
  }

  /** Every stored record: `[{id, doc, syncState}]`. */
  async allDocs() {
    const rows = await tx("vault", "readonly", async (s) => {
      const [keys, values] = await Promise.all([request(s.getAllKeys()), request(s.getAll())]);
      return keys.map((k, i) => [k, values[i]]);
    });
    const docs = [];
    for (const [key, entry] of rows) {
      if (typeof key !== "string" || !key.startsWith("d:")) continue;
      const plain = await this.decrypt(key, entry);
      const view = new DataView(plain.buffer, plain.byteOffset, plain.byteLength);
      const idLen = view.getUint32(0);
      const id = dec.decode(plain.subarray(4, 4 + idLen));
      const docLen = view.getUint32(4 + idLen);
      const doc = plain.slice(8 + idLen, 8 + idLen + docLen);
      const state = plain.slice(8 + idLen + docLen);
      docs.push({ id, doc, syncState: state.length ? state : null });
    }
    return docs;
  }

  async deleteDoc(recordId) {
    const key = await this.docKey(recordId);
    await tx("vault", "readwrite", (s) => request(s.delete(key)));
  }

  /**
   * Writes record `recordId`'s withdrawal tag (see `dropWithdrawnLocked`): the storage keys of
   * its document and of `fileIds`' pieces.
   */
  async putWithdrawalTag(probe, recordId, fileIds) {
    const doc = await this.docKey(recordId);
    const files = [];
    for (const f of fileIds) files.push(await this.fileKey(f));
    await putClear(await withdrawalTag(probe, recordId), { doc, files });
  }

  /** The opaque key prefix of a file's pieces (cached: a file has many). */
  async fileKey(fileId) {
    this.fileKeys ||= new Map();
    let key = this.fileKeys.get(fileId);
    if (!key) {
      const mac = new Uint8Array(await subtle.sign("HMAC", this.idKey, enc.encode(`file:${fileId}`)));
      key = "f:" + base64url(mac);
      this.fileKeys.set(fileId, key);
    }
    return key;
  }

  /** Stores piece `index` of a file, encrypted. */
  async putPiece(fileId, index, bytes) {
    const key = `${await this.fileKey(fileId)}:${index}`;
    const entry = await this.encrypt(key, bytes);
    await tx("files", "readwrite", (s) => request(s.put(entry, key)));
  }

  /** Piece `index` of a file, decrypted (throws if it is missing or altered). */
  async getPiece(fileId, index) {
    const key = `${await this.fileKey(fileId)}:${index}`;
    const entry = await tx("files", "readonly", (s) => request(s.get(key)));
    if (!entry) throw new Error("a piece of the file is missing on this phone");
    return this.decrypt(key, entry);
  }

  /** Deletes every piece of a file (all of them, whatever `pieces` says it has). */
  async deleteFile(fileId, pieces) {
    const prefix = await this.fileKey(fileId);
    await tx("files", "readwrite", (s) => {
      for (let i = 0; i < pieces; i++) s.delete(`${prefix}:${i}`);
      s.delete(IDBKeyRange.bound(`${prefix}:`, `${prefix};`));
    });
  }
}

/**
 * Wipes everything this app stored on the phone: the database (keys, records, settings),
 * other storage of this origin except the language choice, and data caches. The app shell
 * (the service worker and its cache) stays so the phone can sign in again.
 */
export async function wipeLocalData() {
  sealed = true;
  try {
    const db = await dbPromise;
    db?.close();
  } catch {
    // It was not open.
  }
  dbPromise = null;
  const names = new Set([DB_NAME]);
  if (indexedDB.databases) {
    for (const d of await indexedDB.databases()) if (d.name) names.add(d.name);
  }
  await Promise.all(
    [...names].map(
      (name) =>
        new Promise((ok) => {
          const req = indexedDB.deleteDatabase(name);
          req.onsuccess = req.onerror = () => ok();
          // Another tab holds it open: it closes on `versionchange`, then this completes.
          req.onblocked = () => {};
        }),
    ),
  );
  const lang = localStorage.getItem("saksi.lang");
  localStorage.clear();
  sessionStorage.clear();
  if (lang) localStorage.setItem("saksi.lang", lang);
  if (self.caches) {
    for (const name of await caches.keys()) {
      if (!name.startsWith("saksi-shell-")) await caches.delete(name);
    }
  }
}
