// DICOM for the viewer (docs/viewer.md "DICOM"): parsing with dicom-parser, names in every
// character set, DICOMDIR → Tree, pixel decoding for every transfer syntax, the display pipeline.
export { loadImage } from "./image.js";
export { defaultWindow, renderFrame, renderThumbnail, voiFunction } from "./render.js";
export { parseDicomdir } from "./dicomdir.js";
export { decodeText, personName, splitPersonName } from "./names.js";
export { charsetTerms, decodeBytes } from "./charset.js";
export { SYNTAXES, syntaxName } from "./syntaxes.js";
