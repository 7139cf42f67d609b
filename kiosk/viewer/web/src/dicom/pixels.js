// Stored samples → a Frame: modality values for grey images (Bits Stored masking and sign,
// then the Modality LUT's rescale, PS3.3 C.11.1), 8-bit RGB for colour ones (YBR_FULL and
// PALETTE COLOR converted as pydicom converts them).

/**
 * @typedef {object} Frame
 * @property {number} width
 * @property {number} height
 * @property {1|3} samples
 * @property {Float32Array|Float64Array|null} values modality values (1 sample)
 * @property {Uint8ClampedArray|null} rgb 3 samples per pixel
 * @property {number} min
 * @property {number} max
 * @property {(x: number, y: number) => number|number[]|null} valueAt
 */

/** Keep the low `bits` of each sample, sign-extended when signed (PS3.5 8.1.1, C.7.6.3.1.2). */
function storedValue(bits, signed) {
  if (bits >= 32) return signed ? (v) => v | 0 : (v) => v >>> 0;
  const mask = 2 ** bits - 1;
  const sign = 2 ** (bits - 1);
  if (signed) return (v) => { const u = v & mask; return u >= sign ? u - 2 ** bits : u; };
  return (v) => v & mask;
}

/**
 * Grey frame from stored samples.
 * @param {ArrayLike<number>} raw
 * @param {object} g geometry: rows, columns, bitsStored, signed, slope, intercept
 * @returns {Frame}
 */
export function greyFrame(raw, g) {
  const n = g.rows * g.columns;
  if (raw.length < n) throw new Error("the decoded frame is smaller than Rows × Columns");
  const values = g.bitsStored > 16 ? new Float64Array(n) : new Float32Array(n);
  const stored = storedValue(g.bitsStored, g.signed);
  const { slope, intercept } = g;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < n; i++) {
    const v = stored(raw[i]) * slope + intercept;
    values[i] = v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const frame = { width: g.columns, height: g.rows, samples: 1, values, rgb: null, min, max };
  frame.valueAt = (x, y) => at(frame, x, y, (i) => values[i]);
  return frame;
}

function at(frame, x, y, get) {
  const xi = Math.floor(x);
  const yi = Math.floor(y);
  if (!(xi >= 0 && yi >= 0 && xi < frame.width && yi < frame.height)) return null;
  return get(yi * frame.width + xi);
}

/** YCbCr (full range, PS3.3 C.7.6.3.1.2) → RGB, as pydicom's convert_color_space. */
function ybrToRgb(y, cb, cr, out, o) {
  out[o] = y + 1.402 * (cr - 128);
  out[o + 1] = y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128);
  out[o + 2] = y + 1.772 * (cb - 128);
}

/**
 * Colour frame from stored samples (pixel-interleaved).
 * @param {ArrayLike<number>} raw
 * @param {object} g rows, columns, bitsStored, colour: "RGB"|"YBR_FULL"|"PALETTE", palette
 * @returns {Frame}
 */
export function colourFrame(raw, g) {
  const n = g.rows * g.columns;
  const rgb = new Uint8ClampedArray(n * 3);
  if (g.colour === "PALETTE") {
    const stored = storedValue(g.bitsStored, false);
    const { red, green, blue } = g.palette;
    for (let i = 0; i < n; i++) {
      const v = stored(raw[i]);
      rgb[i * 3] = red(v);
      rgb[i * 3 + 1] = green(v);
      rgb[i * 3 + 2] = blue(v);
    }
  } else {
    if (raw.length < n * 3) throw new Error("the decoded frame is smaller than Rows × Columns × 3");
    // More than 8 bits per sample: the top 8 of the stored bits.
    const shift = Math.max(0, g.bitsStored - 8);
    const scale = 2 ** -shift;
    if (g.colour === "YBR_FULL") {
      for (let i = 0; i < n * 3; i += 3) {
        ybrToRgb(Math.floor(raw[i] * scale), Math.floor(raw[i + 1] * scale), Math.floor(raw[i + 2] * scale), rgb, i);
      }
    } else if (shift === 0) {
      rgb.set(raw.length === n * 3 ? raw : raw.subarray(0, n * 3));
    } else {
      for (let i = 0; i < n * 3; i++) rgb[i] = Math.floor(raw[i] * scale);
    }
  }
  const frame = { width: g.columns, height: g.rows, samples: 3, values: null, rgb, min: 0, max: 255 };
  frame.valueAt = (x, y) => at(frame, x, y, (i) => [rgb[i * 3], rgb[i * 3 + 1], rgb[i * 3 + 2]]);
  return frame;
}

/**
 * A PALETTE COLOR lookup (PS3.3 C.7.6.3.1.5) from its descriptor and data, scaled to 8 bits.
 * @param {number[]} descriptor [entries (0 = 65536), first mapped value, bits per entry]
 * @param {Uint16Array|Uint8Array} data
 */
export function paletteChannel(descriptor, data) {
  const entries = descriptor[0] === 0 ? 65536 : descriptor[0];
  const first = descriptor[1];
  const bits = descriptor[2];
  const last = Math.min(entries, data.length) - 1;
  // 16-bit entries: the high byte (what pydicom's apply_color_lut gives, scaled to 8 bits).
  const shift = bits > 8 ? 8 : 0;
  return (v) => {
    const i = Math.max(0, Math.min(last, v - first));
    return data[i] >> shift;
  };
}
