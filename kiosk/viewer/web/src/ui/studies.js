// The study browser: patients → studies → series, each series a button with a thumbnail of
// its middle image, drawn one at a time so the first image is not kept waiting.
import { renderThumbnail } from "../dicom/index.js";
import { pick, t } from "../i18n.js";
import { clear, h } from "./dom.js";
import { imageInstances } from "./images.js";

const THUMB = 96;

/** "20261127" → "2026-11-27" (anything else as given). */
export function dicomDate(d) {
  const m = /^(\d{4})(\d{2})(\d{2})$/.exec(String(d ?? "").trim());
  return m ? `${m[1]}-${m[2]}-${m[3]}` : String(d ?? "");
}

/** Every series of the tree with its patient and study, in tree order, images only. */
export function allSeries(tree) {
  const out = [];
  for (const patient of tree.patients) {
    for (const study of patient.studies) {
      for (const series of study.series) {
        const refs = imageInstances(series).map((i) => i.ref);
        if (refs.length) out.push({ patient, study, series, refs });
      }
    }
  }
  return out;
}

export class StudyBrowser extends EventTarget {
  /**
   * @param {import("./images.js").ImageCache} images
   */
  constructor(images) {
    super();
    this.images = images;
    this.el = h("nav.studies", { i18nAttr: { "aria-label": "studies" } });
    this.buttons = [];
    this.selected = null;
  }

  /** Show the tree's series; returns the list allSeries made. */
  show(tree) {
    clear(this.el);
    const entries = allSeries(tree);
    this.buttons = [];
    if (!entries.length) {
      this.el.append(h("p.empty", { i18n: "noImages" }));
      return entries;
    }
    const byStudy = new Map();
    for (const e of entries) {
      if (!byStudy.has(e.study)) byStudy.set(e.study, []);
      byStudy.get(e.study).push(e);
    }
    let lastPatient = null;
    for (const [study, list] of byStudy) {
      const patient = list[0].patient;
      if (patient !== lastPatient) {
        lastPatient = patient;
        this.el.append(patientBlock(patient));
      }
      const items = list.map((e) => this._item(e));
      this.el.append(h("section.study", {},
        h("h3.study-title", {}, h("span.study-date", { text: dicomDate(study.date) }), " ",
          h("span.study-desc", { text: study.description || "" })),
        h("ul.series-list", {}, ...items)));
    }
    this._thumbnails(entries);
    return entries;
  }

  /** Mark the series shown in the viewport. */
  select(entry) {
    this.selected = entry;
    for (const b of this.buttons) b.setAttribute("aria-pressed", String(b._entry === entry));
  }

  _item(entry) {
    const { series, refs } = entry;
    const canvas = h("canvas.thumb", { width: THUMB, height: THUMB, "aria-hidden": "true" });
    const count = refs.length === 1 ? h("span", { i18n: "oneImage" }) : h("span", { i18n: "images", i18nParams: { n: refs.length } });
    const button = h("button.series", { type: "button", "aria-pressed": "false", on: { click: () => this.dispatchEvent(new CustomEvent("select", { detail: entry })) } },
      canvas,
      h("span.series-text", {},
        h("span.series-head", {},
          h("span.modality", { text: series.modality || "" }), " ",
          h("span", { i18n: "seriesLabel", i18nParams: { number: series.number ?? "?" } })),
        h("span.series-desc", { text: series.description || "" }),
        count));
    button._entry = entry;
    button._canvas = canvas;
    this.buttons.push(button);
    return h("li", {}, button);
  }

  async _thumbnails(entries) {
    for (const button of this.buttons) {
      const entry = button._entry;
      // The middle image; if that one cannot be shown, the next few that can.
      const mid = Math.floor(entry.refs.length / 2);
      const order = [mid, ...entry.refs.keys()].filter((i, k, all) => all.indexOf(i) === k).slice(0, 4);
      let img = null;
      let frame = null;
      for (const i of order) {
        img = await this.images.get(entry.refs[i]);
        frame = img.displayable ? await img.frame(0) : null;
        if (frame) break;
      }
      const data = frame ? renderThumbnail(img, frame, THUMB) : null;
      const c = button._canvas;
      if (data) {
        c.width = data.width;
        c.height = data.height;
        c.getContext("2d").putImageData(data, 0, 0);
        c.dataset.drawn = "true";
      } else {
        c.dataset.drawn = "false";
        c.classList.add("thumb-missing");
        c.title = pick(img.reason);
      }
    }
    void entries;
    this.dispatchEvent(new Event("thumbnails"));
  }
}

function patientBlock(patient) {
  const n = patient.name ?? {};
  const bits = [];
  if (patient.id) bits.push(h("span.pid", { text: `ID ${patient.id}` }));
  if (patient.birthDate) bits.push(h("span", { i18n: "born", i18nParams: { date: dicomDate(patient.birthDate) } }));
  if (patient.sex) bits.push(h("span", { text: patient.sex }));
  return h("div.patient", {},
    h("h2.patient-name", { "data-testid": "patient-name", text: n.display || n.alphabetic || n.ideographic || "—" }),
    h("p.patient-meta", {}, ...bits.flatMap((b, i) => (i ? [" · ", b] : [b]))));
}
