// Saksi on the phone: start-up, the unlocked session (engine + encrypted store + sync),
// saving, locking, wiping, routing and the always-visible sync status.
//
// Life of the app:
//   no PIN set → sign in (network) → choose a PIN → records
//   PIN set    → unlock (offline is fine) → records
// The unlocked session holds the derived keys, the device token and the wasm Engine in memory
// only; locking (button, idle timer, app hidden for a while) saves everything, closes the
// connection and drops them. Data is written to IndexedDB (encrypted) on every debounced edit
// and after every merge, never to the service worker's cache.

import init, { Engine, catalogue } from "/pkg/saksi_wasm.js";

import * as api from "./api.js";
import { h, replace } from "./dom.js";
import { applyLang, clock, lang, onLangChange, setLang, t, tn } from "./i18n.js";
import {
  Vault,
  deleteWithdrawalTag,
  dropWithdrawnLocked,
  goneWhileLocked,
  hasVault,
  pinProblem,
  wipeLocalData,
} from "./store.js";
import { Sync } from "./sync.js";
import * as screens from "./screens.js";
import { RecordEditor } from "./editor.js";
import { Uploads, hashStored } from "./files.js";

/** Minutes of inactivity before the app locks (a setting). */
export const DEFAULT_AUTO_LOCK_MINUTES = 5;
/** The app locks when it comes back after being hidden this long. */
export const HIDDEN_LOCK_MS = 60_000;
/** How long the "choose a new PIN" screen keeps the vault it opened without a touch. */
const PENDING_OPEN_MS = 60_000;
const META_VERSION = 1;

const random = (n) => crypto.getRandomValues(new Uint8Array(n));
/** localStorage: this phone's probe (see `App.probeForLogin`). */
const PROBE_KEY = "saksi.probe";
/** localStorage: the probe of a wipe after too many wrong PINs, not yet reported. */
const WIPED_KEY = "saksi.wiped";
const hex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/** The app: one instance, handed to the screens. */
class App {
  constructor() {
    this.catalogue = null;
    this.kinds = new Map();
    this.statuses = new Map();
    this.session = null;
    this.notice = null;
    this.banners = new Map();
    this.editor = null;
    this.flushers = new Set();
    this.filters = { case: "", kind: "", status: "" };
    this.pendingLogin = null;
    /** An unlocked vault whose PIN falls short of the policy: `{vault, meta, pin}` until replaced. */
    this.pendingOpen = null;
    /** Quick exit: a neutral page is on screen; nothing of Saksi may be drawn until a reload. */
    this.neutral = false;
    this.lastActivity = Date.now();
    this.hiddenAt = null;
    this.root = document.getElementById("app");
    this.statusEl = document.getElementById("sync-status");
    this.bannerEl = document.getElementById("banners");
  }

  async boot() {
    applyLang();
    this.bindChrome();
    await init();
    this.catalogue = JSON.parse(catalogue());
    for (const k of this.catalogue.kinds) this.kinds.set(k.kind, k);
    for (const s of this.catalogue.statuses) this.statuses.set(s.id, s.label);
    registerServiceWorker(this);
    if (!(await takeAppLock(this))) return;
    this.startTimers();
    if (await hasVault()) this.show("unlock");
    else this.show("login");
    this.checkProbe();
  }

  bindChrome() {
    const langButton = document.getElementById("lang-toggle");
    langButton.addEventListener("click", () => {
      this.flush();
      setLang(lang() === "en" ? "km" : "en");
    });
    onLangChange(() => {
      this.renderChrome();
      this.rerender();
    });
    this.statusEl.addEventListener("click", () => this.session?.sync.onOnline());
    document.getElementById("quick-exit").addEventListener("click", () => this.quickExit());
    this.renderChrome();
  }

  renderChrome() {
    document.getElementById("app-name").textContent = t("app_name");
    const langButton = document.getElementById("lang-toggle");
    langButton.textContent = t("other_lang");
    langButton.setAttribute("aria-label", t("other_lang_label"));
    langButton.lang = lang() === "en" ? "km" : "en";
    const exit = document.getElementById("quick-exit");
    exit.textContent = t("quick_exit");
    exit.setAttribute("aria-label", t("quick_exit_label"));
    this.updateStatus();
    this.renderBanners();
  }

  // ---- screens and routing ----

  /** Shows a screen that is not a route (login, pin, unlock, other-tab). */
  show(name, options = {}) {
    this.screen = name;
    this.screenOptions = options;
    this.closeEditor();
    this.render();
  }

  route() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [page, token] = hash.split("/");
    if (page === "r" && token) {
      const id = this.session?.routes.get(token);
      return id ? { page: "record", id } : { page: "list" };
    }
    if (page === "new") return { page: "new" };
    if (page === "settings") return { page: "settings" };
    return { page: "list" };
  }

  /**
   * The address of a record's page. It holds no record id: a token that means something only
   * to this unlocked session, so that the browser's history (which a quick exit cannot clear)
   * names no record once the app is locked.
   */
  recordHref(id) {
    const s = this.session;
    if (!s) return "#/";
    let token = s.routeTokens.get(id);
    if (!token) {
      token = hex(random(6));
      s.routeTokens.set(id, token);
      s.routes.set(token, id);
    }
    return `#/r/${token}`;
  }

  go(path) {
    this.flush();
    if (location.hash === `#/${path}`) this.render();
    else location.hash = `#/${path}`;
  }

  /** Re-renders after a language switch, keeping what was typed in plain forms. */
  rerender() {
    const kept = {};
    for (const el of this.root.querySelectorAll("input[name], textarea[name], select[name]")) {
      if (el.type !== "radio" && el.type !== "checkbox") kept[el.name] = el.value;
    }
    const focused = document.activeElement?.name;
    this.render();
    if (this.screen !== "main" || this.route().page !== "record") {
      for (const el of this.root.querySelectorAll("input[name], textarea[name], select[name]")) {
        if (el.name in kept && el.type !== "radio" && el.type !== "checkbox") el.value = kept[el.name];
      }
      if (focused) this.root.querySelector(`[name="${CSS.escape(focused)}"]`)?.focus();
    }
  }

  render() {
    if (this.neutral) return;
    // The records, a record or Settings need the open session: while a wipe or sign-out is
    // finishing (it awaits the store) nothing of them may be drawn from a session that is gone.
    if (this.screen === "main" && !this.session) this.screen = "login";
    document.body.dataset.screen = this.screen === "main" ? this.route().page : this.screen;
    document.body.classList.toggle("unlocked", Boolean(this.session));
    this.renderBanners();
    this.updateStatus();
    if (this.screen !== "main") {
      this.closeEditor();
      replace(this.root, screens[this.screen](this, this.screenOptions || {}));
      this.root.querySelector("[autofocus]")?.focus();
      return;
    }
    const r = this.route();
    if (r.page === "record") {
      if (this.editor?.id === r.id) {
        this.editor.rebuild();
        return;
      }
      this.closeEditor();
      if (!this.session.engine.has(r.id) || this.session.engine.isEmpty(r.id)) {
        replace(this.root, screens.missing(this));
        return;
      }
      this.editor = new RecordEditor(this, r.id);
      replace(this.root, this.editor.el);
      return;
    }
    this.closeEditor();
    const screen = { list: screens.list, new: screens.newRecord, settings: screens.settings }[r.page];
    replace(this.root, screen(this));
  }

  /** Closes the record editor, writing its pending typing (unless the data is being wiped). */
  closeEditor({ discard = false } = {}) {
    if (this.editor) {
      this.editor.close({ discard });
      this.editor = null;
    }
  }

  // ---- session ----

  /** After sign-in (online): the account waits in memory until the PIN is set. */
  async signedIn(result, deviceName, probe) {
    this.pendingLogin = { ...result, device_name: deviceName, probe };
    this.show("pin");
  }

  /**
   * The probe to register at sign-in: a random id this phone keeps in the clear (localStorage)
   * to ask, while locked, whether its device was revoked. It proves nothing and opens nothing.
   * Signing in again keeps the phone's probe; a first sign-in makes a new one.
   */
  probeForLogin(again) {
    if (!again) return hex(random(16));
    // A phone signed in before probes existed gets one now.
    let probe = localStorage.getItem(PROBE_KEY);
    if (!probe) {
      probe = hex(random(16));
      localStorage.setItem(PROBE_KEY, probe);
    }
    return probe;
  }

  /**
   * While locked, asks the server (with the probe, not a credential) whether this device was
   * revoked, and wipes if so; reports a wipe after too many wrong PINs that could not be
   * reported when it happened.
   */
  async checkProbe() {
    const unreported = localStorage.getItem(WIPED_KEY);
    if (unreported) {
      try {
        await api.probeWiped(unreported);
        localStorage.removeItem(WIPED_KEY);
      } catch {
        // Offline: at the next check.
      }
    }
    const probe = localStorage.getItem(PROBE_KEY);
    if (this.screen !== "unlock" || !probe || this.probing) return;
    this.probing = true;
    try {
      const answer = await api.probe(probe);
      if (answer?.revoked && this.screen === "unlock") await this.wipe("revoked_notice");
      else if (answer?.withdrawn?.length && !this.session) {
        // Records destroyed by a coordinator go now, without the PIN (see store.js); the
        // next unlock tidies the index and says so.
        await dropWithdrawnLocked(probe, answer.withdrawn);
      }
    } catch {
      // Offline or the server unreachable: at the next check.
    } finally {
      this.probing = false;
    }
  }

  async setPin(pin) {
    const login = this.pendingLogin;
    if (!login) throw new Error("not signed in");
    await wipeLocalData();
    const vault = await Vault.create(pin);
    const meta = {
      v: META_VERSION,
      user: login.user,
      device_id: login.device_id,
      device_name: login.device_name,
      token: login.token,
      expires_at: login.expires_at,
      cases: [],
      index: [],
      records: {},
      settings: { autoLockMinutes: DEFAULT_AUTO_LOCK_MINUTES },
      lastSyncedAt: null,
      pinPolicy: login.pin_policy || null,
      maxFileBytes: login.max_file_bytes || null,
      files: {},
    };
    this.pendingLogin = null;
    if (login.probe) localStorage.setItem(PROBE_KEY, login.probe);
    await vault.putMeta(meta);
    await this.open(vault, meta);
  }

  async unlock(pin) {
    // Read before a wipe after too many wrong PINs clears it.
    const probe = localStorage.getItem(PROBE_KEY);
    const result = await Vault.unlock(pin);
    // A quick exit while the PIN was being checked: nothing opens behind the neutral page.
    if (result.vault && this.neutral) return result;
    if (result.vault) {
      const meta = await result.vault.getMeta();
      if (!meta) {
        // A PIN without an account (sign-in never finished): start again.
        await wipeLocalData();
        this.show("login");
        return result;
      }
      // A PIN shorter than the organisation now asks for: a new one before the app opens.
      if (meta.pinPolicy && pinProblem(pin, meta.pinPolicy)) {
        this.pendingOpen = { vault: result.vault, meta, pin };
        this.show("pin", { mode: "policy" });
        return result;
      }
      await this.open(result.vault, meta);
    } else if (result.wiped) {
      // The server revokes the device too, as the panic action's sign-out does.
      await this.reportWipe(probe);
      this.notice = "wiped_notice";
      this.show("login");
    }
    return result;
  }

  /** The PIN policy this phone knows (from its server), or null. */
  pinPolicy() {
    return this.session?.meta.pinPolicy || this.pendingOpen?.meta.pinPolicy || null;
  }

  /** Forgets a vault waiting for a new PIN: the phone is locked again. */
  dropPendingOpen() {
    if (!this.pendingOpen) return;
    this.pendingOpen = null;
    if (!this.neutral) this.show("unlock");
  }

  /** After an unlock with a PIN the policy no longer allows: rewrap under the new one, open. */
  async replaceShortPin(newPin) {
    const p = this.pendingOpen;
    if (!p) throw new Error("nothing to unlock");
    await Vault.changePin(p.pin, newPin);
    this.pendingOpen = null;
    await this.open(p.vault, p.meta);
  }

  /**
   * Settings → Change PIN. A wrong current PIN changes nothing and counts towards the wipe,
   * as at the unlock screen; the last one wipes the phone and revokes its device.
   */
  async changePin(oldPin, newPin) {
    const probe = localStorage.getItem(PROBE_KEY);
    const result = await Vault.changePin(oldPin, newPin);
    if (result.wrong) {
      throw Object.assign(new Error("wrong PIN"), { code: "wrong_pin", left: result.left });
    }
    if (result.wiped) {
      await this.wipe("wiped_notice");
      await this.reportWipe(probe);
      return;
    }
    this.screen = "main";
    this.go("settings");
    this.toast(t("pin_changed"));
  }

  /** Tells the server this phone wiped itself after wrong PINs, now or when next online. */
  async reportWipe(probe) {
    if (!probe) return;
    try {
      await api.probeWiped(probe);
    } catch {
      localStorage.setItem(WIPED_KEY, probe);
    }
  }

  /**
   * Quick exit: at once, a neutral page (a calculator) replaces everything, the address loses
   * any record id, and Saksi locks behind it (saving first, so nothing typed is lost). Reopening
   * the app's address shows the unlock screen.
   */
  async quickExit() {
    // Typing still in its debounce goes into the engine before the editor leaves the screen.
    this.flush();
    this.neutral = true;
    document.title = "Calculator";
    document.body.dataset.screen = "neutral";
    document.body.classList.remove("unlocked");
    replace(this.bannerEl);
    replace(this.root, screens.neutral());
    history.replaceState(null, "", "/");
    this.pendingLogin = null;
    this.pendingOpen = null;
    if (this.session) await this.lock();
    this.screen = (await hasVault()) ? "unlock" : "login";
    // Everything is saved and locked (a test waits for this; it shows nothing).
    document.body.dataset.exited = "locked";
  }

  /** Opens the session: loads every record into a fresh engine and starts syncing. */
  async open(vault, meta) {
    const probe = localStorage.getItem(PROBE_KEY);
    // Records deleted while the phone was locked (withdrawn by a coordinator).
    const held = new Set([
      ...Object.keys(meta.records || {}),
      ...(meta.index || []).map((r) => r.id),
      ...Object.values(meta.files || {}).map((f) => f.record),
    ]);
    const gone = probe ? await goneWhileLocked(probe, [...held]) : [];
    const docs = await vault.allDocs();
    // A quick exit while the PIN was being checked: the app stays locked behind the neutral page.
    if (this.neutral) return;
    // A fresh actor for every session: two sessions never share an actor's sequence numbers.
    const engine = new Engine(
      `pwa-${hex(random(8))}`,
      random(16),
      JSON.stringify({ user: meta.user.username, device: meta.device_id, role: meta.user.role }),
    );
    engine.setStorageId(meta.device_id);
    for (const d of docs) {
      try {
        engine.addDocument(d.id, d.doc, d.syncState);
      } catch (e) {
        console.warn("a stored record could not be loaded:", e.message);
      }
    }
    const session = {
      vault,
      meta,
      engine,
      views: new Map(),
      unavailable: new Set(),
      saving: new Map(),
      /** Record page tokens (see recordHref): token → id and id → token. */
      routes: new Map(),
      routeTokens: new Map(),
      /** Drafts being discarded here: their withdrawal is no news to this user. */
      discarding: new Set(),
      /** Records whose withdrawal tag is written this session. */
      tagged: new Set(),
      metaSaving: null,
      metaAgain: false,
      sync: null,
    };
    session.meta.files ||= {};
    session.uploads = new Uploads(this, session);
    session.sync = new Sync(engine, () => session.meta.token, {
      beforeReceive: () => this.flush(),
      events: (events) => this.onSyncEvents(events),
      indexed: (index) => this.onIndex(index),
      skip: (id) => this.discardPending(session, id),
      changed: () => this.updateStatus(),
      revoked: () => this.session === session && this.wipe("revoked_notice"),
      signedOut: () => this.signedOut(),
    });
    this.session = session;
    this.screen = "main";
    this.lastActivity = Date.now();
    this.render();
    requestPersistence(this);
    if (meta.signedOut) this.signedOut();
    else {
      session.sync.start();
      this.refreshPinPolicy(session);
    }
    await this.recoverRecording(session);
    if (gone.length) await this.dropWithdrawn(gone);
    this.tagAll(session, docs.map((d) => d.id));
  }

  /**
   * Writes the withdrawal tag of record `id` (its document's and files' storage keys, for a
   * locked phone told the record was destroyed: see store.js).
   */
  async tag(session, id) {
    const probe = localStorage.getItem(PROBE_KEY);
    if (!probe || this.session !== session) return;
    const files = Object.entries(session.meta.files)
      .filter(([, f]) => f.record === id)
      .map(([fileId]) => fileId);
    try {
      await session.vault.putWithdrawalTag(probe, id, files);
      session.tagged.add(id);
    } catch (e) {
      console.warn("a withdrawal tag could not be written:", e.message);
    }
  }

  /** Tags every stored record (records stored before tags existed, files fetched since). */
  async tagAll(session, ids) {
    for (const id of ids) {
      if (this.session !== session) return;
      if (!session.tagged.has(id)) await this.tag(session, id);
    }
  }

  /**
   * Records destroyed by a coordinator (purged, or a draft discarded): everything the phone
   * holds of them goes (the document with its unsynced changes, its files, its index entry),
   * and the user is told, without content. An edit made offline since is dropped too: it is
   * never sent again. Ids the phone does not hold are ignored.
   */
  async dropWithdrawn(ids) {
    const s = this.session;
    if (!s) return 0;
    const probe = localStorage.getItem(PROBE_KEY);
    let removed = 0;
    let news = 0;
    let wasOpen = false;
    for (const id of ids) {
      const files = Object.entries(s.meta.files).filter(([, f]) => f.record === id);
      const held =
        s.engine.has(id) || s.meta.records[id] || s.meta.index.some((r) => r.id === id) || files.length > 0;
      if (!held) continue;
      if (this.editor?.id === id) {
        this.closeEditor({ discard: true });
        wasOpen = true;
      }
      try {
        if (s.engine.has(id)) s.engine.remove(id);
      } catch {
        // Already gone from the engine (the sync layer dropped it).
      }
      await s.saving.get(id)?.running;
      s.saving.delete(id);
      await s.vault.deleteDoc(id);
      for (const [fileId, f] of files) {
        await s.vault.deleteFile(fileId, (f.pieces || 0) + 1);
        delete s.meta.files[fileId];
      }
      if (s.meta.recording?.record === id) {
        await s.vault.deleteFile(s.meta.recording.id, s.meta.recording.pieces + 1);
        delete s.meta.recording;
      }
      delete s.meta.records[id];
      s.meta.index = s.meta.index.filter((r) => r.id !== id);
      s.views.delete(id);
      s.unavailable.delete(id);
      const token = s.routeTokens.get(id);
      if (token) {
        s.routes.delete(token);
        s.routeTokens.delete(id);
      }
      s.tagged.delete(id);
      if (probe) await deleteWithdrawalTag(probe, id).catch(() => {});
      removed += 1;
      // A draft this user discarded here is no news to them.
      if (!s.discarding.has(id)) news += 1;
    }
    if (!removed || this.session !== s) return removed;
    await this.saveMeta();
    if (news) {
      this.setBanner("withdrawn", { kind: "info", text: "withdrawn_notice", dismiss: () => this.setBanner("withdrawn", null) });
    }
    if (wasOpen) {
      history.replaceState(null, "", "#/");
      this.render();
    } else if (this.screen === "main" && this.route().page === "list") {
      this.rerender();
    }
    this.updateStatus();
    return removed;
  }

  /**
   * Discards a draft this user wrote and never submitted (recorded by mistake): the server
   * destroys it like a purged record, and the phone forgets it at once. When the server cannot
   * say (offline, or it does not have the draft yet: its first sync may still be on its way),
   * the phone asks again at its next listings; meanwhile the draft is not fetched back.
   */
  async discard(id) {
    const s = this.session;
    if (!s) return false;
    s.discarding.add(id);
    try {
      await api.discard(s.meta.token, id);
    } catch (e) {
      const later = e instanceof api.NetworkError || (e instanceof api.ApiError && e.status === 404);
      if (!later) {
        s.discarding.delete(id);
        this.toast(t("discard_failed", { m: e.message }));
        return false;
      }
      (s.meta.pendingDiscards ||= []).push({ id, listings: 0 });
    }
    await this.dropWithdrawn([id]);
    this.toast(t("discarded"));
    return true;
  }

  /**
   * Discards asked for while the server could not answer: sent again when a listing names the
   * draft; forgotten once three listings after it did not (the server never had it).
   */
  async retryDiscards(index) {
    const s = this.session;
    if (!s?.meta.pendingDiscards?.length || s.retryingDiscards) return;
    s.retryingDiscards = true;
    const listed = new Set(index.records.map((r) => r.id));
    const withdrawn = new Set(index.withdrawn || []);
    const settled = new Set();
    try {
      for (const p of [...s.meta.pendingDiscards]) {
        if (withdrawn.has(p.id)) {
          settled.add(p.id);
        } else if (!listed.has(p.id)) {
          p.listings += 1;
          if (p.listings >= 3) settled.add(p.id);
        } else {
          try {
            await api.discard(s.meta.token, p.id);
            settled.add(p.id);
          } catch (e) {
            // Offline: at the next listing. Otherwise (no longer a draft: submitted from
            // another phone) the record comes back with the next listing.
            if (!(e instanceof api.NetworkError)) settled.add(p.id);
          }
        }
      }
    } finally {
      s.retryingDiscards = false;
    }
    if (this.session !== s) return;
    // Discards asked for meanwhile stay.
    s.meta.pendingDiscards = s.meta.pendingDiscards.filter((p) => !settled.has(p.id));
    this.saveMeta();
  }

  /** Whether the phone asked for `id` to be discarded and the server has not confirmed it. */
  discardPending(session, id) {
    return Boolean(session.meta.pendingDiscards?.some((p) => p.id === id));
  }


  /**
   * A recording the app was closed (or the phone died) during: what was stored is attached to
   * its record now, so that nothing recorded is lost.
   */
  async recoverRecording(session) {
    const r = session.meta.recording;
    if (!r || this.session !== session) return;
    try {
      const stored = await hashStored(session.vault, r.id, r.pieces + 1);
      delete session.meta.recording;
      if (stored.size > 0 && session.engine.has(r.record)) {
        const entry = {
          id: r.id,
          sha256: stored.sha256,
          size: stored.size,
          type: r.type,
          name: r.name,
          captured_at: r.started_at,
        };
        if (this.attach(r.record, entry, stored.pieces)) this.toast(t("recording_interrupted"));
      } else {
        await session.vault.deleteFile(r.id, r.pieces + 1);
        this.saveMeta();
      }
    } catch (e) {
      console.warn("an interrupted recording could not be attached:", e.message);
    }
  }

  /**
   * Attaches a stored file to record `id` (its entry written by this phone), and queues its
   * upload. Returns false (and the file is dropped) if the record refused it.
   */
  attach(id, entry, pieces) {
    const s = this.session;
    const ok = this.edit(id, (engine, now) => engine.addAttachment(id, JSON.stringify(entry), now));
    if (!ok) {
      s.vault.deleteFile(entry.id, pieces).catch(() => {});
      return false;
    }
    s.meta.files[entry.id] = {
      record: id,
      sha256: entry.sha256,
      size: entry.size,
      type: entry.type,
      name: entry.name,
      pieces,
      own: true,
      state: "waiting",
      sent: 0,
    };
    this.saveMeta();
    this.tag(s, id);
    this.filesChanged();
    s.uploads.kick();
    return true;
  }

  /** A file's upload moved on: the status line and an open record show it. */
  filesChanged() {
    this.updateStatus();
    this.editor?.renderFiles?.();
  }

  /** The largest file the server takes (it says so at sign-in and in /api/me). */
  maxFileBytes() {
    return this.session?.meta.maxFileBytes || 100 * 1024 * 1024;
  }

  /** Learns the organisation's PIN policy (checked at the next unlock). */
  async refreshPinPolicy(session) {
    try {
      const me = await api.me(session.meta.token);
      let changed = false;
      if (me?.pin_policy && JSON.stringify(me.pin_policy) !== JSON.stringify(session.meta.pinPolicy)) {
        session.meta.pinPolicy = me.pin_policy;
        changed = true;
      }
      if (me?.max_file_bytes && me.max_file_bytes !== session.meta.maxFileBytes) {
        session.meta.maxFileBytes = me.max_file_bytes;
        changed = true;
      }
      if (changed && this.session === session) await this.saveMeta();
    } catch {
      // Offline: next time.
    }
  }

  get engine() {
    return this.session?.engine;
  }

  get meta() {
    return this.session?.meta;
  }

  /** Flushes typing waiting for its debounce into the engine (before merges, locks, ...). */
  flush() {
    for (const fn of [...this.flushers]) {
      try {
        fn();
      } catch (e) {
        console.warn("flush failed:", e.message);
      }
    }
  }

  /** Runs a local edit of record `id`, then saves it and sends it. Returns false on error. */
  edit(id, fn) {
    const s = this.session;
    if (!s) return false;
    try {
      fn(s.engine, Date.now());
    } catch (e) {
      this.toast(t("edit_failed", { m: e.message }));
      return false;
    }
    s.views.delete(id);
    const rec = (s.meta.records[id] ||= {});
    if (!rec.dirty) {
      rec.dirty = true;
      this.saveMeta();
    }
    this.saveDoc(id);
    s.sync.flush();
    this.updateStatus();
    return true;
  }

  /** Creates a record in `caseId` and returns its id (created on the phone, synced later). */
  createRecord(kind, caseId) {
    const s = this.session;
    let id;
    try {
      id = s.engine.createRecord(kind, caseId, Date.now(), random(16));
    } catch (e) {
      this.toast(t("edit_failed", { m: e.message }));
      return null;
    }
    s.meta.records[id] = { dirty: true };
    this.saveMeta();
    this.saveDoc(id);
    s.sync.flush();
    this.updateStatus();
    return id;
  }

  /** Saves one record (document + sync state) encrypted; writes are serialised per record. */
  saveDoc(id) {
    const s = this.session;
    if (!s || !id) return Promise.resolve();
    const entry = s.saving.get(id) || { running: null, again: false };
    s.saving.set(id, entry);
    if (entry.running) {
      entry.again = true;
      return entry.running;
    }
    const run = async () => {
      do {
        entry.again = false;
        if (!s.engine.has(id) || s.engine.isEmpty(id)) break;
        const bytes = s.engine.save(id);
        const state = s.engine.syncState(id);
        try {
          await s.vault.putDoc(id, bytes, state);
          if (!s.tagged.has(id)) await this.tag(s, id);
        } catch (e) {
          if (this.session === s) this.toast(t("save_failed", { m: e.message }));
          break;
        }
      } while (entry.again && this.session === s);
      entry.running = null;
    };
    entry.running = run();
    return entry.running;
  }

  saveMeta() {
    const s = this.session;
    if (!s) return Promise.resolve();
    if (s.metaSaving) {
      s.metaAgain = true;
      return s.metaSaving;
    }
    s.metaSaving = (async () => {
      do {
        s.metaAgain = false;
        try {
          await s.vault.putMeta(s.meta);
        } catch (e) {
          if (this.session === s) this.toast(t("save_failed", { m: e.message }));
          break;
        }
      } while (s.metaAgain && this.session === s);
      s.metaSaving = null;
    })();
    return s.metaSaving;
  }

  /** Waits for every save in flight. */
  async settle() {
    const s = this.session;
    if (!s) return;
    for (let i = 0; i < 3; i++) {
      const pending = [...[...s.saving.values()].map((e) => e.running), s.metaSaving].filter(Boolean);
      if (!pending.length) return;
      await Promise.all(pending);
    }
  }

  /** The merged record (cached until it changes). */
  view(id) {
    const s = this.session;
    if (!s.views.has(id)) s.views.set(id, JSON.parse(s.engine.view(id)));
    return s.views.get(id);
  }

  onSyncEvents(events) {
    const s = this.session;
    if (!s) return;
    const changed = new Set();
    const withdrawn = [];
    let metaChanged = false;
    for (const e of events) {
      if (e.type === "changed") {
        changed.add(e.id);
        s.views.delete(e.id);
      } else if (e.type === "unavailable") {
        s.unavailable.add(e.id);
      } else if (e.type === "withdrawn") {
        withdrawn.push(e.id);
      } else if (e.type === "refused") {
        const rec = (s.meta.records[e.id] ||= {});
        rec.refused = e.message;
        metaChanged = true;
        changed.add(e.id);
      }
    }
    // Which local changes has the server now got?
    if (s.sync.connected) {
      for (const [id, rec] of Object.entries(s.meta.records)) {
        if (rec.dirty && s.engine.has(id) && s.engine.isSynced(id)) {
          rec.dirty = false;
          rec.sent = true;
          delete rec.refused;
          metaChanged = true;
          this.saveDoc(id);
        }
      }
      if (!Object.values(s.meta.records).some((r) => r.dirty)) {
        s.meta.lastSyncedAt = Date.now();
        metaChanged = true;
      }
    }
    for (const id of changed) this.saveDoc(id);
    if (metaChanged) this.saveMeta();
    this.updateStatus();
    if (changed.size) this.refreshScreen(changed);
    // Files wait for their record to reach the server; it may just have.
    if (s.sync.connected) s.uploads.kick();
    if (withdrawn.length) this.dropWithdrawn(withdrawn);
  }

  onIndex(index) {
    const s = this.session;
    // An answer that arrives after the session ended (locked, wiped) has nowhere to go.
    if (!s) return;
    s.meta.cases = index.cases;
    s.meta.index = index.records.filter((r) => r.kind !== "case" && !this.discardPending(s, r.id));
    this.retryDiscards(index);
    this.saveMeta();
    if (index.withdrawn?.length) this.dropWithdrawn(index.withdrawn);
    this.updateStatus();
    if (this.screen === "main" && this.route().page !== "record") this.rerender();
  }

  refreshScreen(changed) {
    if (this.screen !== "main") return;
    const r = this.route();
    if (r.page === "record") {
      if (this.editor && changed.has(this.editor.id)) this.editor.refresh();
      else if (!this.editor && changed.has(r.id)) this.render();
    } else if (r.page === "list") {
      this.rerender();
    }
  }

  /** The number of records with changes the server does not have yet. */
  waitingCount() {
    const s = this.session;
    if (!s) return 0;
    return Object.values(s.meta.records).filter((r) => r.dirty).length;
  }

  updateStatus() {
    const el = this.statusEl;
    const s = this.session;
    if (!s) {
      el.hidden = true;
      return;
    }
    el.hidden = false;
    const waiting = this.waitingCount();
    const refused = Object.values(s.meta.records).filter((r) => r.dirty && r.refused).length;
    const loading = s.meta.index.some(
      (r) => !s.unavailable.has(r.id) && (!s.engine.has(r.id) || s.engine.isEmpty(r.id)),
    );
    let state;
    let text;
    switch (s.sync.state) {
      case "connected":
        if (refused && refused === waiting && !loading) {
          state = "refused";
          text = t("sync_refused", { n: refused });
        } else if (waiting || loading) {
          state = "syncing";
          text = t("sync_syncing");
        } else {
          state = "synced";
          text = t("sync_uptodate", { time: s.meta.lastSyncedAt ? clock(s.meta.lastSyncedAt) : "" });
        }
        break;
      case "connecting":
        state = "connecting";
        text = t("sync_connecting");
        break;
      case "signed_out":
        state = "signed-out";
        text = t("sync_locked_out");
        break;
      default:
        state = "offline";
        text = t("sync_offline");
    }
    const files = s.uploads.progress();
    if (files.files && state === "synced") {
      // Records are up to date; files are still going up.
      state = "uploading";
      text = tn("sync_uploading", files.files, { p: Math.floor((100 * files.sent) / Math.max(1, files.total)) });
    }
    el.dataset.state = state;
    el.dataset.waiting = String(waiting);
    el.dataset.files = String(files.files);
    const parts = [h("span", { class: "sync-main" }, text.trim())];
    if (waiting && state !== "syncing" && state !== "refused") {
      parts.push(h("span", { class: "sync-waiting" }, tn("sync_waiting", waiting)));
    }
    if (files.files && state !== "uploading") {
      parts.push(h("span", { class: "sync-files" }, tn("sync_files_waiting", files.files)));
    }
    replace(el, parts);
  }

  // ---- banners and toasts ----

  setBanner(key, banner) {
    if (banner) this.banners.set(key, banner);
    else this.banners.delete(key);
    this.renderBanners();
  }

  renderBanners() {
    const items = [];
    for (const [key, b] of this.banners) {
      items.push(
        h(
          "div",
          { class: `banner ${b.kind || "warn"}`, role: "status", dataset: { banner: key } },
          h("span", {}, t(b.text)),
          b.action ? h("button", { type: "button", onclick: b.action.run }, t(b.action.label)) : null,
          b.dismiss
            ? h(
                "button",
                { type: "button", class: "dismiss", "aria-label": t("dismiss"), title: t("dismiss"), dataset: { action: "dismiss" }, onclick: b.dismiss },
                "×",
              )
            : null,
        ),
      );
    }
    replace(this.bannerEl, items);
  }

  toast(text) {
    const el = h("div", { class: "toast", role: "alert" }, text);
    document.body.append(el);
    setTimeout(() => el.remove(), 5000);
  }

  // ---- lock, sign-out, wipe ----

  async lock() {
    const s = this.session;
    if (!s) return;
    this.flush();
    await this.settle();
    s.sync.stop();
    s.uploads.stop();
    // Sync states last: they say what the server has, and resume the next connection cheaply.
    for (const id of s.engine.documents()) await this.saveDoc(id);
    await this.settle();
    this.closeEditor();
    this.session = null;
    this.banners.clear();
    s.engine.free();
    this.show("unlock");
    this.checkProbe();
  }

  /** The server no longer accepts this device's session (not revoked): ask for the password. */
  signedOut() {
    const s = this.session;
    if (!s) return;
    s.meta.signedOut = true;
    this.saveMeta();
    this.setBanner("signed-out", {
      kind: "warn",
      text: "session_expired",
      action: { label: "sign_in", run: () => this.show("relogin") },
    });
    this.updateStatus();
  }

  /** Signed in again after the session ended: the same device renewed with a new token. */
  async signedInAgain(result, deviceName) {
    const s = this.session;
    // Locked or wiped while the answer was on its way: nothing to renew here.
    if (!s) return;
    Object.assign(s.meta, {
      user: result.user,
      device_id: result.device_id,
      device_name: deviceName,
      token: result.token,
      expires_at: result.expires_at,
      pinPolicy: result.pin_policy || s.meta.pinPolicy || null,
    });
    delete s.meta.signedOut;
    this.flush();
    await this.saveMeta();
    for (const id of s.engine.documents()) await this.saveDoc(id);
    await this.settle();
    s.sync.stop();
    s.uploads.stop();
    this.closeEditor();
    this.session = null;
    this.banners.delete("signed-out");
    s.engine.free();
    await this.open(s.vault, s.meta);
  }

  /**
   * Erases every trace of Saksi data on the phone at once (panic action, revoked device,
   * too many wrong PINs). If the phone is online, the device is also signed out on the server.
   */
  async wipe(notice) {
    const s = this.session;
    const token = s?.meta.token;
    this.flushers.clear();
    this.closeEditor({ discard: true });
    if (s) {
      s.sync.stop();
      s.uploads.stop();
      this.session = null;
      try {
        s.engine.free();
      } catch {
        // Already freed.
      }
    }
    this.pendingLogin = null;
    this.pendingOpen = null;
    this.banners.clear();
    replace(this.root);
    await wipeLocalData();
    if (token && notice !== "revoked_notice") api.logout(token, 3000).catch(() => {});
    this.notice = notice || "wiped_notice";
    if (location.hash) history.replaceState(null, "", location.pathname);
    this.show("login");
  }

  // ---- timers ----

  startTimers() {
    const active = () => (this.lastActivity = Date.now());
    for (const type of ["pointerdown", "keydown", "input", "scroll", "touchstart"]) {
      addEventListener(type, active, { passive: true, capture: true });
    }
    setInterval(() => this.checkIdle(), 10_000);
    // A locked phone asks whether it was revoked: at once when the network returns, and every
    // 30 s while it is locked.
    setInterval(() => this.checkProbe(), 30_000);
    addEventListener("online", () => this.checkProbe());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") {
        this.hiddenAt = Date.now();
        // The page may be killed while hidden: get typing into the store now.
        this.flush();
        this.dropPendingOpen();
      } else {
        const away = this.hiddenAt ? Date.now() - this.hiddenAt : 0;
        this.hiddenAt = null;
        if (this.session && away >= HIDDEN_LOCK_MS) this.lock();
        else this.checkIdle();
      }
    });
    addEventListener("pagehide", () => this.flush());
    addEventListener("hashchange", () => {
      if (this.screen === "main") {
        this.flush();
        this.render();
      }
    });
  }

  checkIdle() {
    // The "choose a new PIN" screen holds an unlocked vault (and the PIN that opened it): it
    // does not wait long for the new PIN.
    if (this.pendingOpen && Date.now() - this.lastActivity >= PENDING_OPEN_MS) this.dropPendingOpen();
    const s = this.session;
    if (!s) return;
    const minutes = s.meta.settings?.autoLockMinutes || DEFAULT_AUTO_LOCK_MINUTES;
    if (Date.now() - this.lastActivity >= minutes * 60_000) this.lock();
  }
}

/** Only one tab at a time may use the store (two would overwrite each other's saves). */
async function takeAppLock(app) {
  if (!navigator.locks) return true;
  return new Promise((resolve) => {
    navigator.locks.request("saksi-app", { ifAvailable: true }, (lock) => {
      if (!lock) {
        resolve(false);
        app.show("otherTab");
        navigator.locks.request("saksi-app", () => {
          location.reload();
          return new Promise(() => {});
        });
        return undefined;
      }
      resolve(true);
      // Held for the life of the page.
      return new Promise(() => {});
    });
  });
}

async function requestPersistence(app) {
  if (!navigator.storage?.persist) return;
  let persisted = await navigator.storage.persisted();
  if (!persisted) persisted = await navigator.storage.persist();
  document.body.dataset.persisted = String(persisted);
  // Once dismissed on this phone, not shown again (it takes a lot of a small screen).
  if (persisted || app.meta?.settings?.persistWarningDismissed) {
    app.setBanner("persist", null);
    return;
  }
  app.setBanner("persist", {
    kind: "info",
    text: "persist_warning",
    dismiss: () => {
      if (app.meta) {
        app.meta.settings = { ...app.meta.settings, persistWarningDismissed: true };
        app.saveMeta();
      }
      app.setBanner("persist", null);
    },
  });
}

function registerServiceWorker(app) {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker
    .register("/sw.js", { scope: "/" })
    .then((reg) => {
      const offer = (worker) => {
        app.setBanner("update", {
          kind: "info",
          text: "update_ready",
          action: {
            label: "restart",
            run: async () => {
              // Nothing typed is lost: flush, save, then let the new version take over.
              app.flush();
              await app.settle();
              navigator.serviceWorker.addEventListener("controllerchange", () => location.reload());
              worker.postMessage({ type: "skip-waiting" });
            },
          },
        });
      };
      if (reg.waiting && navigator.serviceWorker.controller) offer(reg.waiting);
      reg.addEventListener("updatefound", () => {
        const worker = reg.installing;
        worker?.addEventListener("statechange", () => {
          if (worker.state === "installed" && navigator.serviceWorker.controller) offer(worker);
        });
      });
      if (navigator.onLine) reg.update().catch(() => {});
    })
    .catch((e) => console.warn("service worker not registered:", e.message));
}

const app = new App();
app.boot().catch((e) => {
  console.error("Saksi could not start:", e);
  replace(document.getElementById("app"), h("p", { class: "error" }, t("err_generic", { m: e.message })));
});
