// Window presets: the file's own VOI windows first (what the modality chose), then the usual
// CT windows when the values are Hounsfield units.
import { t } from "../i18n.js";

export const CT_PRESETS = [
  { key: "presetSoft", center: 40, width: 400 },
  { key: "presetLung", center: -600, width: 1500 },
  { key: "presetBone", center: 400, width: 1800 },
  { key: "presetBrain", center: 40, width: 80 },
];

/**
 * The presets for an image, each {label, center, width, source: "file"|"ct"}.
 * @param {{header: {windows: {center: number, width: number, explanation: string}[],
 *   modality: string, rescale: {type: string}}}|null} img
 */
export function presetsFor(img) {
  if (!img?.header) return [];
  const out = [];
  const seen = new Set();
  img.header.windows.forEach((w, i) => {
    if (!Number.isFinite(w.center) || !(w.width > 0)) return;
    const id = `${w.center}/${w.width}`;
    if (seen.has(id)) return;
    seen.add(id);
    const label = w.explanation ? t("presetFile", { name: w.explanation }) : t("presetFileN", { n: i + 1 });
    out.push({ label, center: w.center, width: w.width, source: "file" });
  });
  const hu = img.header.rescale?.type === "HU" || img.header.modality === "CT";
  if (hu) {
    for (const p of CT_PRESETS) {
      out.push({ label: `${t(p.key)} ${p.width}/${p.center}`, center: p.center, width: p.width, source: "ct" });
    }
  }
  return out;
}
