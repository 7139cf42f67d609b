// A report instance's markers (kiosk/dicom/encapsulated.py): Language Code Sequence (0008,0006),
// Document Class Code Sequence (0040,E008) with ORIGINAL / TRANSLATION / CERTIFIED in 99MEDPASS,
// the translator in Verifying Observer Sequence (0040,A073), Document Title (0042,0010), and the
// PDF in Encapsulated Document (0042,0011), cut to Encapsulated Document Length (0042,0015).
import * as dicomParser from "dicom-parser";
import { charsetTerms, decodeText } from "../../dicom/index.js";

export const ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1";
const SCHEME = "99MEDPASS";

function text(ds, tag, terms) {
  const el = ds.elements[tag];
  if (!el || !el.length) return "";
  const raw = new Uint8Array(ds.byteArray.buffer, ds.byteArray.byteOffset + el.dataOffset, el.length);
  return decodeText(raw, terms).text.replace(/\0/g, "").trim();
}

function items(ds, tag) {
  return (ds.elements[tag]?.items ?? []).map((i) => i.dataSet).filter(Boolean);
}

/**
 * Read a report instance.
 * @param {ArrayBuffer} buffer its Part 10 bytes
 * @returns {{language: string, role: string, certified: boolean, translator: string, title: string,
 *   pdf: Uint8Array} | null} null when it is not a report with the agreed markers
 */
export function readReport(buffer) {
  let ds;
  try {
    ds = dicomParser.parseDicom(new Uint8Array(buffer));
  } catch {
    return null;
  }
  const terms = charsetTerms(ds.string("x00080005") || null);
  if ((ds.string("x00080016") ?? "").replace(/\0/g, "").trim() !== ENCAPSULATED_PDF) return null;
  const language = items(ds, "x00080006")
    .map((i) => (i.string("x00080100") ?? "").trim().toLowerCase().replace("_", "-").split("-")[0])
    .find((l) => l === "en" || l === "zh");
  const codes = new Set(items(ds, "x0040e008")
    .filter((i) => (i.string("x00080102") ?? "").trim().toUpperCase() === SCHEME)
    .map((i) => (i.string("x00080100") ?? "").trim().toUpperCase()));
  const role = codes.has("TRANSLATION") ? "translation" : codes.has("ORIGINAL") ? "original" : null;
  const doc = ds.elements.x00420011;
  if (!language || !role || !doc) return null;
  let translator = "";
  for (const obs of items(ds, "x0040a073")) {
    translator = text(obs, "x0040a075", terms).replace(/\^/g, " ").trim();
    if (translator) break;
  }
  const declared = ds.elements.x00420015 ? ds.uint32("x00420015") : 0;
  const length = declared > 0 && declared <= doc.length ? declared : doc.length;
  const pdf = new Uint8Array(ds.byteArray.buffer, ds.byteArray.byteOffset + doc.dataOffset, length).slice();
  return { language, role, certified: codes.has("CERTIFIED"), translator, title: text(ds, "x00420010", terms), pdf };
}
