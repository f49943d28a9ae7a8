// The record editor: a form rendered from the catalogue for any record kind.
//
// Every input writes to the engine (through `app.edit`, which saves the record encrypted and
// sends it): text-like inputs debounced (500 ms) and on blur, choices at once. Pending typing
// is registered with `app.flushers`, so it reaches the engine before any merge is applied and
// before locking. A merge refreshes the form in place: a field being typed in is left alone
// (narratives take the merged text and keep the caret where the user was typing).

import { h, replace, uid } from "./dom.js";
import { date, dateTime, fileSize, label, lang, t } from "./i18n.js";
import { Recorder, blobOf, fetchFile, storePicked } from "./files.js";

const DEBOUNCE_MS = 500;
/** Problems shown as soon as they are entered, before any Submit: wrong, not just missing. */
const EARLY_PROBLEMS = ["date_order", "date_in_future", "date_too_old", "negative"];

/** Today's date on the phone, `YYYY-MM-DD`. */
function today() {
  const d = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** Where a caret at `pos` in `before` belongs in `after` (one changed region assumed). */
function mapCaret(before, after, pos) {
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before[start] === after[start]) start++;
  let end = 0;
  while (
    end < max - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  ) {
    end++;
  }
  if (pos <= start) return pos;
  if (pos >= before.length - end) return pos + (after.length - before.length);
  return after.length - end;
}

/** One field of the form. */
class Field {
  constructor(editor, def) {
    this.editor = editor;
    this.def = def;
    this.timer = null;
    /** Set when its editor closes: a field removed from the page writes nothing more. */
    this.closed = false;
    this.committed = undefined;
    this.inputId = uid("field");
    this.problem = h("p", { class: "problem", role: "alert", hidden: true });
    this.conflict = h("div", { class: "conflict", hidden: true });
    this.flusher = () => this.commit();
    this.el = h(
      "div",
      { class: `field type-${def.type}`, dataset: { field: def.id } },
      this.labelEl(),
      label(def.help) ? h("p", { class: "help", id: `${this.inputId}-help` }, label(def.help)) : null,
      this.control(),
      this.conflict,
      this.problem,
    );
  }

  labelEl() {
    const def = this.def;
    const tag = this.isGroup() ? "span" : "label";
    return h(
      tag,
      { class: "label", for: this.isGroup() ? null : this.inputId, id: `${this.inputId}-label` },
      label(def.label),
      def.required ? h("span", { class: "required", title: t("required") }, " *") : null,
    );
  }

  isGroup() {
    return this.def.type === "yes_no_unknown" || this.def.type === "list";
  }

  get id() {
    return this.editor.id;
  }

  get disabled() {
    return this.editor.readOnly;
  }

  control() {
    const def = this.def;
    const common = {
      id: this.inputId,
      name: `f-${def.id}`,
      "aria-describedby": label(def.help) ? `${this.inputId}-help` : null,
      disabled: this.disabled,
    };
    const typing = {
      oninput: () => this.schedule(),
      onblur: () => {
        if (this.closed) return;
        this.commit();
        this.editor.refreshField(this);
      },
    };
    switch (def.type) {
      case "long_text":
        this.input = h("textarea", { ...common, ...typing, rows: 6, spellcheck: "true" });
        break;
      case "text":
        this.input = h("input", { ...common, ...typing, type: "text", maxlength: 2000 });
        break;
      case "number":
        this.input = h("input", { ...common, ...typing, type: "text", inputmode: "numeric", pattern: "-?[0-9]*" });
        break;
      case "date":
      case "time":
        // Typed digit by digit, a date is "valid" at every year digit (0002, 0020, ...): wait for
        // a pause or for leaving the field, like text, rather than storing each one.
        this.input = h("input", { ...common, type: def.type, onchange: () => this.schedule(), onblur: () => this.commit() });
        break;
      case "enum":
        this.input = h(
          "select",
          { ...common, onchange: () => this.commit() },
          h("option", { value: "" }, "—"),
          def.choices.map((c) => h("option", { value: c.id }, label(c.label))),
        );
        break;
      case "yes_no_unknown":
        this.input = h(
          "div",
          { class: "segmented", role: "radiogroup", "aria-labelledby": `${this.inputId}-label` },
          def.choices.map((c) =>
            h(
              "label",
              { class: "segment" },
              h("input", {
                type: "radio",
                name: `f-${def.id}`,
                value: c.id,
                disabled: this.disabled,
                onchange: () => this.commit(),
              }),
              h("span", {}, label(c.label)),
            ),
          ),
        );
        break;
      case "list":
        this.items = h("ol", { class: "items" });
        this.input = h(
          "div",
          { class: "list-field", role: "group", "aria-labelledby": `${this.inputId}-label` },
          this.items,
          h(
            "button",
            {
              type: "button",
              class: "add",
              disabled: this.disabled,
              dataset: { action: "add-item" },
              onclick: () => {
                const input = this.addItem("");
                input.focus();
              },
            },
            `+ ${t("add_item")}`,
          ),
        );
        break;
      default:
        this.input = h("input", { ...common, ...typing, type: "text" });
    }
    return this.input;
  }

  addItem(value) {
    const input = h("input", {
      type: "text",
      value,
      maxlength: 2000,
      disabled: this.disabled,
      "aria-labelledby": `${this.inputId}-label`,
      oninput: () => this.schedule(),
      onblur: () => this.commit(),
    });
    const row = h(
      "li",
      {},
      input,
      h(
        "button",
        {
          type: "button",
          class: "remove",
          disabled: this.disabled,
          "aria-label": t("remove_item"),
          title: t("remove_item"),
          onclick: () => {
            row.remove();
            this.commit();
          },
        },
        "×",
      ),
    );
    this.items.append(row);
    return input;
  }

  /** The value in the form, in the engine's terms (`null` when empty). */
  formValue() {
    switch (this.def.type) {
      case "yes_no_unknown": {
        const checked = this.input.querySelector("input:checked");
        return checked ? checked.value : null;
      }
      case "list":
        return [...this.items.querySelectorAll("input")].map((i) => i.value).filter((v) => v.trim() !== "");
      case "long_text":
        return this.input.value;
      default:
        return this.input.value === "" ? null : this.input.value;
    }
  }

  same(a, b) {
    return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  }

  /** Shows the merged value (from the view). */
  show(value) {
    const def = this.def;
    switch (def.type) {
      case "yes_no_unknown":
        for (const r of this.input.querySelectorAll("input")) r.checked = r.value === value;
        this.committed = value ?? null;
        break;
      case "list": {
        const items = Array.isArray(value) ? value : [];
        this.items.replaceChildren();
        for (const item of items) this.addItem(item);
        this.committed = items;
        break;
      }
      case "long_text": {
        const text = typeof value === "string" ? value : "";
        const el = this.input;
        if (document.activeElement === el && el.value !== text) {
          const start = mapCaret(el.value, text, el.selectionStart);
          const end = mapCaret(el.value, text, el.selectionEnd);
          el.value = text;
          el.setSelectionRange(start, end);
        } else if (el.value !== text) {
          el.value = text;
        }
        this.committed = text;
        break;
      }
      default: {
        const shown = value === undefined || value === null ? "" : String(value);
        this.input.value = shown;
        this.committed = shown === "" ? null : shown;
      }
    }
  }

  /** Whether the user is typing in this field right now. */
  busy() {
    const focused = document.activeElement;
    return this.timer !== null || (this.el.contains(focused) && focused.matches("input, textarea, select"));
  }

  schedule() {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.commit(), DEBOUNCE_MS);
    this.editor.app.flushers.add(this.flusher);
  }

  /** Writes the form's value to the engine if it changed. */
  commit() {
    clearTimeout(this.timer);
    this.timer = null;
    this.editor.app.flushers.delete(this.flusher);
    // Chromium fires `blur` and `change` on a focused field as it leaves the page (a lock, a
    // wipe): once its editor has closed, it has nothing to write and no session to write to.
    if (this.closed || this.disabled) return;
    const def = this.def;
    // A date or time the browser cannot read (31 February) shows as empty: say what is wrong,
    // keep what was stored.
    if ((def.type === "date" || def.type === "time") && this.input.validity?.badInput) {
      this.setProblem(t(def.type === "date" ? "date_invalid" : "time_invalid"), "input");
      return;
    }
    if (this.problem.dataset.code === "input") this.setProblem(null);
    const value = this.formValue();
    if (this.same(value, this.committed)) return;
    if (def.type === "number" && value !== null && !/^-?[0-9]+$/.test(value.trim())) {
      this.setProblem(t("number_invalid"), "input");
      return;
    }
    const ok = this.editor.app.edit(this.id, (engine, now) => {
      if (def.type === "long_text") engine.setText(this.id, def.id, value, now);
      else if (def.type === "list") engine.setList(this.id, def.id, JSON.stringify(value), now);
      else if (value === null) engine.clearField(this.id, def.id, now);
      else if (def.type === "number") engine.setField(this.id, def.id, JSON.stringify(Number(value.trim())), now);
      else engine.setField(this.id, def.id, JSON.stringify(value), now);
    });
    if (ok) {
      this.committed = value;
      if (this.problem.dataset.code === "input") this.setProblem(null);
      this.editor.markSaved();
      if (this.editor.def.title_fields?.includes(def.id)) this.editor.refreshHead();
      // Problems from the last Submit follow the record as it is filled in; impossible
      // combinations (an arrest after the hearing) show as soon as they are entered.
      this.editor.revalidate();
    }
  }

  setProblem(text, code = "input") {
    this.problem.textContent = text || "";
    this.problem.hidden = !text;
    this.problem.dataset.code = text ? code : "";
    this.el.classList.toggle("invalid", Boolean(text));
  }

  /** Shows a conflict: every value and who wrote it when. */
  showConflict(conflict, canResolve) {
    if (!conflict) {
      this.conflict.hidden = true;
      this.conflict.replaceChildren();
      this.el.classList.remove("has-conflict");
      return;
    }
    this.el.classList.add("has-conflict");
    this.conflict.hidden = false;
    replace(
      this.conflict,
      h("p", { class: "conflict-title" }, t("conflict_title")),
      h(
        "ul",
        {},
        conflict.values.map((v, i) =>
          h(
            "li",
            { dataset: { user: v.by.user || "" } },
            h("strong", { class: "value" }, this.display(v.value)),
            " — ",
            h("span", { class: "who" }, v.by.user || v.by.actor.slice(0, 8)),
            ", ",
            h("time", { datetime: new Date(v.by.at).toISOString() }, dateTime(v.by.at)),
            i === 0 ? h("span", { class: "shown" }, ` (${t("conflict_shown")})`) : null,
            canResolve
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "small",
                    onclick: () => {
                      if (this.editor.app.edit(this.id, (engine, now) => engine.resolve(this.id, this.def.id, JSON.stringify(v.value), now))) {
                        this.editor.refresh();
                        // The chosen value in the field, the box gone, at once.
                        this.editor.refreshField(this);
                      }
                    },
                  },
                  t("use_value"),
                )
              : null,
          ),
        ),
      ),
    );
  }

  /** A value as the user reads it (choice labels, local dates). */
  display(value) {
    const def = this.def;
    if (Array.isArray(value)) return value.join("; ");
    const choice = def.choices?.find((c) => c.id === value);
    if (choice) return label(choice.label);
    if (def.type === "date" && typeof value === "string") return date(value);
    return String(value);
  }
}

export class RecordEditor {
  constructor(app, id) {
    this.app = app;
    this.id = id;
    this.fields = new Map();
    this.problems = null;
    this.build();
  }

  get readOnly() {
    const view = this.view;
    const reviews = ["coordinator", "admin"].includes(this.app.meta.user.role);
    // Approved and archived records are closed to field staff (the server refuses edits too).
    return ["approved", "archived"].includes(view.status) && !reviews;
  }

  build() {
    this.view = this.app.view(this.id);
    const def = this.app.kinds.get(this.view.kind);
    this.def = def;
    this.fields.clear();
    this.banners = h("div", { class: "record-banners" });
    this.reviewEl = h("section", { class: "review", hidden: true });
    this.problemsEl = h("div", { class: "problems", role: "alert", hidden: true });
    this.actionsEl = h("div", { class: "actions" });
    this.savedEl = h("span", { class: "saved", "aria-live": "polite" });
    this.sectionEls = new Map();
    const sections = def.sections.map((section) => {
      const fields = def.fields.filter((f) => f.section === section.id).map((f) => {
        const field = new Field(this, f);
        this.fields.set(f.id, field);
        return field.el;
      });
      const el = h("details", { class: "section", open: true, dataset: { section: section.id } }, h("summary", {}, label(section.label)), fields);
      this.sectionEls.set(section.id, el);
      return el;
    });
    // One line of links to the sections: a long form is reached without scrolling through it.
    const nav = h(
      "nav",
      { class: "section-nav", "aria-label": t("sections") },
      def.sections.map((section) =>
        h(
          "a",
          {
            href: this.app.recordHref(this.id),
            dataset: { goto: section.id },
            onclick: (ev) => {
              ev.preventDefault();
              const el = this.sectionEls.get(section.id);
              el.open = true;
              el.scrollIntoView({ block: "start" });
            },
          },
          label(section.label),
        ),
      ),
    );
    this.filesEl = this.buildFiles();
    nav.append(
      h(
        "a",
        {
          href: this.app.recordHref(this.id),
          dataset: { goto: "files" },
          onclick: (ev) => {
            ev.preventDefault();
            this.filesEl.scrollIntoView({ block: "start" });
          },
        },
        label(def.attachments.label),
      ),
    );
    this.conflictsEl = h("div", { class: "conflicts-summary", role: "status", hidden: true });
    this.headEl = h("div", { class: "record-head" });
    this.el = h(
      "section",
      { class: "screen record", dataset: { id: this.id, kind: this.view.kind } },
      h("div", { class: "toolbar" }, h("a", { class: "button", href: "#/", dataset: { action: "back" } }, `‹ ${t("back")}`), this.savedEl),
      this.headEl,
      nav,
      this.banners,
      this.conflictsEl,
      this.reviewEl,
      this.problemsEl,
      h("p", { class: "help" }, t("required_hint")),
      h("form", { class: "record-form", onsubmit: (ev) => ev.preventDefault() }, sections),
      this.filesEl,
      this.actionsEl,
    );
    this.fill(true);
  }

  // ---- files ----

  /** The record's files: the list, and taking a photo, recording, attaching a file. */
  buildFiles() {
    const def = this.def.attachments;
    this.fileListEl = h("ul", { class: "file-list" });
    this.fileNoteEl = h("p", { class: "message info", role: "status", hidden: true });
    this.recorderEl = h("div", { class: "recorder", hidden: true, role: "group", "aria-label": t("recording_title") });
    const picker = (kind, attrs) => {
      const input = h("input", {
        type: "file",
        ...attrs,
        class: "visually-hidden",
        dataset: { capture: kind },
        onchange: async () => {
          const file = input.files?.[0];
          input.value = "";
          if (file) await this.attachPicked(file, kind === "photo");
        },
      });
      return h("label", { class: "button", dataset: { action: `files-${kind}` } }, t(`files_${kind === "photo" ? "take_photo" : "attach"}`), input);
    };
    this.keepMetadata = h("input", { type: "checkbox", name: "keep_metadata" });
    this.fileActionsEl = h(
      "div",
      { class: "file-actions" },
      picker("photo", { accept: "image/*", capture: "environment" }),
      h("button", { type: "button", dataset: { action: "files-record" }, onclick: () => this.startRecording() }, t("files_record_audio")),
      picker("file", {}),
      h(
        "label",
        { class: "check" },
        this.keepMetadata,
        h("span", {}, t("files_keep_metadata")),
      ),
      h("p", { class: "help" }, t("files_keep_metadata_help")),
    );
    const el = h(
      "section",
      { class: "files", dataset: { section: "files" } },
      h("h2", {}, label(def.label)),
      h("p", { class: "help" }, label(def.help)),
      this.fileListEl,
      this.fileNoteEl,
      this.recorderEl,
      this.fileActionsEl,
    );
    return el;
  }

  note(text) {
    this.fileNoteEl.hidden = !text;
    this.fileNoteEl.textContent = text || "";
  }

  /** A photo or document picked on the phone: cleaned (photos), encrypted, attached. */
  async attachPicked(file, photo) {
    const s = this.app.session;
    if (!s || this.readOnly) return;
    this.note(t("files_saving"));
    try {
      const stored = await storePicked(s.vault, file, {
        keepMetadata: this.keepMetadata.checked,
        maxBytes: this.app.maxFileBytes(),
        photo,
      });
      if (this.app.session !== s) return;
      this.app.attach(this.id, stored.entry, stored.pieces);
      this.note(stored.uncleaned ? t("files_uncleaned") : null);
      this.refresh();
    } catch (e) {
      this.note(e.key === "file_too_large" ? t("file_too_large", { size: fileSize(e.size), max: fileSize(e.max) }) : e.key ? t(e.key) : t("edit_failed", { m: e.message }));
    }
  }

  async startRecording() {
    const s = this.app.session;
    if (!s || this.readOnly || this.recorder) return;
    const timer = h("span", { class: "timer", "aria-live": "off" }, "0:00");
    const status = h("span", { class: "recording-state" }, t("recording_title"));
    const pause = h("button", { type: "button", dataset: { action: "recording-pause" } }, t("recording_pause"));
    const stop = h("button", { type: "button", class: "primary", dataset: { action: "recording-stop" } }, t("recording_stop"));
    const cancel = h("button", { type: "button", dataset: { action: "recording-cancel" } }, t("recording_cancel"));
    const recorder = new Recorder(s.vault, {
      maxBytes: this.app.maxFileBytes(),
      onTick: (ms) => {
        const sec = Math.floor(ms / 1000);
        timer.textContent = `${Math.floor(sec / 60)}:${String(sec % 60).padStart(2, "0")}`;
      },
      onPiece: (pieces) => {
        // Noted with every stored piece: an app closed mid-recording attaches what it has.
        if (s.meta.recording?.id === recorder.id) {
          s.meta.recording.pieces = pieces;
          this.app.saveMeta();
        }
      },
      onLimit: () => {
        this.note(t("recording_limit"));
        this.stopRecording();
      },
    });
    this.recorder = recorder;
    try {
      await recorder.start();
    } catch {
      this.recorder = null;
      await recorder.cancel().catch(() => {});
      this.note(t("recording_denied"));
      return;
    }
    s.meta.recording = {
      id: recorder.id,
      record: this.id,
      type: recorder.type.split(";")[0],
      name: `recording-${new Date().toISOString().slice(0, 16).replace(/[:T]/g, "-")}.${recorder.type.includes("mp4") ? "m4a" : recorder.type.includes("ogg") ? "ogg" : "webm"}`,
      started_at: Date.now(),
      pieces: 0,
    };
    this.app.saveMeta();
    pause.onclick = () => {
      if (recorder.paused) {
        recorder.resume();
        pause.textContent = t("recording_pause");
        status.textContent = t("recording_title");
        this.recorderEl.dataset.state = "recording";
      } else {
        recorder.pause();
        pause.textContent = t("recording_resume");
        status.textContent = t("recording_paused");
        this.recorderEl.dataset.state = "paused";
      }
    };
    stop.onclick = () => this.stopRecording();
    cancel.onclick = async () => {
      this.recorder = null;
      this.recorderEl.hidden = true;
      this.fileActionsEl.hidden = false;
      await recorder.cancel();
      delete s.meta.recording;
      this.app.saveMeta();
    };
    this.recorderEl.dataset.state = "recording";
    replace(this.recorderEl, h("span", { class: "dot", "aria-hidden": "true" }), status, timer, pause, stop, cancel);
    this.recorderEl.hidden = false;
    this.fileActionsEl.hidden = true;
    this.note(null);
  }

  async stopRecording() {
    const recorder = this.recorder;
    const s = this.app.session;
    if (!recorder || !s) return;
    this.recorder = null;
    this.recorderEl.hidden = true;
    this.fileActionsEl.hidden = false;
    try {
      const done = await recorder.stop();
      if (this.app.session !== s) return;
      delete s.meta.recording;
      if (done.entry.size > 0) this.app.attach(this.id, done.entry, done.pieces);
      else this.app.saveMeta();
      this.refresh();
    } catch (e) {
      this.note(t("edit_failed", { m: e.message }));
    }
  }

  /** What this phone knows of a file's whereabouts, in words. */
  fileState(a) {
    const local = this.app.session?.meta.files?.[a.id];
    if (!local) return { state: "elsewhere", text: t("files_state_elsewhere") };
    if (!local.own) return { state: "cached", text: t("files_state_cached") };
    const why = local.reason ? ` (${t(local.reason)}${local.message ? `: ${local.message}` : ""})` : "";
    switch (local.state) {
      case "done":
        return { state: "done", text: t("files_state_done") };
      case "uploading":
        return { state: "uploading", text: t("files_state_uploading", { p: Math.floor((100 * (local.sent || 0)) / Math.max(1, local.size)) }) };
      case "failed":
        return { state: "failed", text: t("files_state_failed") + why };
      default:
        return { state: "waiting", text: t("files_state_waiting") + why };
    }
  }

  renderFiles() {
    if (!this.fileListEl || !this.app.session) return;
    const files = this.view.attachments || [];
    const me = this.app.meta.user.username;
    const reviews = ["coordinator", "admin"].includes(this.app.meta.user.role);
    this.fileActionsEl.hidden = this.readOnly || Boolean(this.recorder);
    if (!files.length) {
      replace(this.fileListEl, h("li", { class: "empty" }, t("files_none")));
      return;
    }
    replace(
      this.fileListEl,
      files.map((a) => {
        const st = this.fileState(a);
        const local = this.app.session.meta.files[a.id];
        const meta = [fileSize(a.size), a.by, dateTime(a.captured_at)];
        if (a.metadata) meta.push(t(a.metadata === "removed" ? "files_metadata_removed" : "files_metadata_kept"));
        const actions = [
          h("button", { type: "button", dataset: { action: "file-open" }, onclick: () => this.openFile(a) }, t("files_view")),
        ];
        if (local?.own && local.state === "failed") {
          actions.push(
            h(
              "button",
              {
                type: "button",
                dataset: { action: "file-retry" },
                onclick: () => {
                  Object.assign(local, { state: "waiting", reason: null, message: null });
                  this.app.saveMeta();
                  this.app.session.uploads.kick();
                  this.renderFiles();
                },
              },
              t("files_retry"),
            ),
          );
        }
        if (!this.readOnly && (a.by === me || reviews)) {
          actions.push(
            h(
              "button",
              {
                type: "button",
                class: "danger",
                dataset: { action: "file-remove" },
                onclick: () => {
                  if (!confirm(t("files_remove_confirm"))) return;
                  if (this.app.edit(this.id, (engine, now) => engine.removeAttachment(this.id, a.id, now))) this.refresh();
                },
              },
              t("files_remove"),
            ),
          );
        }
        return h(
          "li",
          { class: "file", dataset: { file: a.id, state: st.state, type: a.type } },
          h("span", { class: "file-kind", "aria-hidden": "true" }, a.type.startsWith("image/") ? "▣" : a.type.startsWith("audio/") ? "♪" : "▤"),
          h(
            "div",
            { class: "file-body" },
            h("span", { class: "file-name" }, a.name),
            h("span", { class: "meta" }, meta.join(" · ")),
            h("span", { class: "file-state", dataset: { state: st.state } }, st.text),
            a.caption ? h("span", { class: "file-caption" }, a.caption) : null,
            h("span", { class: "file-hash", title: t("files_sha256") }, `SHA-256 ${a.sha256}`),
          ),
          h("div", { class: "file-buttons" }, actions),
        );
      }),
    );
  }

  /** Shows a file: the phone's own copy, or fetched from the server (checked, then kept). */
  async openFile(a) {
    const s = this.app.session;
    if (!s) return;
    let local = s.meta.files[a.id];
    try {
      if (!local) {
        this.note(t("files_saving"));
        const stored = await fetchFile(s.vault, s.meta.token, a);
        local = s.meta.files[a.id] = {
          record: this.id,
          sha256: a.sha256,
          size: stored.size,
          type: a.type,
          name: a.name,
          pieces: stored.pieces,
          cached: true,
        };
        this.app.saveMeta();
        // A locked phone told the record was destroyed deletes this copy too.
        this.app.tag(s, this.id);
        this.note(null);
        this.renderFiles();
      }
      const blob = await blobOf(s.vault, { id: a.id, pieces: local.pieces, type: a.type });
      this.showFile(a, blob);
    } catch (e) {
      this.note(e.key === "file_hash_mismatch" ? t("file_hash_hiding") : e.key ? t(e.key, { m: e.message }) : t("file_fetch_failed", { m: e.message }));
    }
  }

  showFile(a, blob) {
    const url = URL.createObjectURL(blob);
    const close = () => {
      URL.revokeObjectURL(url);
      dialog.remove();
    };
    let body;
    if (a.type.startsWith("image/")) body = h("img", { src: url, alt: a.name, class: "file-image" });
    else if (a.type.startsWith("audio/")) body = h("audio", { src: url, controls: true, class: "file-audio" });
    else body = h("p", {}, a.name);
    const dialog = h(
      "div",
      { class: "file-viewer", role: "dialog", "aria-label": a.name, dataset: { file: a.id } },
      body,
      h("p", { class: "file-hash" }, `SHA-256 ${a.sha256}`),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button", href: url, download: a.name, dataset: { action: "file-save" } }, t("files_download")),
        h("button", { type: "button", class: "primary", dataset: { action: "file-close" }, onclick: close }, t("files_close")),
      ),
    );
    this.viewer?.remove();
    this.viewer = dialog;
    this.el.append(dialog);
  }

  /** Rebuilds the form (language switch). */
  rebuild() {
    this.app.flush();
    const problems = this.problems;
    this.close();
    this.build();
    replace(this.app.root, this.el);
    if (problems) this.showProblems(problems);
  }

  close({ discard = false } = {}) {
    // Leaving the record (or locking) ends a recording: what was recorded is attached, or,
    // when the data is being wiped, dropped.
    if (this.recorder) {
      if (discard) this.recorder.cancel().catch(() => {});
      else this.stopRecording();
    }
    this.viewer?.remove();
    for (const f of this.fields.values()) {
      clearTimeout(f.timer);
      if (!discard) f.commit();
      f.closed = true;
      f.timer = null;
      this.app.flushers.delete(f.flusher);
    }
  }

  /** The record changed (a merge): show the merged values, leaving busy fields alone. */
  refresh() {
    this.view = this.app.view(this.id);
    this.fill(false);
  }

  /** Redraws the title line (after a title field changed here). */
  refreshHead() {
    this.view = this.app.view(this.id);
    this.renderHead();
  }

  refreshField(field) {
    if (field.timer !== null) return;
    this.view = this.app.view(this.id);
    if (field.def.type === "list" && field.el.contains(document.activeElement)) return;
    field.show(this.view.fields[field.def.id]);
  }

  fill(initial) {
    const v = this.view;
    const reviews = ["coordinator", "admin"].includes(this.app.meta.user.role);
    for (const field of this.fields.values()) {
      const busy = field.busy() && field.def.type !== "long_text";
      if (initial || !busy) {
        if (field.def.type === "long_text" && field.timer !== null) {
          // Cannot happen after app.flush(); keep the typing if it somehow does.
        } else {
          field.show(v.fields[field.def.id]);
        }
      }
      field.showConflict(v.conflicts.find((c) => c.field === field.def.id), reviews);
    }
    this.renderHead();
    this.renderBanners();
    this.renderConflicts();
    this.renderReview();
    this.renderActions();
    this.renderFiles();
  }

  /** "Conflicts here": every conflicted field at the top, each a link to it. */
  renderConflicts() {
    const conflicts = this.view.conflicts.filter((c) => this.fields.has(c.field));
    this.conflictsEl.hidden = conflicts.length === 0;
    replace(
      this.conflictsEl,
      conflicts.length
        ? [
            h("p", {}, t(conflicts.length === 1 ? "conflicts_here_one" : "conflicts_here", { n: conflicts.length })),
            h(
              "ul",
              {},
              conflicts.map((c) =>
                h(
                  "li",
                  {},
                  h(
                    "a",
                    {
                      href: this.app.recordHref(this.id),
                      dataset: { conflict: c.field },
                      onclick: (ev) => {
                        ev.preventDefault();
                        const field = this.fields.get(c.field);
                        field.el.closest("details").open = true;
                        field.el.scrollIntoView({ block: "start" });
                      },
                    },
                    this.fieldLabel(c.field),
                  ),
                ),
              ),
            ),
          ]
        : [],
    );
  }

  renderHead() {
    const v = this.view;
    const app = this.app;
    const caseName = app.meta.cases.find((c) => c.id === v.case)?.name || "";
    replace(
      this.headEl,
      h("h1", {}, v.title || t("untitled")),
      h(
        "p",
        { class: "meta" },
        label(this.def.label),
        " · ",
        h("span", { class: `status status-${v.status}`, dataset: { status: v.status } }, label(app.statuses.get(v.status))),
        caseName ? ` · ${caseName}` : "",
        ` · ${t("created_by", { user: v.created_by })}`,
      ),
    );
  }

  renderBanners() {
    const v = this.view;
    const rec = this.app.meta.records[this.id] || {};
    const items = [];
    if (rec.refused) {
      items.push(h("div", { class: "banner error", role: "alert", dataset: { banner: "refused" } }, t("refused_banner")));
    }
    if (v.status === "needs_changes") {
      const request = [...v.review].reverse().find((r) => r.action === "request_changes");
      items.push(
        h(
          "div",
          { class: "banner warn", role: "status", dataset: { banner: "needs-changes" } },
          h("strong", {}, t("needs_changes_banner")),
          request?.text ? h("blockquote", {}, request.text) : null,
          request ? h("p", { class: "meta" }, `${request.author}, ${dateTime(request.at)}`) : null,
        ),
      );
    }
    const consent = [...v.review].reverse().find((r) => r.action === "withdraw_consent");
    if (consent) {
      items.push(
        h(
          "div",
          { class: "banner warn", role: "status", dataset: { banner: "consent-withdrawn" } },
          h("strong", {}, t("consent_withdrawn_banner")),
          h("p", { class: "meta" }, `${consent.author}, ${dateTime(consent.at)}`),
        ),
      );
    }
    if (this.readOnly) {
      const why = this.view.status === "approved" ? "approved_readonly" : "archived_readonly";
      items.push(h("div", { class: "banner info", dataset: { banner: why } }, t(why)));
    }
    replace(this.banners, items);
  }

  renderReview() {
    const review = this.view.review;
    this.reviewEl.hidden = review.length === 0;
    replace(
      this.reviewEl,
      h("h2", {}, t("review_title")),
      h(
        "ol",
        { class: "review-list" },
        review.map((r) =>
          h(
            "li",
            { dataset: { review: r.action } },
            h("span", { class: "meta" }, `${t(`review_action_${r.action}`)} · ${r.author} · ${dateTime(r.at)}`),
            r.text ? h("p", {}, r.action === "resolve" ? this.fieldLabel(r.text) : r.text) : null,
          ),
        ),
      ),
    );
  }

  /** A field's label in the current language (the review trail names resolved fields by id). */
  fieldLabel(id) {
    const def = this.def.fields.find((f) => f.id === id);
    return def ? label(def.label) : id;
  }

  /**
   * Checks the record again after an edit, without moving: after a Submit every problem is
   * kept up to date; before one, only those that are wrong rather than missing (a date order,
   * a date in the future, a negative number) show at their fields.
   */
  revalidate() {
    let problems;
    try {
      problems = JSON.parse(this.app.engine.validate(this.id, today()));
    } catch {
      return;
    }
    if (this.problems) {
      this.showProblems(problems.length ? problems : null, { scroll: false });
      return;
    }
    const text = (p) => (lang() === "km" ? p.km : p.en);
    const early = problems.filter((p) => EARLY_PROBLEMS.includes(p.code));
    for (const f of this.fields.values()) {
      const p = early.find((x) => x.field === f.def.id);
      if (p) f.setProblem(text(p), p.code);
      else if (EARLY_PROBLEMS.includes(f.problem.dataset.code)) f.setProblem(null);
    }
  }

  renderActions() {
    let steps = [];
    try {
      steps = JSON.parse(this.app.engine.allowedTransitions(this.id));
    } catch {
      steps = [];
    }
    const reviews = ["coordinator", "admin"].includes(this.app.meta.user.role);
    // Field staff answer a reviewer's comment here too (while the record is open to them).
    const comments = reviews || !this.readOnly;
    const comment = comments
      ? h("textarea", { name: "review_comment", rows: 2, "aria-label": t(reviews ? "review_title" : "reply_label") })
      : null;
    const buttons = steps.map((s) =>
      h(
        "button",
        {
          type: "button",
          class: s.action === "submit" || s.action === "resubmit" ? "primary" : "",
          dataset: { action: s.action },
          onclick: () => this.transition(s, comment?.value || null),
        },
        s.action === "submit" && this.view.status === "needs_changes"
          ? t("resubmit")
          : t(s.action) !== s.action
            ? t(s.action)
            : label(this.app.statuses.get(s.to)),
      ),
    );
    if (comments) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            dataset: { action: "comment" },
            onclick: () => {
              const text = comment.value.trim();
              if (text && this.app.edit(this.id, (engine, now) => engine.comment(this.id, text, now))) {
                comment.value = "";
                this.refresh();
              }
            },
          },
          t(reviews ? "comment" : "reply"),
        ),
      );
    }
    replace(
      this.actionsEl,
      comment,
      buttons.length ? h("div", { class: "row" }, buttons) : null,
      this.destroyActions(reviews),
    );
  }

  /**
   * What ends a record: "Consent withdrawn" on a family statement (a liaison or a coordinator;
   * it asks a coordinator to destroy it), and "Discard draft" for a draft recorded by mistake
   * (its author before it was ever submitted, or a coordinator).
   */
  destroyActions(reviews) {
    const v = this.view;
    const me = this.app.meta.user;
    const buttons = [];
    const consentRecorded = v.review.some((r) => r.action === "withdraw_consent");
    if (v.kind === "family_statement" && (reviews || me.role === "liaison") && !consentRecorded) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "danger outline",
            dataset: { action: "withdraw-consent" },
            onclick: () => {
              if (!confirm(t("consent_withdraw_confirm"))) return;
              if (this.app.edit(this.id, (engine, now) => engine.withdrawConsent(this.id, "", now))) {
                this.refresh();
                this.app.toast(t("consent_withdrawn_sent"));
              }
            },
          },
          t("consent_withdraw"),
        ),
      );
    }
    const neverSubmitted = !v.review.some((r) => r.action === "submit");
    if (v.status === "draft" && (reviews || (v.created_by === me.username && neverSubmitted))) {
      buttons.push(
        h(
          "button",
          {
            type: "button",
            class: "danger outline",
            dataset: { action: "discard" },
            onclick: async (ev) => {
              if (!confirm(t("discard_confirm"))) return;
              ev.target.disabled = true;
              if (!(await this.app.discard(this.id))) ev.target.disabled = false;
            },
          },
          t("discard_draft"),
        ),
      );
    }
    return buttons.length ? h("div", { class: "row destroy" }, buttons) : null;
  }

  transition(step, comment) {
    this.app.flush();
    if (step.action === "submit" || step.action === "resubmit") {
      const problems = JSON.parse(this.app.engine.validate(this.id, today()));
      if (problems.length) {
        this.showProblems(problems);
        return;
      }
    }
    this.showProblems(null);
    if (this.app.edit(this.id, (engine, now) => engine.transition(this.id, step.to, comment || undefined, now))) {
      this.refresh();
      if (step.action === "submit" || step.action === "resubmit") {
        this.app.toast(t(this.app.session?.sync.connected ? "submitted_sent" : "submitted_ok"));
      }
    }
  }

  /** Shows validation problems at their fields and in a summary (in the current language). */
  showProblems(problems, { scroll = true } = {}) {
    this.problems = problems;
    for (const f of this.fields.values()) if (f.problem.dataset.code !== "input") f.setProblem(null);
    if (!problems || !problems.length) {
      this.problemsEl.hidden = true;
      this.problemsEl.replaceChildren();
      return;
    }
    const text = (p) => (lang() === "km" ? p.km : p.en);
    replace(
      this.problemsEl,
      h("p", {}, t("fix_problems", { n: problems.length })),
      h(
        "ul",
        {},
        problems.map((p) => {
          const field = this.fields.get(p.field);
          // The message names the field already.
          const jump = (ev) => {
            ev.preventDefault();
            field?.el.scrollIntoView({ block: "center" });
            field?.el.querySelector("input, textarea, select")?.focus();
          };
          return h("li", { dataset: { problem: p.field } }, h("a", { href: this.app.recordHref(this.id), onclick: jump }, text(p)));
        }),
      ),
    );
    this.problemsEl.hidden = false;
    for (const p of problems) this.fields.get(p.field)?.setProblem(text(p), p.code);
    // Below the sticky bar (scroll-margin-top in app.css).
    if (scroll) this.problemsEl.scrollIntoView({ block: "start" });
  }

  markSaved() {
    this.savedEl.textContent = `✓ ${t("saved")}`;
  }
}
