// Where each frame's bytes are: native pixel data is cut by size; encapsulated pixel data
// (PS3.5 A.4) by the Extended or Basic Offset Table, else one fragment per frame, else by where
// each codestream starts (a JPEG/JPEG-LS SOI or a JPEG 2000 SOC at a fragment's start).
import * as dicomParser from "dicom-parser";

function concat(parts) {
  if (parts.length === 1) return parts[0];
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function fragmentBytes(dataSet, el, f) {
  const frag = el.fragments[f];
  return dataSet.byteArray.subarray(frag.position, frag.position + frag.length);
}

function startsCodestream(bytes) {
  return bytes.length >= 2 && bytes[0] === 0xff && (bytes[1] === 0xd8 || bytes[1] === 0x4f);
}

/** Fragment index ranges [start, end) of each frame, or null when the frames cannot be told. */
function frameRanges(dataSet, el, frames) {
  const n = el.fragments.length;
  if (frames <= 1) return [[0, n]];
  // Extended Offset Table (7FE0,0001): 64-bit byte offsets of each frame's first fragment.
  const eot = dataSet.elements.x7fe00001;
  const offsets = [];
  if (eot && eot.length >= frames * 8) {
    const view = new DataView(dataSet.byteArray.buffer, dataSet.byteArray.byteOffset + eot.dataOffset, eot.length);
    for (let i = 0; i < frames; i++) offsets.push(Number(view.getBigUint64(i * 8, true)));
  } else if (el.basicOffsetTable?.length === frames) {
    offsets.push(...el.basicOffsetTable);
  }
  if (offsets.length === frames) {
    const at = new Map(el.fragments.map((f, i) => [f.offset, i]));
    const starts = offsets.map((o) => at.get(o) ?? -1);
    if (starts.every((s, i) => s >= 0 && (i === 0 || s > starts[i - 1]))) {
      return starts.map((s, i) => [s, i + 1 < frames ? starts[i + 1] : n]);
    }
  }
  if (n === frames) return starts1(n);
  const starts = [];
  for (let f = 0; f < n; f++) if (startsCodestream(fragmentBytes(dataSet, el, f))) starts.push(f);
  if (starts.length === frames && starts[0] === 0) {
    return starts.map((s, i) => [s, i + 1 < frames ? starts[i + 1] : n]);
  }
  return null;
}

const RANGES = new WeakMap();

function starts1(n) {
  return Array.from({ length: n }, (_, i) => [i, i + 1]);
}

/**
 * The bytes of frame `index` of encapsulated pixel data.
 * @returns {Uint8Array}
 */
export function encapsulatedFrame(dataSet, el, index, frames) {
  if (!el.fragments || el.fragments.length === 0) throw new Error("no fragments in the pixel data");
  // Worked out once per image: a cine loop of a thousand frames asks for each in turn.
  if (!RANGES.has(el)) RANGES.set(el, frameRanges(dataSet, el, frames));
  const ranges = RANGES.get(el);
  if (ranges === null) {
    // Last resort for JPEG: dicom-parser finds the frames by their EOI markers.
    const table = dicomParser.createJPEGBasicOffsetTable(dataSet, el);
    return dicomParser.readEncapsulatedImageFrame(dataSet, el, index, table);
  }
  if (index >= ranges.length) throw new Error(`frame ${index + 1} is not in the pixel data`);
  const [start, end] = ranges[index];
  const parts = [];
  for (let f = start; f < end; f++) parts.push(fragmentBytes(dataSet, el, f));
  return concat(parts);
}
