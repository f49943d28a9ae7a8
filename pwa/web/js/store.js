// The encrypted store on the phone.
//
// Everything the app keeps lives in one IndexedDB database, `saksi`:
// - store `clear`: the only values kept in the clear: the PBKDF2 salt and iteration count, the
//   wrapped master secret (which doubles as the key check: a wrong PIN fails its AES-GCM tag),
//   and the wrong-PIN counter.
// - store `vault`: AES-GCM-256 ciphertexts, a fresh 96-bit random IV for every write, the entry's
//   key bound in as additional data (entries cannot be swapped). Keys are opaque: `meta` (the
//   account, settings, case list and per-record sync flags, as JSON) and `d:<HMAC(record id)>`
//   (a record's automerge bytes and its sync state), so the database shows neither record ids
//   nor contents, only how many records there are and their sizes.
//
// The PIN never leaves this module: PBKDF2-SHA256 (PBKDF2_ITERATIONS) turns it into a key that
// unwraps a random 32-byte master secret, imported as a non-extractable HKDF key from which the
// data key (AES-GCM) and the id key (HMAC-SHA256) are derived. Changing the PIN rewraps only
// the master secret.

export const PBKDF2_ITERATIONS = 600_000;
export const MIN_PIN_DIGITS = 6;
/** Wrong PINs in a row after which the phone's data is wiped. */
export const MAX_WRONG_PINS = 10;
const DB_NAME = "saksi";
const DB_VERSION = 1;

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

function checkPin(pin) {
  if (!new RegExp(`^[0-9]{${MIN_PIN_DIGITS},}$`).test(pin)) {
    throw new Error(`a PIN is at least ${MIN_PIN_DIGITS} digits`);
  }
}

async function pinKey(pin, salt, iterations) {
  const base = await subtle.importKey("raw", enc.encode(pin), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
  );
}

const WRAP_AAD = enc.encode("saksi master secret v1");

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
    const salt = crypto.getRandomValues(new Uint8Array(16));
    const key = await pinKey(pin, salt, PBKDF2_ITERATIONS);
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const master = await subtle.importKey("raw", secret, "HKDF", false, ["deriveKey"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const wrapped = await subtle.encrypt({ name: "AES-GCM", iv, additionalData: WRAP_AAD }, key, secret);
    secret.fill(0);
    await tx("clear", "readwrite", (s) => {
      s.put({ salt, iterations: PBKDF2_ITERATIONS }, "kdf");
      s.put({ iv, ct: new Uint8Array(wrapped) }, "wrapped");
      s.put(0, "wrongPins");
    });
    return Vault.fromMaster(master);
  }

  /**
   * Unlocks with `pin`. The attempt is counted before the slow key derivation starts (so
   * killing the page mid-attempt still counts) and the counter is reset on success.
   * Returns `{vault}` or `{wrong: n, left}`; at MAX_WRONG_PINS the data is wiped
   * (`{wiped: true}`).
   */
  static async unlock(pin) {
    const attempts = (await wrongPins()) + 1;
    await putClear("wrongPins", attempts);
    const kdf = await getClear("kdf");
    const wrapped = await getClear("wrapped");
    if (!kdf || !wrapped) throw new Error("no PIN is set on this phone");
    let master = null;
    if (/^[0-9]+$/.test(pin)) {
      try {
        const key = await pinKey(pin, kdf.salt, kdf.iterations);
        master = await subtle.unwrapKey(
          "raw",
          wrapped.ct,
          key,
          { name: "AES-GCM", iv: wrapped.iv, additionalData: WRAP_AAD },
          "HKDF",
          false,
          ["deriveKey"],
        );
      } catch {
        master = null;
      }
    }
    if (!master) {
      if (attempts >= MAX_WRONG_PINS) {
        await wipeLocalData();
        return { wiped: true };
      }
      return { wrong: attempts, left: MAX_WRONG_PINS - attempts };
    }
    await putClear("wrongPins", 0);
    return { vault: await Vault.fromMaster(master) };
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
    return "d:" + btoa(String.fromCharCode(...mac)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
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
