// JPEG lossless, process 14 (1.2.840.10008.1.2.4.57) and its selection value 1 (.70), with
// jpeg-lossless-decoder-js (pure JS, so nothing to start up).
import { Decoder } from "jpeg-lossless-decoder-js";

/**
 * @param {Uint8Array} bytes
 * @param {{bitsAllocated: number}} g
 */
export function decodeJpegLossless(bytes, g) {
  const decoder = new Decoder();
  const out = decoder.decode(bytes.buffer, bytes.byteOffset, bytes.length, g.bitsAllocated <= 8 ? 1 : 2);
  const samples = g.bitsAllocated <= 8 ? new Uint8Array(out.buffer, out.byteOffset, out.byteLength)
    : new Uint16Array(out.buffer, out.byteOffset, out.byteLength >> 1);
  return { samples, rows: decoder.frame?.dimY, columns: decoder.frame?.dimX };
}
