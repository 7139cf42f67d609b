// The chain of custody of a share (docs/viewer.md "Custody"): the kiosk's signed manifest as the
// gateway keeps it (`/s/{id}/api/share`: `manifest`, `manifest_jws`), its signature checked with
// the manifest module, then every instance the phone fetches against the SHA-256 the manifest
// gives for its SOP Instance UID. A phone fetches what it shows, not the whole study, so
// "verified" means: the signature holds and nothing fetched so far differs; `checked` counts them.
import { checkSignature } from "../../manifest/index.js";

/**
 * The bytes of MANIFEST.JSON as the kiosk wrote them: Python's `json.dumps(manifest,
 * ensure_ascii=False, indent=1)` (kiosk/package/plan.py) is what JSON.stringify gives with an
 * indent of 1 for the manifest's strings, integers, lists and objects. The gateway keeps the
 * manifest as JSON, not its bytes, so the page writes them again to check the signature.
 * @param {object} manifest
 * @returns {Uint8Array[]} the forms to try, the kiosk's first
 */
export function manifestBytes(manifest) {
  const enc = new TextEncoder();
  return [enc.encode(JSON.stringify(manifest, null, 1)), enc.encode(JSON.stringify(manifest))];
}

export class DicomwebCustody extends EventTarget {
  constructor() {
    super();
    this.manifest = null;
    this.signature = null;
    this.state = "checking";
    this.byUid = new Map(); // SOP Instance UID -> [{path, sha256, size}]
    this.checked = new Set();
    this.bytesChecked = 0;
    this.problems = [];
  }

  /**
   * What `/s/{id}/api/share` said.
   * @param {object|null} manifest
   * @param {string|null} jws
   */
  async load(manifest, jws) {
    if (!manifest || typeof manifest !== "object") {
      this.state = jws ? "warning" : "unsigned";
      if (jws) this.problems.push({ path: "MANIFEST.JSON", problem: "missing" });
      this._changed();
      return;
    }
    this.manifest = manifest;
    for (const f of manifest.files ?? []) {
      if (f?.kind !== "dicom" || !f.sop_instance_uid) continue;
      if (!this.byUid.has(f.sop_instance_uid)) this.byUid.set(f.sop_instance_uid, []);
      this.byUid.get(f.sop_instance_uid).push(f);
    }
    if (!jws) {
      this.state = "unsigned";
    } else {
      let verdict = { fingerprint: null, problem: "no signature" };
      for (const bytes of manifestBytes(manifest)) {
        verdict = await checkSignature(jws, bytes);
        if (!verdict.problem) break;
      }
      this.signature = verdict;
      if (verdict.problem) this.problems.push({ path: "MANIFEST.JWS", problem: "signature", detail: verdict.problem });
      this.state = this.problems.length ? "warning" : "verified";
    }
    this._changed();
  }

  /**
   * One instance fetched: its SHA-256 (lower hex) against the manifest's.
   * @param {string} uid SOP Instance UID
   * @param {string} sha256
   * @param {number} size
   * @returns {boolean} whether it matches (true when there is no manifest to compare with)
   */
  record(uid, sha256, size) {
    if (!this.manifest || this.checked.has(uid)) return true;
    this.checked.add(uid);
    this.bytesChecked += size;
    const listed = this.byUid.get(uid);
    let problem = null;
    if (!listed) problem = "unlisted";
    else if (!listed.some((f) => f.sha256 === sha256 && (f.size == null || f.size === size))) problem = "changed";
    if (problem) {
      this.problems.push({ path: listed?.[0]?.path ?? uid, problem });
      this.state = "warning";
    }
    this._changed();
    return problem === null;
  }

  _changed() {
    this.dispatchEvent(new Event("change"));
  }

  /** What the banner shows (docs/viewer.md "Custody"). */
  summary() {
    const m = this.manifest ?? {};
    const files = m.files ?? [];
    const reports = m.reports ?? [];
    return {
      state: this.state, kioskId: m.kiosk_id ?? "", created: m.created ?? "",
      fingerprint: this.signature?.fingerprint ?? "",
      images: files.filter((f) => f.kind === "dicom" && !f.report_id).length,
      originals: reports.filter((r) => r.role === "original").length,
      translations: reports.filter((r) => r.role === "translation").length,
      checked: this.checked.size, total: this.byUid.size, bytesChecked: this.bytesChecked,
      problems: this.problems.map((p) => ({ ...p })),
    };
  }
}
