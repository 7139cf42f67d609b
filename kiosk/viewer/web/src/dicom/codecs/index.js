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
    default:
      throw new Error(`no decoder for ${codec} yet`);
  }
}
