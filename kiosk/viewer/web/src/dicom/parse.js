// Part 10 bytes → dicom-parser DataSet. Deflated data sets are inflated first with the
// browser's own DecompressionStream (dicom-parser's inflater hook is synchronous, so it just
// hands back the bytes inflated here). Old files without preamble/meta are read too, guessing
// implicit or explicit VR from the first element, as the kiosk's importer does.
import * as dicomParser from "dicom-parser";
import { BIG_ENDIAN, DEFLATED, EXPLICIT, IMPLICIT } from "./syntaxes.js";

// An inflated data set bigger than this is refused: the kiosk checked the stick's files, but a
// page must not run a tab out of memory on a hand-made bomb.
const MAX_INFLATED = 1 << 30;

function hasPrefix(bytes) {
  return bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49
    && bytes[130] === 0x43 && bytes[131] === 0x4d;
}

/** Whether the element at `at` reads as explicit VR (two upper-case letters after the tag). */
function looksExplicit(bytes, at) {
  const vr = String.fromCharCode(bytes[at + 4] ?? 0, bytes[at + 5] ?? 0);
  return /^[A-Z]{2}$/.test(vr);
}

/** Implicit or explicit VR little endian for a raw data set (no preamble, no meta). */
function guessRawSyntax(bytes) {
  return looksExplicit(bytes, 0) ? EXPLICIT : IMPLICIT;
}

/** The transfer syntax named in the file meta, or null (raw data set). */
function metaSyntax(bytes) {
  if (!hasPrefix(bytes)) return null;
  const meta = dicomParser.readPart10Header(bytes);
  return { uid: (meta.string("x00020010") ?? "").replace(/\0/g, "").trim(), position: meta.position };
}

/** Inflate a raw deflate stream; throws on damage (with `junk` set for bytes after its end). */
async function inflateOnce(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw"));
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    let r;
    try {
      r = await reader.read();
    } catch (e) {
      e.junk = /junk/i.test(String(e?.message));
      throw e;
    }
    if (r.done) break;
    total += r.value.length;
    if (total > MAX_INFLATED) {
      reader.cancel();
      throw new Error("deflated data set inflates past 1 GiB");
    }
    chunks.push(r.value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

async function inflateRaw(bytes) {
  // Files are padded to an even length, so a byte often follows the deflate stream's end;
  // Chromium then fails the whole stream ("junk"), and is given the bytes without it.
  for (let cut = 0; cut <= 16 && cut < bytes.length; cut++) {
    try {
      return await inflateOnce(cut ? bytes.subarray(0, bytes.length - cut) : bytes);
    } catch (e) {
      if (!e.junk) throw e;
    }
  }
  throw new Error("the deflated data set is followed by unexpected bytes");
}

/**
 * The data set after the meta read as explicit or implicit VR little endian whatever the meta
 * says: some writers (an early highdicom among them) name an explicit syntax and write implicit
 * VR. pydicom reads such files by what it finds; so does the page.
 */
function parseAs(bytes, options, explicit) {
  const meta = dicomParser.readPart10Header(bytes, options);
  const le = dicomParser.littleEndianByteArrayParser;
  const stream = new dicomParser.ByteStream(le, bytes, meta.position);
  const dataSet = new dicomParser.DataSet(le, bytes, {});
  dataSet.warnings = [];
  try {
    if (explicit) {
      dicomParser.parseDicomDataSetExplicit(dataSet, stream, bytes.length, options);
    } else {
      // Implicit VR has no encapsulated pixel data, so dicom-parser would read its fragments as
      // sequence items: stop at Pixel Data, read it as encapsulated, then go on.
      const pixelTag = "x7fe00010";
      dicomParser.parseDicomDataSetImplicit(dataSet, stream, bytes.length, { ...options, untilTag: pixelTag });
      const el = dataSet.elements[pixelTag];
      if (el && options.untilTag !== pixelTag) {
        if (el.hadUndefinedLength) dicomParser.findEndOfEncapsulatedElement(stream, el, dataSet.warnings);
        else stream.seek(el.length);
        if (stream.position < bytes.length) {
          dicomParser.parseDicomDataSetImplicit(dataSet, stream, bytes.length, options);
        }
      }
    }
  } catch {
    if (Object.keys(dataSet.elements).length === 0) throw new Error("the data set could not be read");
    Object.assign(dataSet.elements, meta.elements);
    return { dataSet, truncated: true };
  }
  Object.assign(dataSet.elements, meta.elements);
  return { dataSet, truncated: false };
}

function run(bytes, options, meta = null) {
  // A little-endian data set whose VR encoding is not the one its syntax says.
  if (meta && meta.uid !== BIG_ENDIAN && meta.uid !== DEFLATED && !options.inflater) {
    const found = looksExplicit(bytes, meta.position);
    if (found !== (meta.uid !== IMPLICIT)) return { ...parseAs(bytes, options, found), vrMismatch: true };
  }
  try {
    return { dataSet: dicomParser.parseDicom(bytes, options), truncated: false };
  } catch (e) {
    // dicom-parser throws {exception, dataSet} with what it read before a cut or damage.
    if (e && e.dataSet && Object.keys(e.dataSet.elements).length > 0) {
      return { dataSet: e.dataSet, truncated: true };
    }
    throw e instanceof Error ? e : new Error(String(e?.exception ?? e));
  }
}

/**
 * Parse Part 10 bytes (or a raw data set) synchronously; deflated data sets need parseAsync.
 * @param {ArrayBuffer|Uint8Array} buffer
 * @param {object} [options] dicom-parser options (untilTag...)
 * @returns {{dataSet: any, transferSyntax: string, truncated: boolean}}
 */
export function parseSync(buffer, options = {}) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const meta = metaSyntax(bytes);
  if (meta === null) {
    const transferSyntax = guessRawSyntax(bytes);
    return { ...run(bytes, { ...options, TransferSyntaxUID: transferSyntax }), transferSyntax };
  }
  if (meta.uid === DEFLATED) throw new Error("deflated data set: use parseAsync");
  return { ...run(bytes, options, meta), transferSyntax: meta.uid };
}

/**
 * Parse Part 10 bytes, inflating a deflated data set first.
 * @param {ArrayBuffer|Uint8Array} buffer
 * @returns {Promise<{dataSet: any, transferSyntax: string, truncated: boolean}>}
 */
export async function parseAsync(buffer, options = {}) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const meta = metaSyntax(bytes);
  if (meta === null || meta.uid !== DEFLATED) return parseSync(bytes, options);
  const inflated = await inflateRaw(bytes.subarray(meta.position));
  // dicom-parser reads the inflater's bytes from position 0: hand it the data set alone (the
  // meta elements it merges in keep offsets into the original bytes; none are read from it).
  return { ...run(bytes, { ...options, inflater: () => inflated }), transferSyntax: DEFLATED };
}

/** The raw bytes of an element, or undefined. */
export function elementBytes(dataSet, tag) {
  const el = dataSet.elements[tag];
  if (!el || el.length === undefined || el.length <= 0) return undefined;
  return dataSet.byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
}

/** An ASCII string value (UI, CS, DA, TM, IS, DS...) without padding; "" when absent. */
export function asciiString(dataSet, tag) {
  const b = elementBytes(dataSet, tag);
  if (!b) return "";
  let s = "";
  for (const c of b) s += String.fromCharCode(c);
  return s.replace(/[\0 ]+$/, "").replace(/^ +/, "");
}

/** Numbers of a multi-valued DS/IS string; [] when absent or unreadable. */
export function numbers(dataSet, tag) {
  const s = asciiString(dataSet, tag);
  if (!s) return [];
  return s.split("\\").map((v) => Number.parseFloat(v)).filter((v) => Number.isFinite(v));
}

/** A US value (or the first of several); `fallback` when absent. */
export function uint16(dataSet, tag, fallback) {
  const el = dataSet.elements[tag];
  if (!el || el.length < 2) return fallback;
  return dataSet.uint16(tag);
}
