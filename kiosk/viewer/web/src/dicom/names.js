// Person Names and other text for display, with the kiosk's rule for mislabelled Chinese
// (kiosk/dicom/names.py, DESIGN.md §3): Chinese CDs often hold GBK/GB18030 bytes labelled
// ISO_IR 100 or not labelled at all. Shown as declared they are Latin-1 mojibake ("ÀîÐ»"), and a
// wrong-looking name is a wrong patient to the doctor. So: decode as declared; if the bytes are
// 8-bit, escape-free and the label is one Chinese software writes by mistake (or does not fit
// the bytes), try strict UTF-8 then strict GB18030 and keep a plausible result, with a warning.
import { charsetTerms, decodeBytes, knownTerm, stripEscapes } from "./charset.js";
import { message } from "./messages.js";

const LATIN_LIKE = new Set(["", "ISOIR6", "ISO2022IR6", "ISOIR100", "ISO2022IR100"]);
const IDEOGRAPH = /[\p{Unified_Ideograph}\u{F900}-\u{FAFF}\u{2F800}-\u{2FA1F}]/u;
const CJK_PUNCT = /[\u00b7\u30fb\u3000-\u303f\uff01-\uff5e]/u;
const CONTROL = /\p{Cc}/u;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const strictGb = new TextDecoder("gb18030", { fatal: true });

function isLatinLike(terms) {
  return terms.every((t) => LATIN_LIKE.has(t.replace(/[\s_]/g, "").toUpperCase()));
}

function isIdeograph(ch) {
  return IDEOGRAPH.test(ch);
}

function plausibleChinese(text) {
  if (CONTROL.test(text) || ![...text].some(isIdeograph)) return false;
  for (const ch of text) {
    if (ch.codePointAt(0) >= 0x80 && !(isIdeograph(ch) || CJK_PUNCT.test(ch))) return false;
  }
  // Chance decodings of Latin-1 glue ideographs to Latin letters ("M"+ideograph+"ler").
  for (const token of text.match(/[0-9A-Za-z\u0080-\u{10ffff}]+/gu) ?? []) {
    const ascii = /[\0-\x7f]/.test(token);
    const other = /[^\0-\x7f]/u.test(token);
    if (ascii && other) return false;
  }
  return true;
}

function plausibleUtf8(text) {
  if (CONTROL.test(text)) return false;
  for (const ch of text) {
    if (!(ch.codePointAt(0) < 0x80 || /\p{L}/u.test(ch) || CJK_PUNCT.test(ch))) return false;
  }
  return true;
}

/** Strict UTF-8, then strict GB18030: [text, kind] or null. */
function guess(bytes) {
  try {
    const text = strictUtf8.decode(bytes);
    if (plausibleUtf8(text)) return [text, "utf8"];
  } catch { /* not UTF-8 */ }
  try {
    const text = strictGb.decode(bytes);
    if (plausibleChinese(text)) return [text, "gb"];
  } catch { /* not GB18030 */ }
  return null;
}

function label(terms) {
  return terms.length ? `labelled ${terms.join("\\")}` : "has no Specific Character Set";
}

function trimPadding(bytes) {
  let n = bytes.length;
  while (n > 0 && (bytes[n - 1] === 0x20 || bytes[n - 1] === 0x00)) n--;
  return bytes.subarray(0, n);
}

function hasHighBit(bytes) {
  return bytes.some((b) => b >= 0x80);
}

/**
 * Decode a text value (PN or any other string VR) as the kiosk does.
 * @param {Uint8Array} raw the value's bytes
 * @param {string[]} terms the file's Specific Character Set (charsetTerms())
 * @param {{what?: string, pn?: boolean}} opts what the value is, for the warning ("Patient name")
 * @returns {{text: string, warning: null|{en: string, zh: string}}}
 */
export function decodeText(raw, terms, { what = "Text", pn = false } = {}) {
  const bytes = trimPadding(raw);
  let text;
  let clean = true;
  if (pn) {
    // Groups are decoded separately: the escape state resets at "=", as pydicom does.
    const parts = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i === bytes.length || bytes[i] === 0x3d) {
        const r = decodeBytes(bytes.subarray(start, i), terms, "^");
        parts.push(r.text);
        clean &&= r.clean;
        start = i + 1;
      }
    }
    text = parts.join("=");
  } else {
    const r = decodeBytes(bytes, terms);
    text = r.text;
    clean = r.clean;
  }
  text = stripEscapes(text);
  const latinLike = isLatinLike(terms);
  if (hasHighBit(bytes) && !bytes.includes(0x1b) && (latinLike || !clean)) {
    const g = guess(bytes);
    if (g) {
      const [guessed, kind] = g;
      let lab = label(terms);
      if (!latinLike) lab = `labelled ${terms.join("\\")} and is not valid ${terms.join("\\")}`;
      const warning = kind === "gb"
        ? message(`${what} is GB18030/GBK but ${lab}; shown decoded as Chinese. The original file is unchanged.`,
          `${whatZh(what)}实为 GB18030/GBK 编码，但${labZh(terms)}；已按中文显示。原始文件未改动。`)
        : message(`${what} is UTF-8 but ${lab}; shown decoded as UTF-8. The original file is unchanged.`,
          `${whatZh(what)}实为 UTF-8 编码，但${labZh(terms)}；已按 UTF-8 显示。原始文件未改动。`);
      return { text: guessed, warning };
    }
  }
  let warning = null;
  if (!clean && text.includes("\ufffd")) {
    warning = message(`${what} could not be decoded cleanly (${label(terms)}); unreadable characters are shown as \ufffd. The original file is unchanged.`,
      `${whatZh(what)}无法完全解码（${labZh(terms)}）；无法识别的字符显示为 \ufffd。原始文件未改动。`);
  } else if (!clean) {
    warning = message(`${what} uses an unknown or undeclared character set (${label(terms)}); some characters may be shown wrongly. The original file is unchanged.`,
      `${whatZh(what)}使用了未知或未声明的字符集（${labZh(terms)}）；部分字符可能显示不正确。原始文件未改动。`);
  } else if (!terms.length && hasHighBit(bytes)) {
    warning = message(`${what} has non-ASCII characters but no Specific Character Set; shown as Latin-1 (ISO_IR 100). The original file is unchanged.`,
      `${whatZh(what)}含非 ASCII 字符但未声明字符集；已按 Latin-1（ISO_IR 100）显示。原始文件未改动。`);
  }
  return { text, warning };
}

function whatZh(what) {
  return { "Patient name": "患者姓名", "Patient ID": "患者编号", "Study description": "检查描述",
    "Series description": "序列描述", "Institution name": "医院名称", Text: "文字" }[what] ?? "文字";
}

function labZh(terms) {
  return terms.length ? `标注为 ${terms.join("\\")}` : "未声明字符集";
}

/** Whether all terms are ones we can decode (after pydicom's spelling fixes). */
export function termsKnown(terms) {
  return terms.every((t) => knownTerm(t) !== null);
}

function isLatinWordChar(ch) {
  return /^[0-9A-Za-z]$/.test(ch);
}

/** Join one group's components: spaces, but none between two Han ideographs (李^华 → 李华). */
function join(components, ideographic) {
  let out = "";
  for (const raw of components) {
    const comp = raw.split(/\s+/).filter(Boolean).join(" ");
    if (!comp) continue;
    if (out) {
      const left = [...out].at(-1);
      const right = [...comp][0];
      if (ideographic) out += isLatinWordChar(left) && isLatinWordChar(right) ? " " : "";
      else out += isIdeograph(left) && isIdeograph(right) ? "" : " ";
    }
    out += comp;
  }
  return out;
}

function removeControls(s) {
  return s.replace(/\p{Cc}/gu, "");
}

/**
 * Split a decoded PN value into its groups for display, as the kiosk shows names:
 * "LI^Hua=李^华" → {alphabetic: "LI Hua", ideographic: "李华", phonetic: "", display: "LI Hua 李华"}.
 * A multi-valued PN gives the first name's groups and all names in display, joined by "; ".
 * @param {string} pn
 */
export function splitPersonName(pn) {
  const clean = removeControls(pn ?? "");
  const one = (v) => {
    const [a = "", i = "", p = ""] = v.split("=");
    const alphabetic = join(a.split("^"), false);
    const ideographic = join(i.split("^"), true);
    const phonetic = join(p.split("^"), false);
    const display = alphabetic && ideographic ? `${alphabetic} ${ideographic}`
      : alphabetic || ideographic || phonetic;
    return { alphabetic, ideographic, phonetic, display };
  };
  const values = clean.split("\\").map(one);
  const first = values[0];
  return { ...first, display: values.map((v) => v.display).filter(Boolean).join("; "), stored: clean };
}

/**
 * A Person Name element's bytes → display form and warning.
 * @param {Uint8Array|undefined} raw
 * @param {string[]} terms
 */
export function personName(raw, terms) {
  if (!raw) return { name: splitPersonName(""), warning: null };
  const { text, warning } = decodeText(raw, terms, { what: "Patient name", pn: true });
  return { name: splitPersonName(text), warning };
}

export { charsetTerms };
