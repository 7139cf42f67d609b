// Build the stick's opener page: one self-contained OPEN_IMAGES.html (scripts, styles, workers and
// WebAssembly inlined, since a file:// page can fetch none of its siblings) and LICENSES.TXT
// listing every npm package whose code went into it.
//
//   node build.mjs            -> ../dist/OPEN_IMAGES.html, ../dist/SHARE.html, ../dist/LICENSES.TXT
//
// SHARE.html is the phone page the office gateway serves at /s/{id} (src/share.js, share.html,
// style.css + share.css): the same viewer on DICOMweb, self-contained in the same way.
//
// Imports the sources can use besides ordinary ones:
//   import code from "worker:./path.js"   the file bundled on its own, as a string (blob: worker)
//   import bytes from "wasm:name"         build/name.wasm (compiled from src/wasm/name.ts by
//                                          AssemblyScript) as a Uint8Array
//   import bytes from "./file.wasm"       any .wasm file as a Uint8Array
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, "src");
const out = path.join(here, "build");
const dist = path.join(here, "..", "dist");
const PAGE_LIMIT = 3_000_000; // bytes: the page budget
// Licences that let us put the code on every stick; anything else fails the build.
const ALLOWED = new Set(["MIT", "BSD-2-Clause", "BSD-3-Clause", "Apache-2.0", "ISC", "Zlib", "0BSD"]);
// Native libraries compiled into the codec packages' WebAssembly: their own licences.
const EMBEDDED = {
  "@cornerstonejs/codec-libjpeg-turbo-8bit": "libjpeg-turbo (IJG License, Modified BSD License, zlib License)",
  "@cornerstonejs/codec-charls": "CharLS (BSD-3-Clause)",
  "@cornerstonejs/codec-openjpeg": "OpenJPEG (BSD-2-Clause)",
  "@cornerstonejs/dicom-image-loader": "codecs/jpeg.js: derived from Mozilla pdf.js (Apache-2.0)",
};

fs.mkdirSync(out, { recursive: true });
fs.mkdirSync(dist, { recursive: true });

// 1. WebAssembly from our own AssemblyScript sources (src/wasm/*.ts).
const wasmDir = path.join(src, "wasm");
if (fs.existsSync(wasmDir)) {
  for (const name of fs.readdirSync(wasmDir).filter((f) => f.endsWith(".ts"))) {
    const target = path.join(out, name.replace(/\.ts$/, ".wasm"));
    execFileSync(path.join(here, "node_modules", ".bin", "asc"), [
      path.join(wasmDir, name), "-O3", "--runtime", "stub", "--noAssert",
      "--initialMemory", "1", "-o", target,
    ], { stdio: "inherit" });
  }
}

const inputs = new Set(); // every file esbuild read, for LICENSES.TXT

const wasmPlugin = {
  name: "wasm",
  setup(build) {
    build.onResolve({ filter: /^wasm:/ }, (args) => ({
      path: path.join(out, `${args.path.slice(5)}.wasm`), namespace: "file",
    }));
  },
};

const common = {
  bundle: true, minify: true, format: "iife", target: ["chrome100", "firefox113", "safari16.4"],
  loader: { ".wasm": "binary", ".css": "text" }, legalComments: "none", metafile: true,
  logLevel: "warning", define: { "process.env.NODE_ENV": '"production"' },
  // Emscripten glue mentions Node modules it never loads in a browser.
  external: ["fs", "path", "crypto", "ws", "worker_threads", "url", "module"],
};

function note(meta) {
  for (const file of Object.keys(meta.inputs)) inputs.add(file);
}

const workerPlugin = {
  name: "worker",
  setup(build) {
    build.onResolve({ filter: /^worker:/ }, (args) => ({
      path: path.resolve(args.resolveDir, args.path.slice(7)), namespace: "worker",
    }));
    build.onLoad({ filter: /.*/, namespace: "worker" }, async (args) => {
      const result = await esbuild.build({
        ...common, entryPoints: [args.path], write: false, plugins: [wasmPlugin],
      });
      note(result.metafile);
      return { contents: result.outputFiles[0].text, loader: "text", watchFiles: Object.keys(result.metafile.inputs) };
    });
  },
};

// 2. The page's script (with its workers inlined as strings) and its style.
const main = await esbuild.build({
  ...common, entryPoints: [path.join(src, "main.js")], write: false,
  plugins: [workerPlugin, wasmPlugin],
});
note(main.metafile);
const script = main.outputFiles[0].text.replaceAll("</script", "<\\/script");
const style = fs.existsSync(path.join(src, "style.css"))
  ? fs.readFileSync(path.join(src, "style.css"), "utf8").replaceAll("</style", "<\\/style") : "";
const template = fs.readFileSync(path.join(src, "page.html"), "utf8");
const page = template
  .replace("/*STYLE*/", () => style)
  .replace("/*SCRIPT*/", () => script);
if (page.includes("/*SCRIPT*/") || !template.includes("/*SCRIPT*/")) throw new Error("page.html needs one /*SCRIPT*/");
const size = Buffer.byteLength(page);
if (size > PAGE_LIMIT) throw new Error(`OPEN_IMAGES.html is ${size} bytes, over the ${PAGE_LIMIT}-byte budget`);

// 2b. The gateway's phone page: its own entry point, the same inlining.
const shareBuild = await esbuild.build({
  ...common, entryPoints: [path.join(src, "share.js")], write: false,
  plugins: [workerPlugin, wasmPlugin],
});
note(shareBuild.metafile);
const shareStyle = (style + "\n" + fs.readFileSync(path.join(src, "share.css"), "utf8")).replaceAll("</style", "<\\/style");
const shareTemplate = fs.readFileSync(path.join(src, "share.html"), "utf8");
if (!shareTemplate.includes("/*SCRIPT*/")) throw new Error("share.html needs one /*SCRIPT*/");
const sharePage = shareTemplate
  .replace("/*STYLE*/", () => shareStyle)
  .replace("/*SCRIPT*/", () => shareBuild.outputFiles[0].text.replaceAll("</script", "<\\/script"));
const shareSize = Buffer.byteLength(sharePage);
if (shareSize > PAGE_LIMIT) throw new Error(`SHARE.html is ${shareSize} bytes, over the ${PAGE_LIMIT}-byte budget`);

// 3. LICENSES.TXT: every npm package any input came from, with its licence text.
const packages = new Map();
for (const file of inputs) {
  const m = file.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) packages.set(m[1], path.join(here, "node_modules", m[1]));
}
const sections = [];
for (const [name, dir] of [...packages].sort()) {
  const meta = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const licence = typeof meta.license === "string" ? meta.license : meta.license?.type;
  if (!ALLOWED.has(licence)) throw new Error(`${name} is licensed ${licence}: not allowed on sticks`);
  const file = fs.readdirSync(dir).find((f) => /^(LICEN[CS]E|COPYING)/i.test(f));
  const text = file ? fs.readFileSync(path.join(dir, file), "utf8").trim() : `${licence} (no licence file in the package)`;
  const extra = EMBEDDED[name] ? `\nIncludes: ${EMBEDDED[name]}\n` : "";
  sections.push(`${"=".repeat(72)}\n${name} ${meta.version} (${licence})${extra}\n\n${text}\n`);
}
const licences = [
  "OPEN_IMAGES.html: third-party software it contains / 本页面包含的第三方软件",
  "",
  "OPEN_IMAGES.html is the MedPass Kiosk viewer. It contains the following open-source packages,",
  "each under the licence shown.",
  "",
  ...sections,
].join("\n");

// Written to a temp name and renamed: a test reading the page never sees half of it.
function writeAtomic(name, text) {
  const tmp = path.join(dist, `.${name}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, path.join(dist, name));
}
writeAtomic("OPEN_IMAGES.html", page);
writeAtomic("SHARE.html", sharePage);
writeAtomic("LICENSES.TXT", licences);
const sha = createHash("sha256").update(page).digest("hex");
console.log(`OPEN_IMAGES.html ${size} bytes sha256 ${sha.slice(0, 16)}; SHARE.html ${shareSize} bytes; ${packages.size} packages in LICENSES.TXT`);
