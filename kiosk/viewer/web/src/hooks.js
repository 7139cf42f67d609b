// The page's libraries on `globalThis.medpassLib`, so the browser tests can drive each part
// (decoding, the zip reader, the manifest check) without the UI. Code only: no patient data.
import * as dicom from "./dicom/index.js";
import * as manifest from "./manifest/index.js";
import * as zip from "./source/zip/index.js";

globalThis.medpassLib = { dicom, manifest, zip };
