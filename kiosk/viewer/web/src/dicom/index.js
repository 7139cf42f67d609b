// DICOM parsing, decoding and rendering (owner: decode work). See docs/viewer.md.
export {};
