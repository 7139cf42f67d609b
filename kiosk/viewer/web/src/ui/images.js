// Loaded images shared by the thumbnails and the viewport: each instance is read from the
// source and parsed once while it is among the most recently used.
import { loadImage } from "../dicom/index.js";

const KEEP = 24; // a few screens of a stack; each holds its file's bytes

const ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1";

/** Is this tree instance a report or other non-image record rather than an image? */
export function isImageInstance(instance) {
  if (instance.sopClassUid === ENCAPSULATED_PDF) return false;
  return !instance.recordType || instance.recordType === "IMAGE";
}

/** The series' image instances (reports and other documents left out). */
export function imageInstances(series) {
  return series.instances.filter(isImageInstance);
}

export class ImageCache {
  /** @param {{instance: (ref: string) => Promise<ArrayBuffer>}} source */
  constructor(source) {
    this.source = source;
    this._map = new Map();
  }

  /**
   * The loaded image of `ref` (never rejects: a read failure gives an undisplayable image).
   * @param {string} ref
   */
  get(ref) {
    let p = this._map.get(ref);
    if (p) {
      this._map.delete(ref);
    } else {
      p = this.source.instance(ref).then((buf) => loadImage(buf), (e) => unreadable(e));
    }
    this._map.set(ref, p);
    if (this._map.size > KEEP) this._map.delete(this._map.keys().next().value);
    return p;
  }
}

function unreadable(e) {
  return {
    header: { patientName: { display: "" }, windows: [], frames: 0, rescale: { type: "" }, warnings: [] },
    displayable: false,
    reason: e?.message && typeof e.message === "object" ? e.message : {
      en: "Cannot display this image (it could not be read from the stick); it is still on the stick.",
      zh: "无法显示此影像（无法从 U 盘读取）；影像仍完整保存在 U 盘中。",
    },
    frame: async () => null,
  };
}
