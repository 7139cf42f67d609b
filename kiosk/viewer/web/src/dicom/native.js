// Native (uncompressed) pixel data: one frame's samples out of the Pixel Data element, in the
// file's byte order, 1, 8, 16 or 32 bits allocated, pixel- or plane-interleaved.

/**
 * The stored samples of frame `index`, pixel-interleaved, as an integer typed array.
 * @param {Uint8Array} data the whole Pixel Data value
 * @param {object} g {rows, columns, samples, bitsAllocated, signed, planar, bigEndian, ybr422, swap8}
 * @param {number} index
 */
export function nativeFrame(data, g, index) {
  const pixels = g.rows * g.columns;
  if (g.ybr422) return ybr422Frame(data, g, index);
  const count = pixels * g.samples;
  let out;
  if (g.bitsAllocated === 1) {
    // Bits are packed across frames, least significant bit first (PS3.5 8.1.1).
    out = new Uint8Array(count);
    const first = index * count;
    if ((first + count + 7) >> 3 > data.length) throw new Error("the pixel data is shorter than its frames");
    for (let i = 0; i < count; i++) {
      const bit = first + i;
      out[i] = (data[bit >> 3] >> (bit & 7)) & 1;
    }
    return out;
  }
  const bytes = g.bitsAllocated >> 3;
  const start = index * count * bytes;
  if (start + count * bytes > data.length) throw new Error("the pixel data is shorter than its frames");
  const frame = data.subarray(start, start + count * bytes);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const little = !g.bigEndian;
  if (bytes === 1) {
    // 8-bit data stored as OW under big endian comes byte-swapped in 16-bit words of the whole
    // value (an odd frame's last byte pairs with the next frame's first, or the padding).
    const src = g.swap8 ? swappedPairs(data, start, count) : frame;
    out = g.signed ? new Int8Array(src.buffer, src.byteOffset, count).slice() : src.slice();
  } else if (bytes === 2) {
    out = g.signed ? new Int16Array(count) : new Uint16Array(count);
    if (g.signed) for (let i = 0; i < count; i++) out[i] = view.getInt16(i * 2, little);
    else for (let i = 0; i < count; i++) out[i] = view.getUint16(i * 2, little);
  } else if (bytes === 4) {
    out = g.signed ? new Int32Array(count) : new Uint32Array(count);
    if (g.signed) for (let i = 0; i < count; i++) out[i] = view.getInt32(i * 4, little);
    else for (let i = 0; i < count; i++) out[i] = view.getUint32(i * 4, little);
  } else {
    throw new Error(`${g.bitsAllocated} bits allocated`);
  }
  return g.samples > 1 && g.planar ? interleave(out, pixels, g.samples) : out;
}

/** Bytes start..start+count of `data` read as little-endian words stored big endian. */
function swappedPairs(data, start, count) {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = data[(start + i) ^ 1] ?? 0;
  return out;
}

/** Planes (RRR...GGG...BBB) → pixels (RGBRGB...). */
export function interleave(planes, pixels, samples) {
  const out = new planes.constructor(pixels * samples);
  for (let s = 0; s < samples; s++) {
    const base = s * pixels;
    for (let p = 0; p < pixels; p++) out[p * samples + s] = planes[base + p];
  }
  return out;
}

/** Native YBR_FULL_422: Y0 Y1 Cb Cr for each pair of pixels → Y Cb Cr per pixel. */
function ybr422Frame(data, g, index) {
  const pixels = g.rows * g.columns;
  const size = pixels * 2;
  const start = index * size;
  if (start + size > data.length) throw new Error("the pixel data is shorter than its frames");
  const out = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p += 2) {
    const i = start + p * 2;
    const cb = data[i + 2];
    const cr = data[i + 3];
    out.set([data[i], cb, cr], p * 3);
    if (p + 1 < pixels) out.set([data[i + 1], cb, cr], (p + 1) * 3);
  }
  return out;
}
