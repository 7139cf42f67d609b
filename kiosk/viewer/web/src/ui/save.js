// "Save for your PACS": the source streams a plain zip of the DICOM file-set into a
// WritableStream. Chromium gives one on a file the doctor picks (showSaveFilePicker, nothing
// held in memory); elsewhere the bytes are gathered in memory and offered as a download.
import { t } from "../i18n.js";
import { h } from "./dom.js";

/** A WritableStream that keeps its chunks, and the Blob of them when closed. */
export function memoryWritable() {
  const chunks = [];
  let resolveBlob;
  const blob = new Promise((r) => { resolveBlob = r; });
  const stream = new WritableStream({
    write(chunk) { chunks.push(chunk instanceof Uint8Array ? chunk.slice() : new Uint8Array(chunk)); },
    close() { resolveBlob(new Blob(chunks, { type: "application/zip" })); },
  });
  return { stream, blob };
}

export class SaveButton {
  /** @param {{saveForPacs?: Function, label?: string}} source */
  constructor(source) {
    this.source = source;
    this.status = h("span.save-status", { role: "status", "aria-live": "polite", "data-testid": "save-status" });
    this.button = h("button.save", { type: "button", i18n: "saveButton", i18nAttr: { title: "saveHint" }, on: { click: () => this.save() } });
    this.note = h("span.save-note", { hidden: true, i18n: "saveFallback" });
    this.el = h("div.save-box", {}, this.button, this.status, this.note);
    this.el.hidden = typeof source.saveForPacs !== "function";
  }

  _say(key, params) {
    this.status.dataset.i18n = key;
    this.status.dataset.i18nParams = params ? JSON.stringify(params) : "";
    if (!params) delete this.status.dataset.i18nParams;
    this.status.textContent = t(key, params);
  }

  async save() {
    const name = "MEDPASS_FOR_PACS.zip";
    let writable;
    let memory = null;
    if (typeof globalThis.showSaveFilePicker === "function") {
      try {
        const handle = await globalThis.showSaveFilePicker({ suggestedName: name,
          types: [{ description: "Zip", accept: { "application/zip": [".zip"] } }] });
        writable = await handle.createWritable();
      } catch (e) {
        if (e?.name === "AbortError") return this._say("saveCancelled");
        memory = memoryWritable();
      }
    } else {
      memory = memoryWritable();
    }
    if (memory) {
      writable = memory.stream;
      this.note.hidden = false;
    }
    this.button.disabled = true;
    try {
      await this.source.saveForPacs(writable, {
        onProgress: (p) => this._say("saving", { percent: percent(p) }),
      });
      if (memory) {
        const url = URL.createObjectURL(await memory.blob);
        const link = h("a.save-link", { href: url, download: name, i18n: "saveDownload" });
        this.status.replaceChildren(link);
        delete this.status.dataset.i18n;
        link.click();
      } else {
        this._say("saved");
      }
    } catch {
      this._say("saveFailed");
    } finally {
      this.button.disabled = false;
    }
  }
}

function percent(p) {
  if (typeof p === "number") return `${Math.round(p * 100)}%`;
  if (p && p.total) return `${Math.round((100 * (p.done ?? p.bytes ?? p.written ?? 0)) / p.total)}%`;
  return "";
}
