// DICOMDIR (PS3.3 F.3, PS3.10) → the viewer's Tree (docs/viewer.md): patients → studies →
// series → instances, names decoded in the record's (or the DICOMDIR's) character set.
// Records are linked by byte offsets (next record, first child); when the offsets are missing
// or point nowhere (some writers leave them 0), the records' order is used instead.
import { decodeText, personName } from "./names.js";
import { charsetTerms } from "./charset.js";
import { asciiString, elementBytes, numbers, parseSync } from "./parse.js";

const LEVEL = { PATIENT: 0, STUDY: 1, SERIES: 2 };

function text(item, tag, terms) {
  const raw = elementBytes(item, tag);
  return raw ? decodeText(raw, terms).text : "";
}

function intValue(item, tag) {
  const n = numbers(item, tag);
  return n.length ? n[0] : null;
}

function ref(item) {
  // Referenced File ID: CS, multi-valued, one path component each.
  return asciiString(item, "x00041500").split("\\").map((p) => p.trim()).filter(Boolean).join("/");
}

function makeNode(item, type, terms) {
  switch (type) {
    case "PATIENT": {
      const { name } = personName(elementBytes(item, "x00100010"), terms);
      const { stored, ...shown } = name;
      void stored;
      return { name: shown, id: text(item, "x00100020", terms), birthDate: asciiString(item, "x00100030"),
        sex: asciiString(item, "x00100040"), studies: [] };
    }
    case "STUDY":
      return { uid: asciiString(item, "x0020000d"), date: asciiString(item, "x00080020"),
        time: asciiString(item, "x00080030"), description: text(item, "x00081030", terms),
        accession: text(item, "x00080050", terms), id: text(item, "x00200010", terms), series: [] };
    case "SERIES":
      return { uid: asciiString(item, "x0020000e"), number: intValue(item, "x00200011"),
        modality: asciiString(item, "x00080060"), description: text(item, "x0008103e", terms),
        instances: [] };
    default:
      return { ref: ref(item), uid: asciiString(item, "x00041511"), number: intValue(item, "x00200013"),
        recordType: type, sopClassUid: asciiString(item, "x00041510"),
        transferSyntax: asciiString(item, "x00041512") };
  }
}

function attach(parent, level, node) {
  if (level === 0) parent.patients.push(node);
  else if (level === 1) parent.studies.push(node);
  else if (level === 2) parent.series.push(node);
  else if (node.ref) parent.instances.push(node);
}

function sortTree(tree) {
  const byNumber = (a, b) => (a.number ?? Infinity) - (b.number ?? Infinity);
  for (const p of tree.patients) {
    for (const st of p.studies) {
      st.series.sort(byNumber);
      for (const se of st.series) se.instances.sort(byNumber);
    }
  }
  return tree;
}

/**
 * Parse a DICOMDIR into the viewer's Tree. Leaf records of any type that name a file (IMAGE,
 * ENCAP DOC, SR DOCUMENT, PRESENTATION...) become instances; `recordType`, `sopClassUid` and
 * `transferSyntax` come along so the UI can tell images from reports.
 * @param {ArrayBuffer|Uint8Array} buffer the DICOMDIR's bytes
 * @returns {{patients: object[]}}
 */
export function parseDicomdir(buffer) {
  const { dataSet } = parseSync(buffer);
  const seq = dataSet.elements.x00041220;
  const items = (seq?.items ?? []).map((it) => it.dataSet ? { ...it, ds: it.dataSet } : null).filter(Boolean);
  const topTerms = charsetTerms(asciiString(dataSet, "x00080005") || null);
  const byOffset = new Map();
  for (const it of items) byOffset.set(it.dataOffset - 8, it);
  const tree = { patients: [] };
  const recordType = (it) => asciiString(it.ds, "x00041430").toUpperCase();
  const termsOf = (it) => {
    const own = asciiString(it.ds, "x00080005");
    return own ? charsetTerms(own) : topTerms;
  };
  const offset = (it, tag) => {
    const el = it.ds.elements[tag];
    return el && el.length >= 4 ? it.ds.uint32(tag) : 0;
  };

  // By links: the root's first record, then next/child offsets (guarding against loops).
  const first = offset({ ds: dataSet }, "x00041200");
  const seen = new Set();
  const walk = (off, parent, depth) => {
    while (off && byOffset.has(off) && !seen.has(off)) {
      seen.add(off);
      const it = byOffset.get(off);
      const type = recordType(it);
      const level = LEVEL[type] ?? 3;
      const node = makeNode(it.ds, type, termsOf(it));
      // Records of other kinds at the top (PRIVATE, HANGING PROTOCOL...) are not images.
      if (level === depth) attach(parent, depth, node);
      const child = offset(it, "x00041420");
      if (child && level < 3 && level === depth) walk(child, node, depth + 1);
      off = offset(it, "x00041400");
    }
  };
  walk(first, tree, 0);
  if (items.length > 0 && seen.size === items.length) return sortTree(tree);

  // By order: each record belongs to the latest record of the level above it.
  const order = { patients: [] };
  const stack = [order];
  for (const it of items) {
    const type = recordType(it);
    const level = LEVEL[type] ?? 3;
    const node = makeNode(it.ds, type, termsOf(it));
    // A record whose parent level is missing gets an empty parent, so nothing is dropped.
    while (stack.length <= level) {
      const filler = makeNode({ elements: {}, byteArray: new Uint8Array(0) }, ["PATIENT", "STUDY", "SERIES"][stack.length - 1], []);
      attach(stack[stack.length - 1], stack.length - 1, filler);
      stack.push(filler);
    }
    stack.length = level + 1;
    attach(stack[level], level, node);
    if (level < 3) stack.push(node);
  }
  return sortTree(order);
}
