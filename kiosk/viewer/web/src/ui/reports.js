// The reports beside the images: each PDF in the browser's own PDF viewer (an <iframe> on a
// blob: URL; the page's CSP allows frame-src blob:), labelled with what it is and, for a
// translation, which original it translates and who translated it.
import { onLanguage, t } from "../i18n.js";
import { clear, h } from "./dom.js";

function languageName(code) {
  return code === "zh" ? t("langZh") : code === "en" ? t("langEn") : code || "?";
}

/**
 * The label of a report as the doctor reads it.
 * @param {{title: string, language: string, role: string, translates: string|null,
 *   translator: string, certified: boolean}} report
 * @param {object[]} all every report (to name a translation's original)
 */
export function reportLabel(report, all) {
  if (report.role === "original") {
    return t("reportOriginal", { language: languageName(report.language), title: report.title || "" }).replace(/:\s*$/, "");
  }
  if (report.role === "translation") {
    const original = all.find((r) => r.ref === report.translates);
    const originalLabel = original ? reportLabel(original, all) : report.translates || "?";
    return t(report.certified ? "reportTranslation" : "reportTranslationUncertified",
      { original: originalLabel, translator: report.translator || t("unknownTranslator") });
  }
  return t("reportOther", { language: languageName(report.language), title: report.title || "" });
}

export class ReportsPanel {
  constructor(source) {
    this.source = source;
    this.list = [];
    this.urls = new Map();
    this.el = h("aside.reports", { "aria-labelledby": "reports-heading" });
    onLanguage(() => this._labels());
  }

  async load() {
    clear(this.el);
    this.el.append(h("h2#reports-heading", { i18n: "reportsHeading" }));
    try {
      this.list = await this.source.reports();
    } catch {
      this.list = [];
    }
    // Originals first, each followed by its translations: the pair reads side by side.
    const ordered = [];
    for (const r of this.list.filter((x) => x.role === "original")) {
      ordered.push(r, ...this.list.filter((x) => x.translates === r.ref));
    }
    for (const r of this.list) if (!ordered.includes(r)) ordered.push(r);
    if (!ordered.length) {
      this.el.append(h("p.empty", { i18n: "noReports" }));
      return;
    }
    this._items = [];
    for (const r of ordered) {
      const title = h("h3.report-label", { "data-testid": "report-label" });
      const frame = h("iframe.report-frame", { title: r.title || r.ref });
      const open = h("a.report-open", { target: "_blank", rel: "noopener", i18n: "openTab" });
      const status = h("p.report-status", { role: "status" });
      const item = h("section.report", { "data-role": r.role, "data-language": r.language }, title,
        h("div.report-actions", {}, open), status, frame);
      item._report = r;
      item._title = title;
      this._items.push(item);
      this.el.append(item);
      try {
        const blob = await this.source.reportBlob(r.ref);
        const url = URL.createObjectURL(blob.type === "application/pdf" ? blob : new Blob([blob], { type: "application/pdf" }));
        this.urls.set(r.ref, url);
        frame.src = url;
        open.href = url;
      } catch {
        label(status, "reportFailed");
        frame.remove();
        open.remove();
      }
    }
    this._labels();
  }

  _labels() {
    for (const item of this._items ?? []) {
      item._title.textContent = reportLabel(item._report, this.list);
    }
  }

  close() {
    for (const url of this.urls.values()) URL.revokeObjectURL(url);
    this.urls.clear();
  }
}

function label(el, key) {
  el.dataset.i18n = key;
  el.textContent = t(key);
}
