// Transfer syntaxes: their names (for the header) and how their pixel data is decoded.
// `codec` names a decoder in decode.js; a syntax without one cannot be displayed (the file is
// still on the stick: only the picture is missing).

export const SYNTAXES = {
  "1.2.840.10008.1.2": { name: "Implicit VR Little Endian", codec: "native" },
  "1.2.840.10008.1.2.1": { name: "Explicit VR Little Endian", codec: "native" },
  "1.2.840.10008.1.2.1.99": { name: "Deflated Explicit VR Little Endian", codec: "native" },
  "1.2.840.10008.1.2.2": { name: "Explicit VR Big Endian", codec: "native" },
  "1.2.840.10008.1.2.5": { name: "RLE Lossless", codec: "rle" },
  "1.2.840.10008.1.2.4.50": { name: "JPEG Baseline (Process 1)", codec: "jpeg8" },
  "1.2.840.10008.1.2.4.51": { name: "JPEG Extended (Process 2 & 4)", codec: "jpeg12" },
  "1.2.840.10008.1.2.4.57": { name: "JPEG Lossless, Non-Hierarchical (Process 14)", codec: "jpeglossless" },
  "1.2.840.10008.1.2.4.70": { name: "JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [SV1])", codec: "jpeglossless" },
  "1.2.840.10008.1.2.4.80": { name: "JPEG-LS Lossless", codec: "jpegls" },
  "1.2.840.10008.1.2.4.81": { name: "JPEG-LS Near-Lossless", codec: "jpegls" },
  "1.2.840.10008.1.2.4.90": { name: "JPEG 2000 (Lossless Only)", codec: "j2k" },
  "1.2.840.10008.1.2.4.91": { name: "JPEG 2000", codec: "j2k" },
  // Known but not decoded here: shown as "cannot display, still on the stick".
  "1.2.840.10008.1.2.4.52": { name: "JPEG Extended (Process 3 & 5) (retired)", codec: null },
  "1.2.840.10008.1.2.4.53": { name: "JPEG Spectral Selection (retired)", codec: null },
  "1.2.840.10008.1.2.4.55": { name: "JPEG Full Progression (retired)", codec: null },
  "1.2.840.10008.1.2.4.92": { name: "JPEG 2000 Part 2 Multi-component (Lossless Only)", codec: null },
  "1.2.840.10008.1.2.4.93": { name: "JPEG 2000 Part 2 Multi-component", codec: null },
  "1.2.840.10008.1.2.4.94": { name: "JPIP Referenced", codec: null },
  "1.2.840.10008.1.2.4.95": { name: "JPIP Referenced Deflate", codec: null },
  "1.2.840.10008.1.2.4.100": { name: "MPEG2 Main Profile / Main Level", codec: null },
  "1.2.840.10008.1.2.4.101": { name: "MPEG2 Main Profile / High Level", codec: null },
  "1.2.840.10008.1.2.4.102": { name: "MPEG-4 AVC/H.264 High Profile / Level 4.1", codec: null },
  "1.2.840.10008.1.2.4.103": { name: "MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1", codec: null },
  "1.2.840.10008.1.2.4.104": { name: "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video", codec: null },
  "1.2.840.10008.1.2.4.105": { name: "MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video", codec: null },
  "1.2.840.10008.1.2.4.106": { name: "MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2", codec: null },
  "1.2.840.10008.1.2.4.107": { name: "HEVC/H.265 Main Profile / Level 5.1", codec: null },
  "1.2.840.10008.1.2.4.108": { name: "HEVC/H.265 Main 10 Profile / Level 5.1", codec: null },
  "1.2.840.10008.1.2.4.110": { name: "JPEG XL Lossless", codec: null },
  "1.2.840.10008.1.2.4.111": { name: "JPEG XL JPEG Recompression", codec: null },
  "1.2.840.10008.1.2.4.112": { name: "JPEG XL", codec: null },
  "1.2.840.10008.1.2.4.201": { name: "High-Throughput JPEG 2000 (Lossless Only)", codec: null },
  "1.2.840.10008.1.2.4.202": { name: "High-Throughput JPEG 2000 with RPCL Options (Lossless Only)", codec: null },
  "1.2.840.10008.1.2.4.203": { name: "High-Throughput JPEG 2000", codec: null },
};

export const DEFLATED = "1.2.840.10008.1.2.1.99";
export const BIG_ENDIAN = "1.2.840.10008.1.2.2";
export const IMPLICIT = "1.2.840.10008.1.2";
export const EXPLICIT = "1.2.840.10008.1.2.1";

/** The syntax's name, or the UID itself when unknown. */
export function syntaxName(uid) {
  return SYNTAXES[uid]?.name ?? uid;
}
