// JPEG baseline/extended 8-bit (1.2.840.10008.1.2.4.50, 8-bit .51) with libjpeg-turbo. Like
// other viewers and pydicom's decoders, libjpeg converts YCbCr to RGB, so YBR comes out RGB.
import factory from "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs";
import wasmBinary from "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm";
import { lazyCodec, runDecoder } from "./wasm.js";

const codec = lazyCodec(factory, wasmBinary, "JPEGDecoder");

// An Adobe APP14 segment saying "transform 0": the three components are RGB, not YCbCr.
const ADOBE_RGB = Uint8Array.of(0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64,
  0x00, 0x00, 0x00, 0x00, 0x00);

/**
 * Whether libjpeg would take this 3-component codestream for YCbCr only by guessing: no JFIF
 * or Adobe marker and component ids other than "R", "G", "B" (libjpeg's jdapimin.c and
 * jdmarker.c rules).
 */
function guessedYcc(bytes) {
  let i = 2;
  while (i + 4 <= bytes.length && bytes[i] === 0xff) {
    const marker = bytes[i + 1];
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    const at = (s) => String.fromCharCode(...bytes.subarray(i + 4, i + 4 + s.length)) === s;
    // libjpeg ignores markers shorter than their fields (a 10-byte "Adobe" segment, seen in
    // the wild, counts as none).
    if ((marker === 0xe0 && length >= 16 && at("JFIF\0")) || (marker === 0xee && length >= 14 && at("Adobe"))) {
      return false;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (bytes[i + 9] !== 3) return false;
      const ids = [bytes[i + 10], bytes[i + 13], bytes[i + 16]];
      return !(ids[0] === 0x52 && ids[1] === 0x47 && ids[2] === 0x42);
    }
    if (marker === 0xda) return false;
    i += 2 + length;
  }
  return false;
}

/**
 * @param {Uint8Array} bytes
 * @param {{photometric?: string}} [g] the image's geometry: a DICOM RGB JPEG whose codestream
 *   does not say what it holds is RGB (PS3.5 8.2.1), as pydicom reads it, so libjpeg is told.
 */
export async function decodeJpeg8(bytes, g = {}) {
  const loaded = await codec.get();
  let stream = bytes;
  if (g.photometric === "RGB" && guessedYcc(bytes)) {
    stream = new Uint8Array(bytes.length + ADOBE_RGB.length);
    stream.set(bytes.subarray(0, 2));
    stream.set(ADOBE_RGB, 2);
    stream.set(bytes.subarray(2), 2 + ADOBE_RGB.length);
  }
  return runDecoder(loaded, stream);
}
