// Text in DICOM character sets (PS3.5 §6.1, PS3.3 C.12.1.1.2), decoded as pydicom decodes it so
// the page shows the same names as the kiosk: single-byte ISO 8859 sets, UTF-8, GB18030/GBK,
// and ISO 2022 code extensions (IR 58 GB2312, IR 87/159 JIS, IR 149 KS X 1001, IR 13 JIS X 0201)
// switched by escape sequences inside the value.

// Specific Character Set defined terms → the decoder for bytes in that set. "latin1" is decoded
// by hand: WHATWG's TextDecoder("iso-8859-1") is really windows-1252.
const TERMS = {
  "": "latin1", // the default repertoire; pydicom shows stray high bytes as Latin-1
  "ISO_IR 6": "latin1", "ISO_IR 100": "latin1", "ISO_IR 101": "iso-8859-2",
  "ISO_IR 109": "iso-8859-3", "ISO_IR 110": "iso-8859-4", "ISO_IR 144": "iso-8859-5",
  "ISO_IR 127": "iso-8859-6", "ISO_IR 126": "iso-8859-7", "ISO_IR 138": "iso-8859-8",
  "ISO_IR 148": "iso-8859-9", "ISO_IR 203": "iso-8859-15", "ISO_IR 13": "shift_jis",
  "ISO_IR 166": "windows-874", "ISO_IR 192": "utf-8", GB18030: "gb18030", GBK: "gbk",
  "ISO 2022 IR 6": "latin1", "ISO 2022 IR 100": "latin1", "ISO 2022 IR 101": "iso-8859-2",
  "ISO 2022 IR 109": "iso-8859-3", "ISO 2022 IR 110": "iso-8859-4",
  "ISO 2022 IR 144": "iso-8859-5", "ISO 2022 IR 127": "iso-8859-6",
  "ISO 2022 IR 126": "iso-8859-7", "ISO 2022 IR 138": "iso-8859-8",
  "ISO 2022 IR 148": "iso-8859-9", "ISO 2022 IR 203": "iso-8859-15",
  "ISO 2022 IR 13": "shift_jis", "ISO 2022 IR 166": "windows-874",
  "ISO 2022 IR 87": "jis0208", "ISO 2022 IR 159": "jis0212", "ISO 2022 IR 149": "euc-kr",
  "ISO 2022 IR 58": "gbk", "ISO 2022 GBK": "gbk", "ISO 2022 58": "gbk",
};

// Escape sequences (the bytes after ESC) → decoder, from PS3.3 Table C.12-3/C.12-4.
const ESCAPES = new Map([
  ["(B", "latin1"], ["(J", "shift_jis"], [")I", "shift_jis"],
  ["-A", "latin1"], ["-B", "iso-8859-2"], ["-C", "iso-8859-3"], ["-D", "iso-8859-4"],
  ["-L", "iso-8859-5"], ["-G", "iso-8859-6"], ["-F", "iso-8859-7"], ["-H", "iso-8859-8"],
  ["-M", "iso-8859-9"], ["-b", "iso-8859-15"], ["-T", "windows-874"],
  ["$B", "jis0208"], ["$(D", "jis0212"], ["$)C", "euc-kr"], ["$)A", "gbk"],
]);

// Character sets whose escape starts a run decoded whole, as pydicom does (the JIS G0 94×94 sets:
// their bytes are 7-bit, so a "^" inside them is half of a character, not a delimiter; GB2312).
const WHOLE_RUN = new Set(["jis0208", "jis0212", "gbk"]);

const decoders = new Map();
function decoder(label) {
  let d = decoders.get(label);
  if (!d) {
    d = new TextDecoder(label);
    decoders.set(label, d);
  }
  return d;
}

/** Latin-1 exactly as ISO 8859-1 (bytes 0x80-0x9F are C1 controls, as in Python). */
function latin1(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  }
  return s;
}

/** Decode `bytes` with one decoder name of TERMS/ESCAPES. */
function decodeWith(name, bytes) {
  if (bytes.length === 0) return "";
  if (name === "latin1") return latin1(bytes);
  if (name === "jis0208" || name === "jis0212") {
    // 7-bit JIS pairs become EUC-JP by setting the high bits (and SS3 before JIS X 0212).
    const out = [];
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      if (b >= 0x21 && b <= 0x7e && i + 1 < bytes.length) {
        if (name === "jis0212") out.push(0x8f);
        out.push(b | 0x80, bytes[i + 1] | 0x80);
        i++;
      } else {
        out.push(b);
      }
    }
    return decoder("euc-jp").decode(new Uint8Array(out));
  }
  return decoder(name).decode(bytes);
}

/**
 * The defined terms of a raw (0008,0005) value, trimmed; [] for none (or only empty values).
 * @param {string|string[]|null|undefined} value
 * @returns {string[]}
 */
export function charsetTerms(value) {
  if (value == null) return [];
  const terms = (Array.isArray(value) ? value : String(value).split("\\")).map((t) => t.trim());
  return terms.every((t) => !t) ? [] : terms;
}

/** The term as pydicom reads it, with the misspellings it corrects; null if unknown. */
export function knownTerm(term) {
  if (term in TERMS) return term;
  for (const [re, fixed] of [[/^ISO.IR/, "ISO_IR"], [/^ISO.2022.IR./, "ISO 2022 IR "]]) {
    const t = term.replace(re, fixed);
    if (t in TERMS) return t;
  }
  return null;
}

/**
 * Decode a text value's bytes with the file's Specific Character Set, as pydicom does: the part
 * before the first escape with the first character set; each escape selects the set for the
 * run after it, and (as PS3.5 §6.1.2.5.3 says) a delimiter returns to the first set.
 * @param {Uint8Array} bytes the value, padding included or not
 * @param {string[]} terms from charsetTerms()
 * @param {string} delimiters characters that reset the escape state ("^=" for names)
 * @returns {{text: string, clean: boolean}} clean is false for unknown terms, undecodable bytes
 *   (shown as U+FFFD) or escapes of sets not declared
 */
export function decodeBytes(bytes, terms, delimiters = "") {
  let clean = true;
  const names = terms.map((t) => {
    const k = knownTerm(t);
    if (k === null) clean = false;
    return TERMS[k ?? ""];
  });
  const first = names[0] ?? "latin1";
  const delims = new Set([...delimiters, "\\", "\r", "\n", "\t", "\f"].map((c) => c.charCodeAt(0)));
  const esc = bytes.indexOf(0x1b);
  if (esc < 0) {
    const text = decodeWith(first, bytes);
    return { text, clean: clean && !text.includes("\ufffd") };
  }
  let text = decodeWith(first, bytes.subarray(0, esc));
  let i = esc;
  while (i < bytes.length) {
    // bytes[i] is ESC: the intermediate bytes (0x20-0x2F), then the final byte.
    let j = i + 1;
    while (j < bytes.length && bytes[j] >= 0x20 && bytes[j] <= 0x2f) j++;
    const seq = latin1(bytes.subarray(i + 1, Math.min(j + 1, bytes.length)));
    const next = bytes.indexOf(0x1b, j + 1);
    const end = next < 0 ? bytes.length : next;
    const run = bytes.subarray(Math.min(j + 1, end), end);
    const set = ESCAPES.get(seq);
    if (set === undefined || !(names.includes(set) || set === "latin1")) {
      // An escape to a set the file did not declare: decoded with the first set, as pydicom.
      clean = false;
      text += decodeWith(first, run);
    } else if (WHOLE_RUN.has(set)) {
      text += decodeWith(set, run);
    } else {
      // Up to the first delimiter in this set, then the first set again.
      let k = 0;
      while (k < run.length && !delims.has(run[k])) k++;
      text += decodeWith(set, run.subarray(0, k)) + decodeWith(first, run.subarray(k));
    }
    i = end;
  }
  return { text, clean: clean && !text.includes("\ufffd") };
}

/** Remove ISO 2022 escape sequences (and stray ESC) left in decoded text. */
export function stripEscapes(text) {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b[\x20-\x2f]+[\x30-\x7e]/g, "").replaceAll("\x1b", "");
}
