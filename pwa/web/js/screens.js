// The screens other than the record editor: sign-in, PIN, unlock, records, new record,
// settings. Each returns an element; `app` is the App of app.js.

import * as api from "./api.js";
import { h, uid } from "./dom.js";
import { dateTime, label, t, tn } from "./i18n.js";
import { DEFAULT_PIN_POLICY, MAX_WRONG_PINS, pinKind, pinProblem, wrongPins } from "./store.js";

/** A labelled input. */
function field(labelText, attrs, help) {
  const id = uid();
  const helpId = help ? `${id}-help` : null;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, labelText),
    help ? h("p", { class: "help", id: helpId }, help) : null,
    h("input", { id, "aria-describedby": helpId, ...attrs }),
  );
}

function message(el, text, kind = "error") {
  el.textContent = text || "";
  el.className = `message ${kind}`;
  el.hidden = !text;
}

function loginError(e) {
  if (e instanceof api.NetworkError) return t("err_network");
  if (e instanceof api.ApiError) {
    if (e.code === "invalid_credentials") return t("err_invalid_credentials");
    if (e.code === "throttled") return t("err_throttled", { s: e.retryAfter || 60 });
    if (e.code === "device_revoked" || e.code === "unauthenticated") return t("err_revoked_login");
  }
  return t("err_generic", { m: e.message });
}

function loginForm(app, { again }) {
  const msg = h("p", { class: "message error", role: "alert", hidden: true });
  const meta = app.meta;
  const button = h("button", { type: "submit", class: "primary" }, t("sign_in"));
  const form = h(
    "form",
    {
      class: "stack",
      autocomplete: "on",
      onsubmit: async (ev) => {
        ev.preventDefault();
        const data = new FormData(form);
        const username = again ? meta.user.username : String(data.get("username")).trim();
        const deviceName = String(data.get("device_name") || "").trim() || t("device_name_default");
        button.disabled = true;
        button.textContent = t("signing_in");
        message(msg, "");
        try {
          const renew = again ? meta.token : undefined;
          const probe = app.probeForLogin(again);
          const result = await api.login(username, String(data.get("password")), deviceName, renew, probe);
          form.reset();
          if (again) await app.signedInAgain(result, deviceName);
          else await app.signedIn(result, deviceName, probe);
        } catch (e) {
          // Renewing told us this phone was revoked meanwhile: wipe, as at any other contact.
          if (again && e instanceof api.ApiError && e.code === "device_revoked") {
            await app.wipe("revoked_notice");
            return;
          }
          message(msg, loginError(e));
          button.disabled = false;
          button.textContent = t("sign_in");
        }
      },
    },
    again
      ? h("p", {}, t("session_expired"))
      : field(t("username"), {
          name: "username",
          autocomplete: "username",
          autocapitalize: "none",
          spellcheck: "false",
          required: true,
          autofocus: true,
        }),
    field(t("password"), {
      name: "password",
      type: "password",
      autocomplete: "current-password",
      required: true,
      autofocus: again,
    }),
    field(
      t("device_name"),
      {
        name: "device_name",
        maxlength: 100,
        value: again ? meta.device_name : "",
        placeholder: t("device_name_default"),
      },
      t("device_name_help"),
    ),
    msg,
    button,
  );
  return form;
}

export function login(app) {
  const notice = app.notice;
  app.notice = null;
  return h(
    "section",
    { class: "screen narrow", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, t("login_title")),
    notice ? h("p", { class: "message info", role: "status", dataset: { notice } }, t(notice)) : null,
    h("p", { class: "lead" }, t("login_intro")),
    loginForm(app, { again: false }),
  );
}

export function relogin(app) {
  return h(
    "section",
    { class: "screen narrow" },
    h("h1", {}, t("login_title")),
    loginForm(app, { again: true }),
    h("button", { type: "button", class: "link", onclick: () => app.show("main") }, t("back")),
  );
}

/**
 * A PIN field: a number pad for digits, a keyboard for a passphrase. Checked by the app (its
 * own words, in both languages), not by the browser's validation bubbles.
 */
function pinInput(name, labelText, autofocus, kind = "digits") {
  return field(labelText, {
    name,
    type: "password",
    inputmode: kind === "digits" ? "numeric" : "text",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    autofocus,
  });
}

/**
 * Setting the PIN. `app.screenOptions.mode`: "new" after sign-in (the policy came with it),
 * "change" from Settings (asks the current PIN), "policy" after an unlock whose PIN falls short
 * of the organisation's policy (the vault is open but not yet used).
 */
export function pin(app) {
  const mode = app.screenOptions?.mode || "new";
  const policy = (mode === "new" ? app.pendingLogin?.pin_policy : app.pinPolicy()) || DEFAULT_PIN_POLICY;
  const kind = policy.letters ? "passphrase" : "digits";
  const min = Math.max(6, policy.min_length);
  const msg = h("p", { class: "message error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary" }, t("pin_save"));
  const form = h(
    "form",
    {
      class: "stack",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const data = new FormData(form);
        const old = mode === "change" ? String(data.get("pin_old")) : null;
        const a = String(data.get("pin"));
        const b = String(data.get("pin_repeat"));
        const problem = pinProblem(a, policy);
        if (problem) return message(msg, t(problem.key, { n: problem.n }));
        if (a !== b) return message(msg, t("pin_mismatch"));
        button.disabled = true;
        button.textContent = t("pin_saving");
        try {
          form.reset();
          if (mode === "new") await app.setPin(a);
          else if (mode === "change") await app.changePin(old, a);
          else await app.replaceShortPin(a);
        } catch (e) {
          message(msg, e.code === "wrong_pin" ? `${t("pin_old_wrong")} ${tn("pin_wrong_left", e.left)}` : t("err_generic", { m: e.message }));
          button.disabled = false;
          button.textContent = t("pin_save");
        }
      },
    },
    mode === "change" ? pinInput("pin_old", t("pin_old"), true, app.pinKindNow || "digits") : null,
    pinInput("pin", t("pin"), mode !== "change", kind),
    pinInput("pin_repeat", t("pin_repeat"), false, kind),
    msg,
    button,
  );
  return h(
    "section",
    { class: "screen narrow" },
    h("h1", {}, t(mode === "new" ? "pin_title" : "pin_new_title")),
    mode === "policy" ? h("p", { class: "message info" }, t("pin_policy_help", { n: min })) : null,
    h("p", { class: "help", dataset: { minLength: min, kind } }, t(kind === "digits" ? "pin_help" : "passphrase_help", { n: min })),
    form,
    mode === "change" ? h("a", { class: "button", href: "#/settings" }, t("back")) : null,
  );
}

export function unlock(app) {
  const msg = h("p", { class: "message error", role: "alert", hidden: true });
  const button = h("button", { type: "submit", class: "primary" }, t("unlock"));
  wrongPins().then((n) => {
    if (n > 0) message(msg, tn("pin_wrong", MAX_WRONG_PINS - n));
  });
  const form = h(
    "form",
    {
      class: "stack",
      novalidate: true,
      onsubmit: async (ev) => {
        ev.preventDefault();
        const input = form.elements.pin;
        const value = input.value;
        input.value = "";
        button.disabled = true;
        button.textContent = t("unlocking");
        try {
          const result = await app.unlock(value);
          if (result.wrong) {
            message(msg, tn("pin_wrong", result.left));
            button.disabled = false;
            button.textContent = t("unlock");
            input.focus();
          }
        } catch (e) {
          message(msg, t("err_generic", { m: e.message }));
          button.disabled = false;
          button.textContent = t("unlock");
        }
      },
    },
    pinInput("pin", t("pin"), true),
    msg,
    button,
  );
  // A passphrase needs the keyboard, digits the number pad (the kind is kept in the clear).
  pinKind().then((kind) => {
    app.pinKindNow = kind;
    const input = form.elements.pin;
    if (input) input.inputMode = kind === "digits" ? "numeric" : "text";
  });
  return h(
    "section",
    { class: "screen narrow" },
    h("h1", {}, t("unlock_title")),
    h("p", { class: "lead" }, t("unlock_help")),
    form,
    panicButton(app),
  );
}

/** The panic action: one tap, one confirmation, everything erased. */
export function panicButton(app) {
  const box = h("div", { class: "panic" });
  const ask = () => {
    const waiting = app.waitingCount();
    box.replaceChildren(
      h(
        "div",
        { class: "confirm", role: "alertdialog", "aria-label": t("panic") },
        h("p", {}, t("panic_confirm")),
        waiting ? h("p", { class: "message error" }, t("panic_unsynced", { n: waiting })) : null,
        h(
          "div",
          { class: "row" },
          h("button", { type: "button", class: "danger", dataset: { action: "wipe-confirm" }, onclick: () => app.wipe("wiped_notice") }, t("panic_yes")),
          h("button", { type: "button", onclick: reset }, t("cancel")),
        ),
      ),
    );
    box.querySelector("[data-action=wipe-confirm]").focus();
  };
  const reset = () =>
    box.replaceChildren(
      h("button", { type: "button", class: "danger outline", dataset: { action: "panic" }, onclick: ask }, t("panic")),
    );
  reset();
  return box;
}

/**
 * Sign out: this phone stops being a device of the account (the server revokes it) and its
 * Saksi data is erased. Needs the network, so that the device is really signed out; warns
 * about records not yet synced, like the panic action.
 */
function signOutButton(app) {
  const box = h("div", { class: "sign-out" });
  const reset = () =>
    box.replaceChildren(h("button", { type: "button", dataset: { action: "sign-out" }, onclick: ask }, t("sign_out")));
  const ask = () => {
    const waiting = app.waitingCount();
    const online = app.session?.sync.connected;
    box.replaceChildren(
      h(
        "div",
        { class: "confirm", role: "alertdialog", "aria-label": t("sign_out") },
        h("p", {}, t(online ? "sign_out_confirm" : "sign_out_offline")),
        waiting ? h("p", { class: "message error" }, t("panic_unsynced", { n: waiting })) : null,
        h(
          "div",
          { class: "row" },
          online
            ? h("button", { type: "button", class: "danger", dataset: { action: "sign-out-confirm" }, onclick: () => app.wipe("signed_out_notice") }, t("sign_out"))
            : null,
          h("button", { type: "button", onclick: reset }, t("cancel")),
        ),
      ),
    );
  };
  reset();
  return box;
}

export function otherTab() {
  return h("section", { class: "screen narrow" }, h("p", { class: "message info" }, t("other_tab")));
}

// ---- records ----

function kindLabel(app, kind) {
  return label(app.kinds.get(kind)?.label) || kind;
}

function statusLabel(app, status) {
  return label(app.statuses.get(status)) || status;
}

function caseName(app, id) {
  return app.meta.cases.find((c) => c.id === id)?.name || "";
}

/** Every record on the phone or known from the server, newest first. */
function allRecords(app) {
  const { engine, meta } = app.session;
  const rows = new Map();
  for (const id of engine.documents()) {
    if (engine.isEmpty(id)) continue;
    let v;
    try {
      v = app.view(id);
    } catch {
      continue;
    }
    if (v.kind === "case") continue;
    const rec = meta.records[id] || {};
    rows.set(id, {
      id,
      kind: v.kind,
      case: v.case,
      title: v.title,
      status: v.status,
      created_by: v.created_by,
      updated_at: v.updated_at,
      conflicts: v.conflicts.length > 0,
      dirty: Boolean(rec.dirty),
      refused: Boolean(rec.refused),
      here: true,
    });
  }
  for (const r of meta.index) {
    if (!rows.has(r.id)) rows.set(r.id, { ...r, conflicts: r.has_conflicts, here: false });
  }
  return [...rows.values()].sort((a, b) => b.updated_at - a.updated_at);
}

function select(name, labelText, options, value, onchange) {
  const id = uid();
  return h(
    "div",
    { class: "field compact" },
    h("label", { for: id }, labelText),
    h(
      "select",
      { id, name, onchange },
      options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
    ),
  );
}

/** The record kinds the signed-in role may create. */
function creatableKinds(app) {
  const role = app.meta.user.role;
  return app.catalogue.kinds.filter(
    (k) =>
      k.kind !== "case" &&
      (role === "coordinator" ||
        role === "admin" ||
        (role === "monitor" && k.kind === "court_observation") ||
        (role === "liaison" && k.kind === "family_statement")),
  );
}

export function list(app) {
  const f = app.filters;
  const rows = allRecords(app);
  // Kinds this person can create, and any others among the records they can see.
  const present = new Set(rows.map((r) => r.kind));
  const creatable = new Set(creatableKinds(app).map((k) => k.kind));
  const kinds = app.catalogue.kinds.filter((k) => k.kind !== "case" && (creatable.has(k.kind) || present.has(k.kind)));
  const refilter = (key) => (ev) => {
    f[key] = ev.target.value;
    app.rerender();
  };
  const shown = rows.filter(
    (r) => (!f.case || r.case === f.case) && (!f.kind || r.kind === f.kind) && (!f.status || r.status === f.status),
  );
  const items = shown.map((r) => {
    const badges = [];
    if (!r.here) badges.push(["downloading", t("badge_downloading")]);
    if (r.dirty) badges.push(["unsynced", t("badge_unsynced")]);
    if (r.conflicts) badges.push(["conflict", t("badge_conflict")]);
    if (r.refused) badges.push(["refused", t("badge_refused")]);
    const body = [
      h("span", { class: "title" }, r.title || t("untitled")),
      h(
        "span",
        { class: "meta" },
        `${kindLabel(app, r.kind)} · `,
        h("span", { class: `status status-${r.status}` }, statusLabel(app, r.status)),
      ),
      h("span", { class: "meta" }, [caseName(app, r.case), r.updated_at ? dateTime(r.updated_at) : ""].filter(Boolean).join(" · ")),
      badges.length
        ? h("span", { class: "badges" }, badges.map(([k, text]) => h("span", { class: `badge badge-${k}`, dataset: { badge: k } }, text)))
        : null,
    ];
    return h(
      "li",
      { dataset: { id: r.id, status: r.status } },
      r.here ? h("a", { class: "card", href: app.recordHref(r.id) }, body) : h("div", { class: "card pending" }, body),
    );
  });
  const all = t("all");
  return h(
    "section",
    { class: "screen" },
    h(
      "div",
      { class: "toolbar" },
      h("h1", {}, t("records")),
      h("a", { class: "button primary", href: "#/new", dataset: { action: "new" } }, t("new_record")),
    ),
    h(
      "div",
      { class: "filters" },
      select("filter_case", t("filter_case"), [["", all], ...app.meta.cases.map((c) => [c.id, c.name])], f.case, refilter("case")),
      select("filter_kind", t("filter_kind"), [["", all], ...kinds.map((k) => [k.kind, label(k.label)])], f.kind, refilter("kind")),
      select(
        "filter_status",
        t("filter_status"),
        [["", all], ...app.catalogue.statuses.map((s) => [s.id, label(s.label)])],
        f.status,
        refilter("status"),
      ),
    ),
    items.length
      ? h("ul", { class: "records" }, items)
      : h("p", { class: "empty" }, rows.length ? t("no_match") : t("no_records")),
    h(
      "div",
      { class: "row footer" },
      h("a", { class: "button", href: "#/settings", dataset: { action: "settings" } }, t("settings")),
      h("button", { type: "button", dataset: { action: "lock" }, onclick: () => app.lock() }, t("lock")),
    ),
  );
}

export function newRecord(app) {
  const kinds = creatableKinds(app);
  const cases = app.meta.cases;
  if (!cases.length) {
    return h(
      "section",
      { class: "screen" },
      h("h1", {}, t("new_record")),
      h("p", { class: "message info" }, t("no_cases")),
      h("a", { class: "button", href: "#/" }, t("back")),
    );
  }
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: (ev) => {
        ev.preventDefault();
        const data = new FormData(form);
        const id = app.createRecord(String(data.get("kind")), String(data.get("case")));
        if (id) location.replace(app.recordHref(id));
      },
    },
    select("case", t("choose_case"), cases.map((c) => [c.id, c.name]), app.filters.case || cases[0].id),
    h(
      "fieldset",
      { class: "choices" },
      h("legend", {}, t("choose_kind")),
      kinds.map((k, i) =>
        h(
          "label",
          { class: "choice" },
          h("input", { type: "radio", name: "kind", value: k.kind, checked: i === 0, required: true }),
          h("span", {}, label(k.label)),
        ),
      ),
    ),
    h("button", { type: "submit", class: "primary" }, t("create")),
    h("a", { class: "button", href: "#/" }, t("back")),
  );
  return h("section", { class: "screen" }, h("h1", {}, t("new_record")), form);
}

export function settings(app) {
  const meta = app.meta;
  const minutes = meta.settings?.autoLockMinutes || 5;
  return h(
    "section",
    { class: "screen" },
    h("h1", {}, t("settings")),
    h("p", {}, t("signed_in_as", { user: meta.user.username, device: meta.device_name })),
    h("p", { class: "help" }, t("on_phone", { n: app.session.engine.documents().length })),
    select(
      "auto_lock",
      t("auto_lock"),
      [1, 2, 5, 10, 15].map((m) => [String(m), String(m)]),
      String(minutes),
      (ev) => {
        meta.settings = { ...meta.settings, autoLockMinutes: Number(ev.target.value) };
        app.saveMeta();
      },
    ),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", dataset: { action: "lock" }, onclick: () => app.lock() }, t("lock")),
      h("button", { type: "button", dataset: { action: "change-pin" }, onclick: () => app.show("pin", { mode: "change" }) }, t("change_pin")),
    ),
    signOutButton(app),
    panicButton(app),
    h("a", { class: "button", href: "#/" }, t("back")),
  );
}

export function missing(app) {
  return h(
    "section",
    { class: "screen" },
    h("p", { class: "message info" }, t("badge_downloading")),
    h("a", { class: "button", href: "#/" }, t("back")),
  );
}

/**
 * What quick exit leaves on the screen: a plain calculator that works, with nothing of Saksi
 * in it. Saksi is locked behind it; reopening the app's address shows the unlock screen.
 */
export function neutral() {
  let shown = "0";
  let acc = null;
  let op = null;
  let fresh = true;
  const display = h("output", { class: "calc-display", "aria-live": "polite" }, shown);
  const show = (v) => {
    shown = String(v);
    display.textContent = shown.length > 12 ? Number(shown).toPrecision(8) : shown;
  };
  const apply = () => {
    const x = Number(shown);
    if (op === null || acc === null) return x;
    return { "+": acc + x, "−": acc - x, "×": acc * x, "÷": x === 0 ? NaN : acc / x }[op];
  };
  const press = (k) => {
    if (/[0-9]/.test(k)) {
      show(fresh || shown === "0" ? k : shown + k);
      fresh = false;
    } else if (k === ".") {
      if (fresh) show("0.");
      else if (!shown.includes(".")) show(shown + ".");
      fresh = false;
    } else if (k === "C") {
      acc = null;
      op = null;
      fresh = true;
      show("0");
    } else if (k === "=") {
      show(apply());
      acc = null;
      op = null;
      fresh = true;
    } else {
      acc = apply();
      show(acc);
      op = k;
      fresh = true;
    }
  };
  const keys = ["7", "8", "9", "÷", "4", "5", "6", "×", "1", "2", "3", "−", "0", ".", "=", "+", "C"];
  return h(
    "section",
    { class: "calc", "aria-label": "Calculator" },
    display,
    h("div", { class: "calc-keys" }, ...keys.map((k) => h("button", { type: "button", onclick: () => press(k) }, k))),
  );
}
