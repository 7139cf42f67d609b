// Compressed frames → samples. Each codec is loaded (and its WebAssembly compiled) the first
// time a frame needs it, once per page.
import { decodeRle } from "./rle.js";

/**
 * Decode one compressed frame.
 * @param {string} codec a SYNTAXES codec name
 * @param {Uint8Array} bytes the frame's codestream
 * @param {object} g the image's geometry (rows, columns, samples, bitsAllocated, signed...)
 * @returns {Promise<{samples: ArrayLike<number>, colour?: string, rows?: number, columns?: number}>}
 */
export async function decodeCompressed(codec, bytes, g) {
  switch (codec) {
    case "rle":
      return { samples: decodeRle(bytes, g) };
    case "jpeg8":
      return (await import("./jpeg8.js")).decodeJpeg8(bytes, g);
    case "jpeg12":
      // Process 2 (8-bit) is also libjpeg-turbo's; only 12-bit needs the JS decoder.
      if (g.bitsStored <= 8) return (await import("./jpeg8.js")).decodeJpeg8(bytes, g);
      return (await import("./jpeg12.js")).decodeJpeg12(bytes, g);
    case "jpeglossless":
      return (await import("./lossless.js")).decodeJpegLossless(bytes, g);
    case "jpegls":
      return (await import("./jpegls.js")).decodeJpegLs(bytes);
    case "j2k":
      return (await import("./j2k.js")).decodeJ2k(bytes);
    default:
      throw new Error(`no decoder for ${codec}`);
  }
}
