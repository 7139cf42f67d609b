// The chain of custody (docs/viewer.md "The package the page opens", "Custody"): MANIFEST.JWS,
// the kiosk's detached EdDSA signature of MANIFEST.JSON (RFC 7515 Appendix F, RFC 8037), checked
// with @noble/curves; then every file of the manifest against its SHA-256, as the files are
// read. The doctor compares the key's fingerprint with the one on the slip and in README.TXT.
import { ed25519 } from "@noble/curves/ed25519.js";

const ascii = new TextEncoder();

/** base64url (no padding) to bytes; null when it is not base64url. */
export function fromBase64Url(text) {
  if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text)) return null;
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  try {
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** bytes to base64url without padding. */
export function toBase64Url(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** SHA-256 of the raw public key, upper-case hex in groups of four (as the slip prints it). */
export async function fingerprintOf(rawKey) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", rawKey));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  return hex.match(/.{4}/g).join(" ");
}

/**
 * Check MANIFEST.JWS against the bytes of MANIFEST.JSON.
 * @param {string} jws the compact detached JWS
 * @param {Uint8Array} manifest the bytes of MANIFEST.JSON
 * @returns {Promise<{fingerprint: string|null, problem: string|null}>}
 */
export async function checkSignature(jws, manifest) {
  const parts = String(jws).trim().split(".");
  if (parts.length !== 3 || parts[1] !== "") return { fingerprint: null, problem: "not a detached JWS" };
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(fromBase64Url(parts[0]) ?? new Uint8Array()));
  } catch {
    return { fingerprint: null, problem: "its header cannot be read" };
  }
  if (header?.alg !== "EdDSA") return { fingerprint: null, problem: `signed with ${header?.alg}, not EdDSA` };
  const jwk = header.jwk;
  const raw = jwk?.kty === "OKP" && jwk?.crv === "Ed25519" ? fromBase64Url(jwk.x) : null;
  if (!raw || raw.length !== 32) return { fingerprint: null, problem: "it carries no Ed25519 key" };
  const fingerprint = await fingerprintOf(raw);
  if (header.kid !== fingerprint) return { fingerprint, problem: "it names another key's fingerprint" };
  const signature = fromBase64Url(parts[2]);
  let ok = false;
  try {
    ok = !!signature && signature.length === 64
      && ed25519.verify(signature, ascii.encode(`${parts[0]}.${toBase64Url(manifest)}`), raw);
  } catch {
    ok = false;
  }
  return { fingerprint, problem: ok ? null : "the signature does not match MANIFEST.JSON" };
}

/**
 * The custody of one package: the signature's verdict, then each file as it is checked.
 * An EventTarget: "change" after every update (docs/viewer.md "Custody").
 */
export class Custody extends EventTarget {
  /**
   * @param {{manifest: object|null, signature: {fingerprint, problem}|null, names: string[],
   *   problems?: Array<{path, problem}>}} p
   *   `names`: the entries of the archive (to find the unlisted ones); `problems`: found before
   *   (a manifest or signature that could not be read)
   */
  constructor({ manifest, signature, names, problems = [] }) {
    super();
    this.manifest = manifest;
    this.signature = signature;
    this.expected = new Map((manifest?.files ?? []).map((f) => [f.path, f]));
    this.done = new Map(); // path -> problem code | null
    this.problems = problems.map((p) => ({ ...p }));
    this.bytesChecked = 0;
    this.finished = false;
    if (signature?.problem) this.problems.push({ path: "MANIFEST.JWS", problem: "signature", detail: signature.problem });
    const own = new Set(["MANIFEST.JSON", "MANIFEST.JWS"]);
    for (const name of names) {
      if (!own.has(name) && manifest && !this.expected.has(name)) this.problems.push({ path: name, problem: "unlisted" });
    }
    const inZip = new Set(names);
    for (const path of this.expected.keys()) {
      if (!inZip.has(path)) {
        this.problems.push({ path, problem: "missing" });
        this.done.set(path, "missing");
      }
    }
  }

  /** The files the background check reads: every file of the manifest in the archive. */
  pending() {
    return [...this.expected.keys()].filter((p) => !this.done.has(p));
  }

  /**
   * One file was read: its plaintext SHA-256 (null when its HMAC failed) and size.
   * @returns {boolean} whether it matches the manifest
   */
  record(path, sha256, size) {
    const want = this.expected.get(path);
    if (!want || this.done.has(path)) return !!want && this.done.get(path) === null;
    const problem = sha256 === null ? "damaged" : sha256 !== want.sha256 || size !== want.size ? "changed" : null;
    this.done.set(path, problem);
    this.bytesChecked += size ?? 0;
    if (problem) this.problems.push({ path, problem });
    this._changed();
    return problem === null;
  }

  /** The background check has read everything it could. */
  finish() {
    this.finished = true;
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new Event("change"));
  }

  /** What the banner shows (docs/viewer.md "Custody"). */
  summary() {
    const m = this.manifest ?? {};
    const files = m.files ?? [];
    const reports = m.reports ?? [];
    let state;
    if (!this.manifest || !this.signature) state = this.problems.length ? "warning" : "unsigned";
    else if (this.problems.length) state = "warning";
    else state = this.finished && this.done.size >= this.expected.size ? "verified" : "checking";
    return {
      state, kioskId: m.kiosk_id ?? "", created: m.created ?? "",
      fingerprint: this.signature?.fingerprint ?? "",
      images: files.filter((f) => f.kind === "dicom" && !f.report_id).length,
      originals: reports.filter((r) => r.role === "original").length,
      translations: reports.filter((r) => r.role === "translation").length,
      checked: this.done.size, total: this.expected.size, bytesChecked: this.bytesChecked,
      problems: this.problems.map((p) => ({ ...p })),
    };
  }
}
