// DicomwebSource: the viewer's Source (docs/viewer.md) over a DICOMweb base URL — on the office
// gateway `/s/{id}/dicom-web`, the share's studies only. The tree from QIDO-RS (studies → series →
// instances), each instance a WADO-RS retrieve (one part of a multipart/related answer), the
// reports the Encapsulated PDF instances read for the kiosk's markers, the custody from the
// share's signed manifest. Requests go through one bounded queue; the stack around the slice
// the viewer asks for is fetched next, so a swipe finds its slices already on the phone.
import { splitPersonName } from "../../dicom/index.js";
import { DicomwebCustody } from "./custody.js";
import { parseMultipart } from "./multipart.js";
import { FetchQueue } from "./queue.js";
import { ENCAPSULATED_PDF, readReport } from "./report.js";

export { DicomwebCustody, manifestBytes } from "./custody.js";
export { parseMultipart, boundaryOf } from "./multipart.js";
export { FetchQueue } from "./queue.js";
export { readReport } from "./report.js";

const PAGE = 500; // QIDO results per request (limit/offset)
const AHEAD = 10; // slices prefetched past the one shown, in the direction of travel
const BEHIND = 4;
const KEEP = 64; // instances' bytes kept (a 512² CT slice is ~0.5 MB)
const INSTANCE_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*';

const STUDY_FIELDS = "StudyDescription,PatientBirthDate,PatientSex";
const SERIES_FIELDS = "SeriesDescription,SeriesNumber,Modality";
const INSTANCE_FIELDS = "InstanceNumber,SOPClassUID";

/** A DICOM JSON attribute's first value (PS3.18 F.2). */
function first(obj, tag) {
  return obj?.[tag]?.Value?.[0];
}

function str(obj, tag) {
  const v = first(obj, tag);
  return v == null ? "" : String(v).trim();
}

function num(obj, tag) {
  const v = Number(first(obj, tag));
  return Number.isFinite(v) ? v : null;
}

/** A PN value of DICOM JSON ({Alphabetic, Ideographic, Phonetic}) as the viewer's name. */
function personName(obj, tag) {
  const v = first(obj, tag);
  const pn = v && typeof v === "object"
    ? [v.Alphabetic ?? "", v.Ideographic ?? "", v.Phonetic ?? ""].join("=").replace(/=+$/, "")
    : String(v ?? "");
  const { stored, ...name } = splitPersonName(pn);
  void stored;
  return name;
}

/** Words for a failed request, in both languages (what the viewer shows instead of a slice). */
export class GatewayError extends Error {
  constructor(status, what) {
    super(`${what}: HTTP ${status}`);
    this.status = status;
    this.message = status === 401 ? {
      en: "Your session has ended. Open the link again.", zh: "会话已结束。请重新打开链接。",
      detail: `${what}: HTTP ${status}`,
    } : {
      en: "Cannot display this image (the server did not send it). Try again shortly.",
      zh: "无法显示此影像（服务器未发送该影像）。请稍后再试。", detail: `${what}: HTTP ${status}`,
    };
  }
}

async function sha256Hex(buffer) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class DicomwebSource {
  /**
   * @param {string} base the DICOMweb root, e.g. "/s/{id}/dicom-web" (no trailing slash)
   * @param {object} [options]
   * @param {string} [options.label] what the viewer calls it
   * @param {DicomwebCustody} [options.custody] default: unsigned until `custody.load` is called
   * @param {string[]} [options.studies] Study Instance UIDs to list (default: what QIDO gives)
   * @param {number} [options.concurrency] requests in flight at once
   * @param {typeof fetch} [options.fetch]
   */
  constructor(base, { label = "DICOMweb", custody = null, studies = null, concurrency = 6, fetch: f = null } = {}) {
    this.base = base.replace(/\/+$/, "");
    this.label = label;
    this.custody = custody ?? new DicomwebCustody();
    this._studies = studies;
    this._fetch = f ?? globalThis.fetch.bind(globalThis);
    this.queue = new FetchQueue(concurrency);
    this._tree = null;
    this._order = new Map(); // ref -> {refs, index}: the stack it belongs to
    this._bytes = new Map(); // ref -> Promise<ArrayBuffer> (fetched or in flight), LRU order
    this._reports = null;
    this._pdfs = new Map();
    this._lastIndex = new Map(); // refs array -> last index asked (direction of travel)
    this.stats = { requests: 0, instances: 0, bytes: 0 };
  }

  async _get(path, params = {}, accept = "application/dicom+json") {
    const qs = new URLSearchParams(params).toString();
    const url = `${this.base}/${path}${qs ? `?${qs}` : ""}`;
    this.stats.requests++;
    const r = await this._fetch(url, { credentials: "same-origin", headers: { Accept: accept } });
    if (!r.ok) throw new GatewayError(r.status, path);
    return r;
  }

  async _json(path, params) {
    const r = await this.queue.run(() => this._get(path, params).then((x) => x.text()));
    return r.trim() ? JSON.parse(r) : [];
  }

  /** Every page of a QIDO query. */
  async _qido(path, params) {
    const out = [];
    for (let offset = 0; ; offset += PAGE) {
      const page = await this._json(path, { ...params, limit: String(PAGE), offset: String(offset) });
      if (!Array.isArray(page)) break;
      out.push(...page);
      if (page.length < PAGE) break;
    }
    return out;
  }

  /** The patients → studies → series → instances tree (docs/viewer.md "Tree"). */
  async tree() {
    if (!this._tree) this._tree = this._readTree();
    return this._tree;
  }

  async _readTree() {
    let studies = await this._qido("studies", { includefield: STUDY_FIELDS });
    if (this._studies) {
      const order = this._studies;
      studies = studies.filter((s) => order.includes(str(s, "0020000D")))
        .sort((a, b) => order.indexOf(str(a, "0020000D")) - order.indexOf(str(b, "0020000D")));
    }
    const patients = new Map();
    const filled = await Promise.all(studies.map(async (s) => {
      const uid = str(s, "0020000D");
      const series = await this._qido(`studies/${uid}/series`, { includefield: SERIES_FIELDS });
      const list = await Promise.all(series.map(async (se) => {
        const suid = str(se, "0020000E");
        const instances = await this._qido(`studies/${uid}/series/${suid}/instances`, { includefield: INSTANCE_FIELDS });
        return {
          uid: suid, number: num(se, "00200011"), modality: str(se, "00080060"), description: str(se, "0008103E"),
          instances: instances.map((i) => ({
            ref: `studies/${uid}/series/${suid}/instances/${str(i, "00080018")}`,
            uid: str(i, "00080018"), number: num(i, "00200013"), sopClassUid: str(i, "00080016"),
          })).sort((a, b) => (a.number ?? Infinity) - (b.number ?? Infinity)),
        };
      }));
      list.sort((a, b) => (a.number ?? Infinity) - (b.number ?? Infinity));
      return { s, study: { uid, date: str(s, "00080020"), time: str(s, "00080030"), description: str(s, "00081030"),
        accession: str(s, "00080050"), series: list } };
    }));
    for (const { s, study } of filled) {
      const name = personName(s, "00100010");
      const id = str(s, "00100020");
      const key = id || name.display || "?";
      if (!patients.has(key)) {
        patients.set(key, { name, id, birthDate: str(s, "00100030"), sex: str(s, "00100040"), studies: [] });
      }
      patients.get(key).studies.push(study);
      for (const se of study.series) {
        const refs = se.instances.filter((i) => i.sopClassUid !== ENCAPSULATED_PDF).map((i) => i.ref);
        refs.forEach((ref, index) => this._order.set(ref, { refs, index }));
      }
    }
    return { patients: [...patients.values()] };
  }

  /**
   * The Part 10 bytes of one instance (a copy: the decoders may detach what they get).
   * @param {string} ref "studies/{uid}/series/{uid}/instances/{uid}"
   */
  async instance(ref) {
    const buffer = await this._instance(ref, true);
    this._prefetch(ref);
    return buffer.slice(0);
  }

  _instance(ref, urgent) {
    let p = this._bytes.get(ref);
    if (p) {
      this._bytes.delete(ref); // most recently used last
      if (urgent && p.waiting) {
        // Still queued as a prefetch: fetch it now instead (the queued one gives up).
        p.cancel();
        p = this._fetchInstance(ref, true);
      }
    } else {
      p = this._fetchInstance(ref, urgent);
    }
    this._bytes.set(ref, p);
    while (this._bytes.size > KEEP) this._bytes.delete(this._bytes.keys().next().value);
    return p;
  }

  _fetchInstance(ref, urgent) {
    const state = { waiting: true, cancelled: false };
    const p = this.queue.run(async () => {
      state.waiting = false;
      if (state.cancelled) throw new Error("fetched by another request");
      const r = await this._get(ref, {}, INSTANCE_ACCEPT);
      const body = new Uint8Array(await r.arrayBuffer());
      const parts = parseMultipart(body, r.headers.get("content-type"));
      if (!parts.length) throw new GatewayError(502, ref);
      const part = parts[0].body;
      const buffer = part.buffer.slice(part.byteOffset, part.byteOffset + part.byteLength);
      this.stats.instances++;
      this.stats.bytes += buffer.byteLength;
      const uid = ref.split("/").pop();
      this.custody.record(uid, await sha256Hex(buffer), buffer.byteLength);
      return buffer;
    }, { urgent });
    Object.defineProperty(p, "waiting", { get: () => state.waiting });
    p.cancel = () => { state.cancelled = true; };
    p.catch(() => this._bytes.get(ref) === p && this._bytes.delete(ref));
    return p;
  }

  /** Queue the slices around `ref` (more of them in the direction the viewer is going). */
  _prefetch(ref) {
    const at = this._order.get(ref);
    if (!at) return;
    const { refs, index } = at;
    const last = this._lastIndex.get(refs);
    this._lastIndex.set(refs, index);
    const dir = last != null && last > index ? -1 : 1;
    const wanted = [];
    for (let k = 1; k <= AHEAD; k++) {
      wanted.push(index + dir * k);
      if (k <= BEHIND) wanted.push(index - dir * k);
    }
    for (const j of wanted) {
      if (j >= 0 && j < refs.length && !this._bytes.has(refs[j])) {
        this._instance(refs[j], false).catch(() => {});
      }
    }
  }

  /** The Encapsulated PDF instances with the kiosk's markers (docs/viewer.md "Source"). */
  async reports() {
    if (!this._reports) this._reports = this._readReports();
    return this._reports;
  }

  async _readReports() {
    const tree = await this.tree();
    const found = [];
    for (const p of tree.patients) {
      for (const st of p.studies) {
        for (const se of st.series) {
          for (const i of se.instances) {
            if (i.sopClassUid === ENCAPSULATED_PDF) found.push({ ref: i.ref, uid: i.uid, study: st.uid });
          }
        }
      }
    }
    const read = await Promise.all(found.map(async (f) => {
      try {
        const buffer = await this._instance(f.ref, true);
        const r = readReport(buffer);
        if (!r) return null;
        this._pdfs.set(f.ref, r.pdf);
        return { ref: f.ref, uid: f.uid, study: f.study, title: r.title, language: r.language, role: r.role,
          translates: null, translator: r.translator, certified: r.certified };
      } catch {
        return null;
      }
    }));
    const list = read.filter(Boolean);
    this._pair(list);
    return list.map(({ uid, study, ...r }) => r);
  }

  /** Which original each translation translates: the manifest says; else its study's, else the only one. */
  _pair(list) {
    const m = this.custody.manifest;
    const pathToUid = new Map((m?.files ?? []).map((f) => [f.path, f.sop_instance_uid]));
    const fileToUid = new Map((m?.reports ?? []).map((r) => [r.file, pathToUid.get(r.dicom_file)]));
    const byUid = new Map(list.map((r) => [r.uid, r]));
    const originals = list.filter((r) => r.role === "original");
    for (const r of list) {
      if (r.role !== "translation") continue;
      const entry = (m?.reports ?? []).find((e) => pathToUid.get(e.dicom_file) === r.uid);
      const named = entry?.translates ? byUid.get(fileToUid.get(entry.translates)) : null;
      const original = named ?? originals.find((o) => o.study === r.study) ?? (originals.length === 1 ? originals[0] : null);
      r.translates = original?.ref ?? null;
    }
  }

  /** @param {string} ref */
  async reportBlob(ref) {
    await this.reports();
    const pdf = this._pdfs.get(ref);
    if (!pdf) throw new Error(`no report ${ref}`);
    return new Blob([pdf], { type: "application/pdf" });
  }

  close() {
    this.queue.dropLater();
    this._bytes.clear();
  }
}
