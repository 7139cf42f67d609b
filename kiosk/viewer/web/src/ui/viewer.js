// The viewer screen: custody banner, study browser, the viewport with its header and toolbar,
// and the reports beside the images.
import { onLanguage, pick } from "../i18n.js";
import { CustodyBanner } from "./custody.js";
import { clear, h } from "./dom.js";
import { ImageCache } from "./images.js";
import { ReportsPanel } from "./reports.js";
import { SaveButton } from "./save.js";
import { StudyBrowser, dicomDate } from "./studies.js";
import { Toolbar } from "./toolbar.js";
import { Viewport } from "./viewport.js";

export class ViewerScreen {
  /** @param {object} source a Source (docs/viewer.md) */
  constructor(source) {
    this.source = source;
    this.images = new ImageCache(source);
    this.viewport = new Viewport(this.images);
    this.toolbar = new Toolbar(this.viewport);
    this.browser = new StudyBrowser(this.images);
    this.reports = new ReportsPanel(source);
    this.custody = new CustodyBanner(source.custody);
    this.save = new SaveButton(source);
    this.header = h("div.series-header", { "data-testid": "series-header" });
    this.warnings = h("ul.image-warnings", { "aria-live": "polite" });
    this.keys = h("p.keys", { i18n: "keysHelp" });
    this.reportsToggle = h("button.reports-toggle", { type: "button", "aria-pressed": "true", i18n: "showReports",
      on: { click: () => this._toggleReports() } });
    this.stage = h("section.stage", {}, this.header, this.toolbar.el, this.viewport.el, this.warnings, this.keys);
    this.el = h("div.viewer", {},
      h("div.viewer-top", {}, this.custody.el, h("div.viewer-actions", {}, this.reportsToggle, this.save.el)),
      h("div.viewer-main", {}, this.browser.el, this.stage, this.reports.el));
    this.browser.addEventListener("select", (e) => this.showSeries(e.detail));
    this.viewport.addEventListener("slice", () => this._sliceInfo());
    onLanguage(() => this._sliceInfo());
    // Keys pressed with no control focused (after a wheel scroll, say) go to the viewport.
    this._keys = (e) => {
      if ((e.target === document.body || e.target === document.documentElement) && this.el.isConnected) {
        this.viewport._key_(e);
      }
    };
    document.addEventListener("keydown", this._keys);
    this.entries = [];
  }

  /** Read the tree and the reports; show the first series. */
  async start() {
    const tree = await this.source.tree();
    this.entries = this.browser.show(tree);
    const reports = this.reports.load();
    if (this.entries.length) await this.showSeries(this.entries[0]);
    await reports;
    if (!this.reports.list.length) this.reportsToggle.hidden = true;
  }

  async showSeries(entry) {
    this.current = entry;
    this.browser.select(entry);
    this._header(entry);
    await this.viewport.showSeries(entry.refs);
  }

  _header(entry) {
    const { patient, study, series } = entry;
    const name = patient.name?.display || patient.name?.alphabetic || "—";
    clear(this.header).append(
      h("span.h-patient", { text: name }),
      patient.id ? h("span.h-id", { text: ` · ID ${patient.id}` }) : "",
      h("span.h-study", { text: ` · ${dicomDate(study.date)} ${study.description || ""}`.trimEnd() }),
      h("span.h-series", { text: ` · ${series.modality || ""} #${series.number ?? "?"} ${series.description || ""}`.trimEnd() }));
  }

  _sliceInfo() {
    const img = this.viewport.img;
    clear(this.warnings);
    for (const w of img?.header?.warnings ?? []) this.warnings.append(h("li", { text: pick(w) }));
  }

  _toggleReports() {
    const shown = this.reports.el.hidden;
    this.reports.el.hidden = !shown;
    this.reportsToggle.setAttribute("aria-pressed", String(shown));
    this.el.classList.toggle("no-reports", !shown);
  }

  close() {
    document.removeEventListener("keydown", this._keys);
    this.viewport.pause();
    this.reports.close();
  }
}
