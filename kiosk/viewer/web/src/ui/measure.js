// Lengths and pixel values as the doctor reads them: millimetres from Pixel Spacing (or
// "pixels" when the file gives none), HU for CT.
import { t } from "../i18n.js";

/**
 * The length between two image points (pixel coordinates, x along columns, y along rows).
 * Pixel Spacing is [row spacing, column spacing] in mm (PS3.3 10.7.1.3): a step along x is a
 * column step (spacing[1]), along y a row step (spacing[0]).
 * @param {{x: number, y: number}} a
 * @param {{x: number, y: number}} b
 * @param {{pixelSpacing: number[]|null}} [header]
 * @returns {{value: number, unit: "mm"|"px"}}
 */
export function lengthOf(a, b, header) {
  const s = header?.pixelSpacing;
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  if (s && s[0] > 0 && s[1] > 0) return { value: Math.hypot(dx * s[1], dy * s[0]), unit: "mm" };
  return { value: Math.hypot(dx, dy), unit: "px" };
}

/**
 * "12.3 mm", "12.3 mm (at the detector)" for Imager Pixel Spacing, "45.0 pixels (…)" without.
 * @param {{value: number, unit: string}} length
 * @param {{pixelSpacingSource?: string|null}} header
 * @param {boolean} [short] for the label drawn on the image
 */
export function formatLength(length, header, short = false) {
  const value = length.value.toFixed(1);
  if (length.unit === "px") return short ? `${value} px` : t("lengthPx", { value });
  if (short) return `${value} mm`;
  return t(header?.pixelSpacingSource === "ImagerPixelSpacing" ? "lengthMmDetector" : "lengthMm", { value });
}

/**
 * The value under the pointer: "-1000 HU at (12, 40)", "Value 312 at …", "RGB 10, 20, 30 at …".
 * @param {number|number[]} v frame.valueAt's answer
 * @param {{modality: string, rescale: {type: string}}} header
 * @param {{x: number, y: number}} p image point
 */
export function formatValue(v, header, p) {
  const at = { x: Math.floor(p.x), y: Math.floor(p.y) };
  if (Array.isArray(v)) return t("valueRgb", { value: v.join(", "), ...at });
  const value = Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) >= 100 ? 0 : 2);
  const hu = header?.rescale?.type === "HU" || header?.modality === "CT";
  return t(hu ? "valueHu" : "valuePlain", { value, ...at });
}
