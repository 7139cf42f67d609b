// An in-memory Source (docs/viewer.md "Source"): DICOM instances and report PDFs held as
// ArrayBuffers. The browser tests drive the UI with it, and a page that already has the bytes
// (the gateway) can hand them to the same viewer. The tree comes from a DICOMDIR when one is
// given, else from the instances' own headers.
import * as dicomParser from "dicom-parser";
import { loadImage, parseDicomdir } from "../../dicom/index.js";

/** A custody whose state the owner sets (tests: any state; a gateway: what its server says). */
export class MemoryCustody extends EventTarget {
  /** @param {object} [summary] initial fields of summary() */
  constructor(summary = {}) {
    super();
    this._summary = {
      state: "unsigned", kioskId: "", created: "", fingerprint: "", images: 0, originals: 0,
      translations: 0, checked: 0, total: 0, bytesChecked: 0, problems: [], ...summary,
    };
  }

  /** The current state (a copy). */
  summary() {
    return { ...this._summary, problems: [...this._summary.problems] };
  }

  /**
   * Change some fields and tell the listeners ("change").
   * @param {object} patch
   */
  set(patch) {
    this._summary = { ...this._summary, ...patch };
    this.dispatchEvent(new Event("change"));
  }
}

function uid(dataSet, tag) {
  return (dataSet.string(tag) ?? "").replace(/\0/g, "").trim();
}

async function treeFromHeaders(instances) {
  const patients = new Map();
  for (const [ref, buffer] of Object.entries(instances)) {
    let studyUid = "";
    let seriesUid = "";
    try {
      const ds = dicomParser.parseDicom(new Uint8Array(buffer), { untilTag: "x7fe00010" });
      studyUid = uid(ds, "x0020000d");
      seriesUid = uid(ds, "x0020000e");
    } catch {
      // Unreadable here (deflated, damaged): grouped by itself, loadImage says what it is.
      seriesUid = `?${ref}`;
    }
    const img = await loadImage(buffer.slice(0));
    const h = img.header;
    const { stored, ...name } = h.patientName;
    void stored;
    const pKey = h.patientId || name.display || "?";
    if (!patients.has(pKey)) {
      patients.set(pKey, { name, id: h.patientId, birthDate: h.patientBirthDate ?? "",
        sex: h.patientSex ?? "", studies: new Map() });
    }
    const p = patients.get(pKey);
    if (!p.studies.has(studyUid)) {
      p.studies.set(studyUid, { uid: studyUid, date: h.studyDate, time: h.studyTime ?? "",
        description: h.studyDescription, accession: "", series: new Map() });
    }
    const st = p.studies.get(studyUid);
    if (!st.series.has(seriesUid)) {
      st.series.set(seriesUid, { uid: seriesUid, number: h.seriesNumber, modality: h.modality,
        description: h.seriesDescription, instances: [] });
    }
    st.series.get(seriesUid).instances.push({ ref, uid: h.sopInstanceUid ?? "", number: h.instanceNumber,
      sopClassUid: h.sopClassUid ?? "" });
  }
  const byNumber = (a, b) => (a.number ?? Infinity) - (b.number ?? Infinity);
  return {
    patients: [...patients.values()].map((p) => ({
      ...p,
      studies: [...p.studies.values()].map((st) => ({
        ...st,
        series: [...st.series.values()].sort(byNumber).map((se) => ({ ...se, instances: se.instances.sort(byNumber) })),
      })),
    })),
  };
}

/** A Source over bytes in memory. */
export class MemorySource {
  /**
   * @param {object} options
   * @param {Record<string, ArrayBuffer>} options.instances File ID (ref) → Part 10 bytes
   * @param {ArrayBuffer} [options.dicomdir] the tree from this DICOMDIR instead of the headers
   * @param {{ref: string, title: string, language: string, role: string, translates?: string|null,
   *   translator?: string, certified?: boolean, bytes: ArrayBuffer}[]} [options.reports]
   * @param {MemoryCustody|object} [options.custody] a MemoryCustody, or the fields of one
   * @param {string} [options.label]
   * @param {(writable: WritableStream, opts: object) => Promise<void>} [options.saveForPacs]
   *   what "Save for your PACS" writes; default: no such button (the zip source has its own)
   */
  constructor({ instances, dicomdir = null, reports = [], custody = {}, label = "memory", saveForPacs = null }) {
    this.label = label;
    this._instances = instances;
    this._dicomdir = dicomdir;
    this._reports = reports;
    this.custody = custody instanceof EventTarget ? custody : new MemoryCustody(custody);
    if (saveForPacs) this.saveForPacs = saveForPacs;
    this._tree = null;
  }

  /** The patients → studies → series → instances tree (docs/viewer.md "Tree"). */
  async tree() {
    if (!this._tree) {
      this._tree = this._dicomdir ? parseDicomdir(this._dicomdir) : await treeFromHeaders(this._instances);
    }
    return this._tree;
  }

  /** @param {string} ref */
  async instance(ref) {
    const b = this._instances[ref];
    if (!b) throw new Error(`no instance ${ref}`);
    return b.slice(0); // a copy: the decoders may transfer or detach what they are given
  }

  async reports() {
    return this._reports.map(({ bytes, ...r }) => ({ translates: null, translator: "", certified: false, ...r }));
  }

  /** @param {string} ref */
  async reportBlob(ref) {
    const r = this._reports.find((x) => x.ref === ref);
    if (!r) throw new Error(`no report ${ref}`);
    return new Blob([r.bytes], { type: "application/pdf" });
  }

  close() {
    this._instances = {};
  }
}

