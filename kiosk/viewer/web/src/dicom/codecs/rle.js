// RLE Lossless (PS3.5 Annex G): a 64-byte header of segment offsets, then one PackBits
// segment per byte plane: for each sample, its most significant byte first.

/** One PackBits segment into `out` (length = pixels); returns the bytes written. */
function unpackSegment(src, start, end, out) {
  let i = start;
  let o = 0;
  const n = out.length;
  while (i < end && o < n) {
    const h = src[i++];
    if (h < 128) {
      // h + 1 literal bytes
      const len = Math.min(h + 1, n - o, end - i);
      out.set(src.subarray(i, i + len), o);
      o += len;
      i += h + 1;
    } else if (h > 128) {
      // the next byte, 257 - h times
      const len = Math.min(257 - h, n - o);
      out.fill(src[i++], o, o + len);
      o += len;
    } // 128: no operation
  }
  return o;
}

/**
 * Decode one RLE frame.
 * @param {Uint8Array} data the frame's bytes (its fragments joined)
 * @param {{rows: number, columns: number, samples: number, bitsAllocated: number, signed: boolean}} g
 * @returns {Uint8Array|Uint16Array|Int16Array|Uint32Array|Int32Array} pixel-interleaved samples
 */
export function decodeRle(data, g) {
  if (data.length < 64) throw new Error("RLE header missing");
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const segments = view.getUint32(0, true);
  const bytes = g.bitsAllocated >> 3;
  if (segments !== g.samples * bytes || segments > 15) {
    throw new Error(`RLE frame has ${segments} segments, expected ${g.samples * bytes}`);
  }
  const offsets = [];
  for (let s = 0; s < segments; s++) offsets.push(view.getUint32(4 + s * 4, true));
  const pixels = g.rows * g.columns;
  const Type = bytes === 1 ? (g.signed ? Int8Array : Uint8Array)
    : bytes === 2 ? (g.signed ? Int16Array : Uint16Array) : (g.signed ? Int32Array : Uint32Array);
  const out = new Type(pixels * g.samples);
  const plane = new Uint8Array(pixels);
  for (let s = 0; s < segments; s++) {
    const start = offsets[s];
    const end = s + 1 < segments ? offsets[s + 1] : data.length;
    if (start < 64 || start > data.length || end < start) throw new Error("RLE segment offsets are damaged");
    plane.fill(0);
    const got = unpackSegment(data, start, Math.min(end, data.length), plane);
    if (got < pixels) throw new Error("RLE segment ends early");
    const sample = Math.floor(s / bytes);
    const shift = 8 * (bytes - 1 - (s % bytes)); // most significant byte first
    for (let p = 0; p < pixels; p++) out[p * g.samples + sample] |= plane[p] << shift;
  }
  return out;
}
