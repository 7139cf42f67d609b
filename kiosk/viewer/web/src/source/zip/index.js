// The stick source (docs/viewer.md "Opening the stick", "Source"): IMAGES.zip or its parts,
// read with Blob.slice (never whole), every entry decrypted on demand in workers; the tree from
// the DICOMDIR, the reports from the signed manifest, and the chain of custody checked in the
// background while the doctor looks.
import { parseDicomdir } from "../../dicom/index.js";
import { Custody, checkSignature } from "../../manifest/index.js";
import { ZipFormatError, entryPlan, readCentralDirectory } from "./central.js";
import { PackageError, WORDS } from "./errors.js";
import { folderFiles, isPlainFolder, readPlain } from "./folder.js";
import { PlainZipWriter } from "./plainzip.js";
import { WorkerPool } from "./pool.js";
import { Volumes } from "./volumes.js";

export { PackageError } from "./errors.js";

const WHOLE = /^(.+)\.zip$/i;
const PART = /^(.+)\.zip\.(\d{3})$/i;
const MANIFEST = "MANIFEST.JSON";
const SIGNATURE = "MANIFEST.JWS";
// The background check reads runs of consecutive entries of up to this many bytes in one
// slice (each Blob read is a round trip to the browser process), two runs a worker at once.
const BATCH_BYTES = 4 << 20;

/**
 * What the picked files are, before any passphrase (docs/viewer.md "Opening the stick").
 * @param {File[]} files
 */
export function describeFiles(files) {
  const list = Array.from(files ?? []);
  if (isPlainFolder(list)) {
    const root = (list[0].webkitRelativePath || "").split("/")[0] || "DICOMDIR";
    return { ok: true, encrypted: false, parts: [root], files: list, missing: [], message: null };
  }
  const parts = list.filter((f) => PART.test(f.name))
    .sort((a, b) => Number(PART.exec(a.name)[2]) - Number(PART.exec(b.name)[2]));
  if (parts.length) {
    const numbers = new Set(parts.map((f) => Number(PART.exec(f.name)[2])));
    const stem = PART.exec(parts[0].name)[1];
    const last = Math.max(...numbers);
    const missing = [];
    for (let n = 1; n <= last; n++) if (!numbers.has(n)) missing.push(`${stem}.zip.${String(n).padStart(3, "0")}`);
    return { ok: missing.length === 0, encrypted: true, parts: parts.map((f) => f.name), files: parts, missing,
      message: missing.length ? WORDS.missing(missing) : null };
  }
  const whole = list.filter((f) => WHOLE.test(f.name));
  if (whole.length) {
    const pick = whole.find((f) => /^images\.zip$/i.test(f.name)) ?? whole[0];
    return { ok: true, encrypted: true, parts: [pick.name], files: [pick], missing: [], message: null };
  }
  return { ok: false, encrypted: false, parts: [], files: [], missing: [], message: WORDS.choose };
}

function entryProblem(error, volumes) {
  if (error instanceof ZipFormatError && error.missingEnd && volumes.length > 1) {
    return new PackageError("missing-part", WORDS.lastMissing(volumes[volumes.length - 1].name), error.message);
  }
  if (error instanceof ZipFormatError && error.missingEnd && volumes.length === 1 && PART.test(volumes[0].name)) {
    return new PackageError("missing-part", WORDS.lastMissing(volumes[0].name), error.message);
  }
  if (error instanceof ZipFormatError) return new PackageError("not-a-package", WORDS.notOurs, error.message);
  return new PackageError("damaged", WORDS.damaged, String(error?.message ?? error));
}

/**
 * Open the stick's package with the slip's passphrase.
 * @param {File[]} files as picked
 * @param {string} passphrase
 * @param {{onProgress?: (p: {done: number, total: number}) => void}} [options]
 * @returns {Promise<ZipSource>}
 * @throws {PackageError}
 */
export async function openPackage(files, passphrase, { onProgress } = {}) {
  const described = describeFiles(files);
  if (!described.ok) {
    throw new PackageError(described.missing.length ? "missing-part" : "not-a-package", described.message ?? WORDS.choose);
  }
  const progress = (done) => onProgress?.({ done, total: 4 });
  progress(0);
  let volumes = null;
  let entries;
  if (described.encrypted === false) {
    // An unencrypted package: its files are the entries.
    entries = [...folderFiles(described.files).keys()].map((name) => ({ name }));
  } else {
    volumes = new Volumes(described.files);
    try {
      entries = await readCentralDirectory(volumes);
    } catch (e) {
      throw entryProblem(e, described.files);
    }
  }
  const byName = new Map(entries.map((e) => [e.name, e]));
  if (!byName.has("DICOMDIR") && !byName.has(MANIFEST)) {
    throw new PackageError("not-a-package", WORDS.notOurs, "no DICOMDIR and no MANIFEST.JSON in the zip");
  }
  const source = new ZipSource(volumes, entries, passphrase, described);
  try {
    progress(1);
    // A damaged manifest or signature does not keep the images from the doctor: the custody
    // names it instead (a wrong passphrase still stops here).
    const problems = [];
    const optional = async (name) => {
      if (!byName.has(name)) return null;
      try {
        return await source._read(name, { urgent: true, check: false });
      } catch (e) {
        if (e?.code !== "damaged") throw e;
        problems.push({ path: name, problem: "damaged" });
        return null;
      }
    };
    // The manifest first: its password check says at once whether the passphrase is right.
    const manifestBytes = await optional(MANIFEST);
    progress(2);
    const jws = await optional(SIGNATURE);
    let manifest = null;
    if (manifestBytes) {
      try {
        manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
      } catch {
        problems.push({ path: MANIFEST, problem: "damaged" });
      }
    }
    const signature = manifestBytes && jws ? await checkSignature(new TextDecoder().decode(jws), manifestBytes) : null;
    source.manifest = manifest;
    // Beside the archive (README.TXT, this page): listed in the manifest's "beside", not files.
    const beside = new Set((manifest?.beside ?? []).map((b) => b.path));
    source.custody = new Custody({ manifest, signature, problems,
      names: entries.map((e) => e.name).filter((n) => !beside.has(n)) });
    progress(3);
    const dicomdir = await source._read("DICOMDIR", { urgent: true });
    source._tree = parseDicomdir(dicomdir.buffer.byteLength === dicomdir.length ? dicomdir.buffer : dicomdir.slice().buffer);
    progress(4);
  } catch (e) {
    source.close();
    if (e instanceof PackageError) throw e;
    throw new PackageError("damaged", WORDS.damaged, String(e?.message ?? e));
  }
  source._startCheck();
  return source;
}

/** A Source over the stick's zip (docs/viewer.md "Source"). */
export class ZipSource {
  constructor(volumes, entries, passphrase, described) {
    this.volumes = volumes;
    this.entries = entries;
    this.byName = new Map(entries.map((e) => [e.name, e]));
    this.passphrase = passphrase;
    this.plain = described.encrypted === false ? folderFiles(described.files) : null;
    this.label = this.plain ? described.parts[0]
      : described.files.length > 1 ? `${described.files[0].name.replace(/\.\d{3}$/, "")} (${described.files.length} parts)`
        : described.files[0].name;
    this.pool = new WorkerPool();
    this.manifest = null;
    this.custody = null;
    this._tree = null;
    this._closed = false;
  }

  /** Decrypt one entry; with `check`, its hash goes to the custody. @returns {Promise<Uint8Array>} */
  async _read(name, { urgent = false, check = true, wantData = true } = {}) {
    if (this.plain) {
      const result = await readPlain(this.pool, this.plain, name, { urgent, wantData });
      if (check && this.custody) this.custody.record(name, result.sha256, result.size);
      return wantData ? new Uint8Array(result.data) : null;
    }
    const entry = this.byName.get(name);
    if (!entry) throw new PackageError("damaged", WORDS.damaged, `${name} is not in the archive`);
    const [result] = await this._run([entry], { urgent, wantData });
    return this._settle(entry, result, check, wantData);
  }

  /** Read entries (consecutive in the archive) in one worker job: one result each. */
  async _run(entries, { urgent = false, wantData = true } = {}) {
    const first = entries[0].localOffset;
    const items = entries.map((entry) => {
      try {
        return { at: entry.localOffset - first, ...entryPlan(entry) };
      } catch (e) {
        throw new PackageError("damaged", WORDS.damaged, String(e?.message ?? e));
      }
    });
    const end = Math.max(...entries.map((e) => e.end));
    return this.pool.run({
      blob: this.volumes.slice(first, end - first), passphrase: this.passphrase, wantData, items,
    }, { urgent });
  }

  /** One entry's result from a worker: recorded for the custody, or the error it means. */
  _settle(entry, result, check, wantData) {
    const name = entry.name;
    if (result.badHeader) throw new PackageError("damaged", WORDS.damaged, `the local header of ${name} is damaged`);
    if (!result.pvOk) {
      throw new PackageError("wrong-passphrase", WORDS.wrongPassphrase, `password check failed on ${name}`);
    }
    if (result.unsupported) throw new PackageError("damaged", WORDS.damaged, `${name} uses a weaker AES than the kiosk writes`);
    if (check && this.custody) this.custody.record(name, result.macOk ? result.sha256 : null, result.size);
    if (!result.macOk) {
      throw new PackageError("damaged", {
        en: `${name} is damaged or was changed (its integrity check failed); it is not shown.`,
        zh: `${name} 已损坏或被改动（完整性校验失败），不予显示。`,
      }, "HMAC mismatch");
    }
    return wantData ? new Uint8Array(result.data) : null;
  }

  /** The patients, studies, series and instances from the DICOMDIR. */
  async tree() {
    return this._tree;
  }

  /** The Part 10 bytes of one instance (its hash checked against the manifest as it is read). */
  async instance(ref) {
    const bytes = await this._read(ref, { urgent: true });
    return bytes.buffer;
  }

  /** The reports the manifest lists (which translates which, who translated, certified). */
  async reports() {
    return (this.manifest?.reports ?? []).filter((r) => this.byName.has(r.file)).map((r) => ({
      ref: r.file, title: r.title ?? r.file, language: r.language, role: r.role,
      translates: r.translates ?? null, translator: r.translator ?? null, certified: !!r.certified,
    }));
  }

  /** A report as a PDF Blob (the browser's PDF viewer opens its blob: URL). */
  async reportBlob(ref) {
    return new Blob([await this._read(ref, { urgent: true })], { type: "application/pdf" });
  }

  /**
   * "Save for your PACS": the DICOM file-set (DICOMDIR, images, reports, manifest) as a plain
   * zip, one entry at a time.
   * @param {WritableStream} writable
   */
  async saveForPacs(writable, { onProgress } = {}) {
    const writer = writable.getWriter();
    const zip = new PlainZipWriter(writer);
    const beside = new Set((this.manifest?.beside ?? []).map((b) => b.path));
    const names = this.entries.map((e) => e.name).filter((n) => !beside.has(n));
    try {
      for (let i = 0; i < names.length; i++) {
        await zip.add(names[i], await this._read(names[i], { urgent: true }));
        onProgress?.({ done: i + 1, total: names.length });
      }
      await zip.close();
    } catch (e) {
      await writer.abort(e).catch(() => {});
      throw e;
    }
  }

  /** The background check: every file of the manifest decrypted, its HMAC and SHA-256 checked. */
  _startCheck() {
    const custody = this.custody;
    if (!custody || !this.manifest) {
      custody?.finish();
      return;
    }
    // A file that cannot be read (a bad local header, another passphrase than the others) is
    // damaged: its bytes are not the kiosk's. (The custody keeps the first verdict on a file.)
    const record = (name) => {
      if (!this._closed) custody.record(name, null, 0);
    };
    let next;
    if (this.plain) {
      const queue = custody.pending();
      next = async () => {
        while (queue.length && !this._closed) {
          const name = queue.shift();
          if (custody.done.has(name)) continue; // the viewer has read it already
          try {
            await this._read(name, { wantData: false });
          } catch {
            record(name);
          }
        }
      };
    } else {
      // In archive order, so a run of entries is one slice of the volumes.
      const queue = custody.pending().map((n) => this.byName.get(n)).sort((a, b) => a.localOffset - b.localOffset);
      next = async () => {
        while (queue.length && !this._closed) {
          const run = [];
          while (queue.length) {
            const entry = queue[0];
            if (custody.done.has(entry.name)) { queue.shift(); continue; }
            if (run.length && entry.end - run[0].localOffset > BATCH_BYTES) break;
            run.push(queue.shift());
          }
          if (!run.length) break;
          let results;
          try {
            results = await this._run(run, { wantData: false });
          } catch {
            if (this._closed) return;
            for (const entry of run) record(entry.name);
            continue;
          }
          run.forEach((entry, i) => {
            try {
              this._settle(entry, results[i], true, false);
            } catch {
              record(entry.name);
            }
          });
        }
      };
    }
    const lanes = this.plain ? 8 : 2 * this.pool.size;
    this._checking = Promise.all(Array.from({ length: lanes }, next)).then(() => {
      if (!this._closed) custody.finish();
    });
  }

  /** Stop the workers and the background check. */
  close() {
    this._closed = true;
    this.pool.close();
  }
}
