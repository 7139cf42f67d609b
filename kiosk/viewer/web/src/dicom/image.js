// loadImage: one instance's header and its frames, decoded on demand and kept in a small cache.
// Anything that cannot be shown (no pixel data, a syntax without a decoder, a damaged frame)
// makes the image not displayable with a reason, never a blank canvas or an exception.
import * as dicomParser from "dicom-parser";
import { decodeCompressed } from "./codecs/index.js";
import { encapsulatedFrame } from "./frames.js";
import { readHeader } from "./header.js";
import { cannotDisplay, message } from "./messages.js";
import { nativeFrame } from "./native.js";
import { parseAsync } from "./parse.js";
import { colourFrame, greyFrame, paletteChannel } from "./pixels.js";
import { BIG_ENDIAN, SYNTAXES } from "./syntaxes.js";

const CACHE_FRAMES = 8;

function emptyHeader(transferSyntax = "") {
  return {
    patientName: { alphabetic: "", ideographic: "", phonetic: "", display: "", stored: "" },
    patientId: "", studyDate: "", studyDescription: "", seriesDescription: "", seriesNumber: null,
    instanceNumber: null, modality: "", rows: 0, columns: 0, frames: 0, pixelSpacing: null,
    photometric: "", bitsStored: 0, signed: false, windows: [], rescale: { slope: 1, intercept: 0, type: "" },
    voiFunction: "LINEAR", transferSyntax, transferSyntaxName: transferSyntax, frameTimeMs: null, warnings: [],
  };
}

function palette(dataSet) {
  const channel = (d, l) => {
    const desc = dataSet.elements[d];
    const data = dataSet.elements[l];
    if (!desc || !data || desc.length < 6) return null;
    // The descriptor is US or SS by the standard's own ambiguity; the values are read unsigned.
    const descriptor = [dataSet.uint16(d, 0), dataSet.uint16(d, 1), dataSet.uint16(d, 2)];
    const bytes = dataSet.byteArray.subarray(data.dataOffset, data.dataOffset + data.length);
    const entries = new Uint16Array(data.length >> 1);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const little = dataSet.byteArrayParser !== dicomParser.bigEndianByteArrayParser;
    for (let i = 0; i < entries.length; i++) entries[i] = view.getUint16(i * 2, little);
    // 8-bit entries packed two to a word: unpack (PS3.3 C.7.6.3.1.6 allows it).
    if (descriptor[2] === 8 && entries.length * 2 === (descriptor[0] || 65536)) {
      return paletteChannel(descriptor, bytes);
    }
    return paletteChannel(descriptor, entries);
  };
  const red = channel("x00281101", "x00281201");
  const green = channel("x00281102", "x00281202");
  const blue = channel("x00281103", "x00281203");
  return red && green && blue ? { red, green, blue } : null;
}

class DicomImage {
  constructor(dataSet, transferSyntax, header) {
    this.header = header;
    this.displayable = true;
    this.reason = null;
    this.frameErrors = {};
    this._dataSet = dataSet;
    this._syntax = transferSyntax;
    this._cache = new Map();
  }

  /** Why this image cannot be shown, or null if it can (so far). */
  _check() {
    const h = this.header;
    const ds = this._dataSet;
    const pixelData = ds.elements.x7fe00010;
    if (!pixelData) return cannotDisplay("no image in this file", "此文件中没有影像");
    if (!h.rows || !h.columns) return cannotDisplay("no image size in the file", "文件中没有影像尺寸");
    const entry = SYNTAXES[this._syntax];
    if (!entry) return cannotDisplay(`transfer syntax ${this._syntax} is not known`, `未知的传输语法 ${this._syntax}`);
    if (!entry.codec) return cannotDisplay(`${entry.name} cannot be shown in the browser`, `浏览器无法显示 ${entry.name} 格式`);
    if (![1, 8, 16, 32].includes(h.bitsAllocated)) {
      return cannotDisplay(`${h.bitsAllocated} bits per sample`, `每样本 ${h.bitsAllocated} 位`);
    }
    const mono = h.photometric.startsWith("MONOCHROME");
    const colour = ["RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420", "PALETTE COLOR"];
    if (!mono && !colour.includes(h.photometric)) {
      return cannotDisplay(`photometric interpretation ${h.photometric}`, `光度解释 ${h.photometric}`);
    }
    if (h.photometric === "PALETTE COLOR" && !palette(ds)) {
      return cannotDisplay("the colour palette is missing", "缺少调色板");
    }
    if ((h.samplesPerPixel !== 1 && h.samplesPerPixel !== 3) || (mono && h.samplesPerPixel !== 1)) {
      return cannotDisplay(`${h.samplesPerPixel} samples per pixel`, `每像素 ${h.samplesPerPixel} 个样本`);
    }
    return null;
  }

  _geometry() {
    const h = this.header;
    return {
      rows: h.rows, columns: h.columns, samples: h.samplesPerPixel, bitsAllocated: h.bitsAllocated,
      bitsStored: h.bitsStored, signed: h.signed, planar: h.planarConfiguration === 1,
      photometric: h.photometric, slope: h.rescale.slope, intercept: h.rescale.intercept,
      bigEndian: this._syntax === BIG_ENDIAN,
    };
  }

  /**
   * Frame `index` (0-based), decoded; null when it cannot be decoded (then displayable is false
   * and reason says why).
   * @param {number} index
   * @returns {Promise<import("./pixels.js").Frame|null>}
   */
  async frame(index = 0) {
    if (this._cache.has(index)) {
      const f = this._cache.get(index);
      this._cache.delete(index);
      this._cache.set(index, f); // most recently used last
      return f;
    }
    const why = this._check();
    if (why) {
      this.displayable = false;
      this.reason = why;
      return null;
    }
    if (!(index >= 0 && index < this.header.frames)) return null;
    let frame;
    try {
      frame = await this._decode(index);
    } catch (e) {
      const detail = String(e?.message ?? e).slice(0, 200);
      this.frameErrors[index] = detail;
      this.displayable = false;
      // The decoder's own words stay in frameErrors and reason.detail (for support), not in
      // the sentence the doctor reads in both languages.
      this.reason = cannotDisplay(`frame ${index + 1} could not be decoded`, `第 ${index + 1} 帧无法解码`);
      this.reason.detail = detail;
      return null;
    }
    this._cache.set(index, frame);
    if (this._cache.size > CACHE_FRAMES) this._cache.delete(this._cache.keys().next().value);
    return frame;
  }

  async _decode(index) {
    const g = this._geometry();
    const ds = this._dataSet;
    const el = ds.elements.x7fe00010;
    const h = this.header;
    const codec = SYNTAXES[this._syntax].codec;
    let raw;
    // What colour space the decoder's output is in (JPEG and JPEG 2000 codecs undo their own
    // colour transform, so their YBR comes out as RGB).
    let colour = h.photometric === "PALETTE COLOR" ? "PALETTE"
      : h.photometric.startsWith("YBR_FULL") ? "YBR_FULL" : "RGB";
    if (codec === "native" && !el.encapsulatedPixelData) {
      const data = ds.byteArray.subarray(el.dataOffset, el.dataOffset + el.length);
      raw = nativeFrame(data, {
        ...g, ybr422: h.photometric === "YBR_FULL_422",
        swap8: g.bigEndian && h.bitsAllocated === 8 && el.vr === "OW",
      }, index);
    } else {
      if (!el.encapsulatedPixelData) throw new Error("compressed syntax but the pixel data is not encapsulated");
      const bytes = encapsulatedFrame(ds, el, index, h.frames);
      const out = await decodeCompressed(codec, bytes, g);
      raw = out.samples;
      if (out.colour) colour = out.colour;
      if (out.rows !== undefined && (out.rows !== g.rows || out.columns !== g.columns)) {
        throw new Error(`the frame is ${out.columns}×${out.rows}, the header says ${g.columns}×${g.rows}`);
      }
    }
    if (g.samples === 1 && h.photometric !== "PALETTE COLOR") return greyFrame(raw, g);
    return colourFrame(raw, { ...g, colour, palette: colour === "PALETTE" ? palette(ds) : null });
  }
}

/**
 * Parse one instance and decode its first frame (so `displayable` is known at once).
 * Never throws: a file that is not DICOM at all gives displayable false with a reason.
 * @param {ArrayBuffer|Uint8Array} buffer the Part 10 bytes
 * @returns {Promise<DicomImage>}
 */
export async function loadImage(buffer) {
  let parsed;
  try {
    parsed = await parseAsync(buffer);
  } catch (e) {
    const img = new DicomImage({ elements: {}, byteArray: new Uint8Array(0) }, "", emptyHeader());
    img.displayable = false;
    img.reason = cannotDisplay("the file could not be read as DICOM", "无法以 DICOM 格式读取此文件");
    img.error = String(e?.message ?? e);
    return img;
  }
  const { dataSet, transferSyntax, truncated, vrMismatch } = parsed;
  const header = readHeader(dataSet, transferSyntax);
  if (vrMismatch) {
    header.warnings.push(message("The file's header names the wrong DICOM encoding; it was read as written.",
      "文件头标注的 DICOM 编码有误；已按实际编码读取。"));
  }
  if (truncated) {
    header.warnings.push(message("The file ends early; what could be read is shown.", "文件不完整；仅显示可读取的部分。"));
  }
  const img = new DicomImage(dataSet, transferSyntax, header);
  await img.frame(0);
  return img;
}
