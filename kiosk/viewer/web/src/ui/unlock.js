// The unlock screen: pick the archive (all its parts when split), type the slip's passphrase,
// open. Names missing parts before any passphrase is typed; a wrong passphrase keeps the field
// and says so in the chosen language.
import { onLanguage, pick, t } from "../i18n.js";
import { h } from "./dom.js";

const SLIP = /^[2-9A-HJKMNP-Z]{20}$/;

/**
 * The passphrase as the archive wants it: the slip prints five groups of four with dashes; what
 * is typed without dashes, with spaces or in lower case is put back in that form. Anything that
 * does not look like a slip passphrase is used exactly as typed.
 * @param {string} typed
 */
export function slipPassphrase(typed) {
  const bare = typed.replace(/[\s-]/g, "").toUpperCase();
  if (SLIP.test(bare)) return bare.match(/.{4}/g).join("-");
  return typed.trim();
}

function bilingual(e) {
  const m = e?.message;
  if (m && typeof m === "object" && m.en) return m;
  if (e?.messages?.en) return e.messages;
  return null;
}

export class UnlockScreen {
  /**
   * @param {{describeFiles?: Function, openPackage?: Function, onOpened: (source: object) => void}} options
   */
  constructor({ describeFiles, openPackage, onOpened }) {
    this.describeFiles = describeFiles;
    this.openPackage = openPackage;
    this.onOpened = onOpened;
    this.files = [];
    this.description = null;
    this.error = null; // {key} or {message: {en, zh}}

    this.input = h("input#archive", { type: "file", multiple: true, class: "visually-hidden",
      accept: ".zip,.001,.002,.003,.004,.005,.006,.007,.008,.009,application/zip,application/octet-stream",
      on: { change: () => this.choose([...this.input.files]) } });
    const pickButton = h("button.pick", { type: "button", i18n: "pickButton", on: { click: () => this.input.click() } });
    // An unencrypted copy has no archive: the doctor picks its folder instead.
    this.folderInput = h("input#folder", { type: "file", multiple: true, webkitdirectory: "", class: "visually-hidden",
      on: { change: () => this.choose([...this.folderInput.files]) } });
    const folderButton = h("button.pick-folder", { type: "button", i18n: "pickFolderButton", on: { click: () => this.folderInput.click() } });
    this.chosen = h("p.chosen", { "data-testid": "chosen", "aria-live": "polite" });
    this.drop = h("div.drop", { "data-testid": "drop" }, pickButton, h("span.drop-hint", { i18n: "dropHere" }), this.input,
      folderButton, this.folderInput);
    this.pass = h("input#passphrase", { type: "password", autocomplete: "off", autocapitalize: "characters",
      spellcheck: "false", placeholder: "XXXX-XXXX-XXXX-XXXX-XXXX", "aria-describedby": "pass-hint unlock-message",
      on: { keydown: (e) => { if (e.key === "Enter") { e.preventDefault(); this.open(); } } } });
    this.showPass = h("button.show-pass", { type: "button", "aria-pressed": "false", "aria-controls": "passphrase", i18n: "showPass",
      on: { click: () => this._togglePass() } });
    this.openButton = h("button.primary#open", { type: "button", i18n: "openButton", on: { click: () => this.open() } });
    this.message = h("p.message#unlock-message", { role: "alert", "data-testid": "unlock-message" });
    this.progress = h("progress.opening", { max: "1", hidden: true });
    this.progressText = h("span.progress-text", { "aria-live": "polite" });

    const form = h("form.unlock-form", { on: { submit: (e) => { e.preventDefault(); this.open(); } } },
      h("div.step", {},
        h("label.step-label", { for: "archive", i18n: "pickLabel" }),
        h("p.hint", { i18n: "pickHint" }),
        this.drop, this.chosen),
      this.passStep = h("div.step", {},
        h("label.step-label", { for: "passphrase", i18n: "passLabel" }),
        h("p.hint#pass-hint", { i18n: "passHint" }),
        h("div.pass-row", {}, this.pass, this.showPass)),
      h("div.step.open-row", {}, this.openButton, this.progress, this.progressText),
      this.message);
    this.el = h("main.unlock", {},
      h("h1", { i18n: "unlockHeading" }),
      h("p.intro", { i18n: "unlockIntro" }),
      form);

    // Dropping anywhere on the screen counts: the doctor aims at the window, not a box.
    for (const target of [this.el]) {
      target.addEventListener("dragover", (e) => { e.preventDefault(); this.drop.classList.add("over"); });
      target.addEventListener("dragleave", () => this.drop.classList.remove("over"));
      target.addEventListener("drop", (e) => {
        e.preventDefault();
        this.drop.classList.remove("over");
        this.choose([...(e.dataTransfer?.files ?? [])]);
      });
    }
    onLanguage(() => this._render());
    this._render();
  }

  /** The doctor chose (or dropped) these files. */
  choose(files) {
    this.files = files;
    this.error = null;
    this.description = null;
    if (files.length && this.describeFiles) {
      try {
        this.description = this.describeFiles(files);
      } catch {
        this.description = { ok: false, parts: [], missing: [], message: null };
      }
    }
    this._render();
    if (this.description?.ok) (this._needsPass() ? this.pass : this.openButton).focus();
  }

  /** An unencrypted folder needs no passphrase. */
  _needsPass() {
    return this.description?.encrypted !== false;
  }

  async open() {
    this.error = null;
    if (!this.openPackage) this.error = { key: "notReady" };
    else if (!this.files.length) this.error = { key: "needFiles" };
    else if (this._needsPass() && !this.pass.value.trim()) this.error = { key: "needPass" };
    if (this.error) {
      this._render();
      (this.error.key === "needPass" ? this.pass : this.error.key === "needFiles" ? this.drop.querySelector("button") : this.openButton).focus();
      return;
    }
    this.busy = true;
    this.progressValue = null;
    this._render();
    let source;
    try {
      source = await this.openPackage(this.files, slipPassphrase(this.pass.value), {
        onProgress: (p) => { this.progressValue = p; this._renderProgress(); },
      });
    } catch (e) {
      this.busy = false;
      const words = bilingual(e);
      this.error = e?.code === "wrong-passphrase" ? { key: "wrongPassphrase", code: e.code }
        : words ? { message: words, code: e?.code } : { key: "openFailed", code: e?.code };
      this._render();
      this.pass.focus();
      this.pass.select();
      return;
    }
    this.busy = false;
    this.pass.value = ""; // the passphrase is not kept on screen once used
    this._render();
    this.onOpened(source);
  }

  _togglePass() {
    const show = this.pass.type === "password";
    this.pass.type = show ? "text" : "password";
    this.showPass.setAttribute("aria-pressed", String(show));
    this.showPass.dataset.i18n = show ? "hidePass" : "showPass";
    this.showPass.textContent = t(this.showPass.dataset.i18n);
  }

  _renderProgress() {
    const p = this.progressValue;
    const frac = typeof p === "number" ? p : p && p.total ? (p.done ?? p.bytes ?? p.checked ?? 0) / p.total : null;
    this.progress.hidden = !this.busy;
    if (frac === null || !Number.isFinite(frac)) this.progress.removeAttribute("value");
    else this.progress.value = Math.min(1, Math.max(0, frac));
    this.progressText.textContent = this.busy ? t("opening", { percent: frac === null || !Number.isFinite(frac) ? "" : `${Math.round(frac * 100)}%` }).trim() : "";
  }

  _render() {
    const d = this.description;
    if (!this.files.length) this.chosen.textContent = t("noFiles");
    else if (d) {
      const lines = [];
      if (d.parts?.length) lines.push(t("chosen", { parts: d.parts.join(", ") }));
      if (d.message) lines.push(pick(d.message));
      else if (d.missing?.length) lines.push(t("missingParts", { missing: d.missing.join(", ") }));
      this.chosen.textContent = lines.join(" ");
      this.chosen.dataset.ok = String(!!d.ok);
    } else {
      this.chosen.textContent = t("chosen", { parts: this.files.map((f) => f.name).join(", ") });
    }
    const e = this.error;
    this.message.textContent = e ? (e.key ? t(e.key) : pick(e.message)) : "";
    this.message.dataset.code = e?.code ?? e?.key ?? "";
    this.openButton.disabled = !!this.busy;
    this.passStep.hidden = !this._needsPass();
    this._renderProgress();
  }
}
