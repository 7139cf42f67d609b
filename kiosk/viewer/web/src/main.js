// The opener page's entry point: the libraries for tests, then the viewer on the stick's zip.
import "./hooks.js";
import { MemoryCustody, MemorySource } from "./source/memory/index.js";
import { language, setLanguage } from "./i18n.js";
import { startApp } from "./ui/app.js";

// The zip reader as hooks.js put it on medpassLib (one import of it in the bundle).
const zip = globalThis.medpassLib.zip;
const app = startApp(document.getElementById("app"), {
  describeFiles: zip.describeFiles, openPackage: zip.openPackage,
});

// For the browser tests and the gateway page: the running app and an in-memory Source.
globalThis.medpassLib = { ...globalThis.medpassLib, ui: { app, MemorySource, MemoryCustody, language, setLanguage } };
