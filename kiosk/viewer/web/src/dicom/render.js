// Frame → ImageData at native resolution (the UI scales): the VOI LUT function of PS3.3
// C.11.2.1.2 on modality values (LINEAR, LINEAR_EXACT, SIGMOID), MONOCHROME1 inverted so that
// low values are white, colour passed through.

/**
 * The window to show first: the file's first Window Center/Width, else the frame's range.
 * @param {{header: {windows: {center: number, width: number}[]}}} img
 * @param {{min: number, max: number, samples: number}} frame
 * @returns {{center: number, width: number}}
 */
export function defaultWindow(img, frame) {
  const w = img.header.windows.find((v) => Number.isFinite(v.center) && v.width > 0);
  if (w) return { center: w.center, width: w.width };
  return rangeWindow(frame);
}

/** The frame's min..max as a window (used when the file has none). */
export function rangeWindow(frame) {
  if (frame.samples !== 1 || !Number.isFinite(frame.min)) return { center: 127.5, width: 256 };
  return { center: (frame.min + frame.max) / 2, width: Math.max(1, frame.max - frame.min) };
}

/**
 * A function from modality value to 0..255 for the VOI LUT function named by (0028,1056).
 * @param {string} fn "LINEAR" (default), "LINEAR_EXACT" or "SIGMOID"
 * @param {number} center
 * @param {number} width
 */
export function voiFunction(fn, center, width) {
  const c = center;
  if (fn === "SIGMOID") {
    const w = width > 0 ? width : 1;
    return (x) => 255 / (1 + Math.exp(-4 * (x - c) / w));
  }
  if (fn === "LINEAR_EXACT") {
    const w = width > 0 ? width : 1;
    const lo = c - w / 2;
    const hi = c + w / 2;
    return (x) => (x <= lo ? 0 : x > hi ? 255 : ((x - c) / w + 0.5) * 255);
  }
  // LINEAR: width >= 1 (C.11.2.1.2.1).
  const w = Math.max(1, width);
  const lo = c - 0.5 - (w - 1) / 2;
  const hi = c - 0.5 + (w - 1) / 2;
  if (w === 1) return (x) => (x <= lo ? 0 : 255);
  return (x) => (x <= lo ? 0 : x > hi ? 255 : ((x - (c - 0.5)) / (w - 1) + 0.5) * 255);
}

/**
 * Render a frame with a window as 8-bit RGBA.
 * @param {{header: {photometric: string, voiFunction: string}}} img
 * @param {import("./pixels.js").Frame} frame
 * @param {{center: number, width: number}} [window] default: defaultWindow(img, frame)
 * @returns {ImageData}
 */
export function renderFrame(img, frame, window) {
  const n = frame.width * frame.height;
  const out = new Uint8ClampedArray(n * 4);
  if (frame.samples === 3) {
    const rgb = frame.rgb;
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      out[i * 4] = rgb[j];
      out[i * 4 + 1] = rgb[j + 1];
      out[i * 4 + 2] = rgb[j + 2];
      out[i * 4 + 3] = 255;
    }
    return new ImageData(out, frame.width, frame.height);
  }
  const { center, width } = window ?? defaultWindow(img, frame);
  const voi = voiFunction(img.header.voiFunction, center, width);
  const invert = img.header.photometric === "MONOCHROME1";
  const values = frame.values;
  for (let i = 0; i < n; i++) {
    let y = voi(values[i]);
    if (invert) y = 255 - y;
    out[i * 4] = y;
    out[i * 4 + 1] = y;
    out[i * 4 + 2] = y;
    out[i * 4 + 3] = 255;
  }
  return new ImageData(out, frame.width, frame.height);
}

/**
 * A small picture of a frame for the study browser: the frame at its default window, shrunk so
 * that its longer side is at most `size` pixels (aspect kept, never enlarged). Each thumbnail
 * pixel is the mean of the block of frame pixels it covers (columns floor(x·W/w) up to
 * floor((x+1)·W/w), rows likewise), so thin lines and noise average out instead of aliasing.
 * @param {{header: {photometric: string, voiFunction: string, windows: object[]}}} img
 * @param {import("./pixels.js").Frame|null} frame from `await img.frame(i)`; null gives null
 * @param {number} size the longest side wanted, in pixels (≥ 1)
 * @returns {ImageData|null}
 */
export function renderThumbnail(img, frame, size) {
  if (!frame) return null;
  const full = renderFrame(img, frame, defaultWindow(img, frame));
  const W = frame.width;
  const H = frame.height;
  const scale = Math.min(1, Math.max(1, Math.floor(size)) / Math.max(W, H));
  if (scale === 1) return full;
  const w = Math.max(1, Math.round(W * scale));
  const h = Math.max(1, Math.round(H * scale));
  const src = full.data;
  const out = new Uint8ClampedArray(w * h * 4);
  const x0 = Array.from({ length: w + 1 }, (_, x) => Math.floor((x * W) / w));
  const sums = new Float64Array(w * 3);
  for (let y = 0; y < h; y++) {
    const r0 = Math.floor((y * H) / h);
    const r1 = Math.floor(((y + 1) * H) / h);
    sums.fill(0);
    for (let r = r0; r < r1; r++) {
      const row = r * W * 4;
      for (let x = 0; x < w; x++) {
        for (let c = x0[x]; c < x0[x + 1]; c++) {
          const i = row + c * 4;
          sums[x * 3] += src[i];
          sums[x * 3 + 1] += src[i + 1];
          sums[x * 3 + 2] += src[i + 2];
        }
      }
    }
    for (let x = 0; x < w; x++) {
      const n = (r1 - r0) * (x0[x + 1] - x0[x]);
      const o = (y * w + x) * 4;
      out[o] = sums[x * 3] / n;
      out[o + 1] = sums[x * 3 + 1] / n;
      out[o + 2] = sums[x * 3 + 2] / n;
      out[o + 3] = 255;
    }
  }
  return new ImageData(out, w, h);
}
