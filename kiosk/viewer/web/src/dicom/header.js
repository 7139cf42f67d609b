// The header the viewer shows and the pixel module's geometry, from a parsed data set.
import { charsetTerms } from "./charset.js";
import { decodeText, personName } from "./names.js";
import { asciiString, elementBytes, numbers, uint16 } from "./parse.js";
import { syntaxName } from "./syntaxes.js";

function text(dataSet, tag, terms, warnings, what) {
  const raw = elementBytes(dataSet, tag);
  if (!raw) return "";
  const { text: t, warning } = decodeText(raw, terms, { what });
  if (warning) warnings.push(warning);
  return t;
}

function firstNumber(dataSet, tag) {
  const n = numbers(dataSet, tag);
  return n.length ? n[0] : null;
}

function windows(dataSet, terms) {
  const centers = numbers(dataSet, "x00281050");
  const widths = numbers(dataSet, "x00281051");
  const raw = elementBytes(dataSet, "x00281055");
  const explanations = raw ? decodeText(raw, terms).text.split("\\").map((s) => s.trim()) : [];
  const out = [];
  for (let i = 0; i < Math.min(centers.length, widths.length); i++) {
    out.push({ center: centers[i], width: widths[i], explanation: explanations[i] ?? "" });
  }
  return out;
}

/**
 * The header of docs/viewer.md (names decoded, warnings for guessed character sets).
 * @param {any} dataSet dicom-parser DataSet
 * @param {string} transferSyntax
 */
export function readHeader(dataSet, transferSyntax) {
  const terms = charsetTerms(asciiString(dataSet, "x00080005") || null);
  const warnings = [];
  const { name, warning } = personName(elementBytes(dataSet, "x00100010"), terms);
  if (warning) warnings.push(warning);
  const { stored, ...patientName } = name;
  const spacing = numbers(dataSet, "x00280030");
  const imager = numbers(dataSet, "x00181164");
  const slope = firstNumber(dataSet, "x00281053");
  const intercept = firstNumber(dataSet, "x00281052");
  const frames = Math.max(1, Math.trunc(firstNumber(dataSet, "x00280008") ?? 1) || 1);
  const frameTime = firstNumber(dataSet, "x00181063");
  const cineRate = firstNumber(dataSet, "x00180040");
  const header = {
    patientName: { ...patientName, stored },
    patientId: text(dataSet, "x00100020", terms, warnings, "Patient ID"),
    patientBirthDate: asciiString(dataSet, "x00100030"),
    patientSex: asciiString(dataSet, "x00100040"),
    studyDate: asciiString(dataSet, "x00080020"),
    studyTime: asciiString(dataSet, "x00080030"),
    studyDescription: text(dataSet, "x00081030", terms, warnings, "Study description"),
    seriesDescription: text(dataSet, "x0008103e", terms, warnings, "Series description"),
    institutionName: text(dataSet, "x00080080", terms, warnings, "Institution name"),
    seriesNumber: firstNumber(dataSet, "x00200011"),
    instanceNumber: firstNumber(dataSet, "x00200013"),
    modality: asciiString(dataSet, "x00080060"),
    sopInstanceUid: asciiString(dataSet, "x00080018"),
    sopClassUid: asciiString(dataSet, "x00080016"),
    rows: uint16(dataSet, "x00280010", 0),
    columns: uint16(dataSet, "x00280011", 0),
    frames,
    pixelSpacing: spacing.length >= 2 ? [spacing[0], spacing[1]]
      : imager.length >= 2 ? [imager[0], imager[1]] : null,
    pixelSpacingSource: spacing.length >= 2 ? "PixelSpacing" : imager.length >= 2 ? "ImagerPixelSpacing" : null,
    photometric: asciiString(dataSet, "x00280004").toUpperCase() || "MONOCHROME2",
    samplesPerPixel: uint16(dataSet, "x00280002", 1),
    bitsAllocated: uint16(dataSet, "x00280100", 0),
    bitsStored: uint16(dataSet, "x00280101", 0),
    highBit: uint16(dataSet, "x00280102", 0),
    signed: uint16(dataSet, "x00280103", 0) === 1,
    planarConfiguration: uint16(dataSet, "x00280006", 0),
    windows: windows(dataSet, terms),
    rescale: { slope: slope === null || slope === 0 ? 1 : slope, intercept: intercept ?? 0,
      type: asciiString(dataSet, "x00281054") || (asciiString(dataSet, "x00080060") === "CT" ? "HU" : "") },
    voiFunction: asciiString(dataSet, "x00281056").toUpperCase() || "LINEAR",
    transferSyntax,
    transferSyntaxName: syntaxName(transferSyntax),
    frameTimeMs: frameTime ?? (cineRate ? 1000 / cineRate : null),
    specificCharacterSet: terms,
    warnings: dedupe(warnings),
  };
  if (!header.bitsStored) header.bitsStored = header.bitsAllocated;
  return header;
}

function dedupe(list) {
  const seen = new Set();
  return list.filter((m) => !seen.has(m.en) && seen.add(m.en));
}
