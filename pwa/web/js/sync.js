// The connection to the server: one WebSocket on `/sync` carrying every record (the
// automerge-repo protocol, spoken by the wasm Engine; this module only moves bytes).
//
// - Connects when the phone is online, with a single-use ticket fetched with the device token.
// - Reconnects by itself with exponential backoff and full jitter (1 s doubling to 60 s), and
//   at once on the browser's `online` event; closes on `offline` (a phone out of signal keeps
//   no half-dead socket).
// - On connect and every minute while connected it asks `/api/records` which records the user
//   may see, and requests the ones this phone does not have yet.
// - Before each incoming frame is applied, `hooks.beforeReceive()` lets the page flush typing
//   that is still waiting for its debounce into the engine, so a merge never overwrites it.
// - Device revoked → `hooks.revoked()` (the app wipes). Session ended → `hooks.signedOut(code)`
//   (the app asks for the password again and keeps the data).

import * as api from "./api.js";

const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;
const INDEX_EVERY_MS = 60_000;

export class Sync {
  /**
   * `engine`: the wasm Engine. `token()`: the device token. `hooks`: `{beforeReceive,
   * events(list), indexed(records), changed(), revoked(), signedOut(code)}`.
   */
  constructor(engine, token, hooks) {
    this.engine = engine;
    this.token = token;
    this.hooks = hooks;
    /** offline | connecting | connected | waiting (backoff) | signed_out | stopped */
    this.state = "offline";
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.indexTimer = null;
    this.stopped = false;
    this.onOnline = () => {
      this.attempt = 0;
      this.connect();
    };
    this.onOffline = () => {
      this.close();
      this.setState("offline");
    };
  }

  start() {
    addEventListener("online", this.onOnline);
    addEventListener("offline", this.onOffline);
    this.connect();
  }

  /** Closes the connection for good (lock, sign-out, wipe). */
  stop() {
    this.stopped = true;
    removeEventListener("online", this.onOnline);
    removeEventListener("offline", this.onOffline);
    this.close();
    this.setState("stopped");
  }

  setState(state) {
    if (this.state !== state) {
      this.state = state;
      this.hooks.changed();
    }
  }

  close() {
    clearTimeout(this.timer);
    clearInterval(this.indexTimer);
    this.timer = null;
    this.indexTimer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000);
      } catch {
        // Already closed.
      }
      this.engine.disconnected();
    }
  }

  scheduleReconnect() {
    if (this.stopped || this.state === "signed_out") return;
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 16);
    const delay = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
    this.setState("waiting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  async connect() {
    if (this.stopped || this.state === "signed_out") return;
    if (this.ws) return;
    clearTimeout(this.timer);
    if (!navigator.onLine) {
      this.setState("offline");
      return;
    }
    this.setState("connecting");
    let ticket;
    try {
      ticket = (await api.syncTicket(this.token())).ticket;
    } catch (e) {
      if (this.stopped) return;
      if (await this.authFailure(e)) return;
      this.scheduleReconnect();
      return;
    }
    if (this.stopped || this.ws) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/sync?ticket=${encodeURIComponent(ticket)}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      ws.send(this.engine.connect());
    };
    ws.onmessage = (msg) => this.receive(ws, msg.data);
    ws.onerror = () => {};
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      clearInterval(this.indexTimer);
      this.engine.disconnected();
      this.hooks.changed();
      // Was the device cut off? Ask once before retrying.
      this.checkStillAllowed().then((allowed) => {
        if (allowed) this.scheduleReconnect();
      });
    };
  }

  /** Whether the device may still sync; handles revocation and expiry. */
  async checkStillAllowed() {
    if (this.stopped) return false;
    try {
      await api.me(this.token());
      return true;
    } catch (e) {
      return !(await this.authFailure(e));
    }
  }

  /** Handles an authentication error; returns whether it was one. */
  async authFailure(e) {
    if (!(e instanceof api.ApiError)) return false;
    // Several answers can say so at once (the index, /api/me): the first one acts.
    if (this.stopped) return true;
    if (e.code === "device_revoked") {
      this.stop();
      await this.hooks.revoked();
      return true;
    }
    if (e.code === "session_expired" || e.code === "unauthenticated") {
      this.close();
      this.setState("signed_out");
      this.hooks.signedOut(e.code);
      return true;
    }
    return false;
  }

  receive(ws, data) {
    if (this.ws !== ws) return;
    let events;
    try {
      this.hooks.beforeReceive();
      events = JSON.parse(this.engine.receive(new Uint8Array(data)));
    } catch (e) {
      // A frame the engine cannot use: drop the connection and start again.
      console.warn("sync: closing after a bad frame:", e.message);
      ws.close(4000);
      return;
    }
    for (const event of events) {
      if (event.type === "connected") {
        this.attempt = 0;
        this.setState("connected");
        this.refreshIndex();
        clearInterval(this.indexTimer);
        this.indexTimer = setInterval(() => this.refreshIndex(), INDEX_EVERY_MS);
      } else if (event.type === "server_error" && /revoked/i.test(event.message)) {
        this.stop();
        this.hooks.revoked();
        return;
      }
    }
    this.hooks.events(events);
    this.flush();
  }

  /** Sends what the engine has to say (after edits, receives and requests). */
  flush() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    for (const frame of this.engine.takeOutgoing()) this.ws.send(frame);
  }

  /** Learns which records exist for this user and requests the missing ones. */
  async refreshIndex() {
    let index;
    try {
      index = await api.records(this.token());
    } catch (e) {
      await this.authFailure(e);
      return;
    }
    if (this.stopped) return;
    for (const r of index.records) {
      if (r.kind !== "case" && !this.engine.has(r.id) && !this.hooks.skip?.(r.id)) this.engine.request(r.id);
    }
    this.hooks.indexed(index);
    this.flush();
  }

  get connected() {
    return this.state === "connected";
  }
}
