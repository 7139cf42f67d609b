// The chain-of-custody banner: what the background check of the signed manifest says, in
// words the doctor can act on: checking (n/N), verified (what, from which kiosk, when, the key's
// fingerprint to compare with the slip), a red warning naming each file that does not match,
// or plainly unsigned.
import { language, onLanguage, pick, t } from "../i18n.js";
import { clear, h } from "./dom.js";
import { dicomDate } from "./studies.js";

const PROBLEMS = {
  changed: "problemChanged", "hash-mismatch": "problemChanged", sha256: "problemChanged",
  size: "problemChanged", missing: "problemMissing", unlisted: "problemUnlisted",
  extra: "problemUnlisted", signature: "problemSignature", damaged: "problemDamaged",
  hmac: "problemDamaged",
};

function count(n, one, many) {
  return n === 1 ? t(one) : t(many, { n });
}

/** The ISO time the kiosk signed at, as a date and time the doctor reads (UTC, said so). */
function when(created) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(created ?? "");
  return m ? `${m[1]} ${m[2]} UTC` : dicomDate(created ?? "");
}

/** The sentence for a problem: the custody's own {en, zh}, a known code, or its text. */
function problemText(p) {
  const v = p.problem;
  if (v && typeof v === "object") return pick(v);
  if (PROBLEMS[v]) return t(PROBLEMS[v]);
  return String(v ?? "");
}

/**
 * The banner's words for a summary: {state, text, problems: [{path, text}]}.
 * @param {ReturnType<import("../source/memory/index.js").MemoryCustody["summary"]>} s
 */
export function custodyText(s) {
  const from = { kiosk: s.kioskId || "?", date: when(s.created), fingerprint: s.fingerprint || "?" };
  switch (s.state) {
    case "checking":
      return { state: "checking", text: t("custodyChecking", { checked: s.checked ?? 0, total: s.total ?? "?" }), problems: [] };
    case "verified": {
      const reports = [];
      if (s.originals) reports.push(s.originals === 1 ? t("custodyOriginal") : t("custodyOriginals", { n: s.originals }));
      if (s.translations) reports.push(s.translations === 1 && s.originals <= 1 ? t("custodyTranslation") : t("custodyTranslations", { n: s.translations }));
      return {
        state: "verified",
        text: t("custodyVerified", { images: count(s.images ?? 0, "custodyOneImage", "custodyImages"),
          reports: reports.length ? reports.join(", ") : t("custodyNoReports"), ...from }),
        problems: [],
      };
    }
    case "warning":
      return {
        state: "warning",
        text: [t("custodyWarning"), s.kioskId ? t("custodyFrom", from) : ""].filter(Boolean).join(language() === "zh" ? "" : " "),
        problems: (s.problems ?? []).map((p) => ({ path: p.path, text: problemText(p) })),
      };
    case "unsigned":
      return { state: "unsigned", text: t("custodyUnsigned"), problems: [] };
    default:
      return { state: "unknown", text: t("custodyUnknown"), problems: [] };
  }
}

export class CustodyBanner {
  /** @param {EventTarget & {summary: () => object}} custody */
  constructor(custody) {
    this.custody = custody;
    this.el = h("div.custody", { role: "status", "aria-live": "polite", "data-testid": "custody" });
    this._update = () => this.render();
    custody?.addEventListener?.("change", this._update);
    onLanguage(this._update);
    this.render();
  }

  render() {
    const s = this.custody?.summary ? this.custody.summary() : { state: "unknown" };
    const view = custodyText(s);
    this.el.dataset.state = view.state;
    this.el.setAttribute("role", view.state === "warning" ? "alert" : "status");
    clear(this.el);
    const icon = { checking: "⏳", verified: "✔", warning: "⚠", unsigned: "?", unknown: "?" }[view.state];
    this.el.append(h("span.custody-icon", { "aria-hidden": "true", text: icon }), h("span.custody-text", { text: view.text }));
    if (view.state === "checking" && s.total) {
      this.el.append(h("progress.custody-progress", { max: String(s.total), value: String(s.checked ?? 0) }));
    }
    if (view.problems.length) {
      this.el.append(h("ul.custody-problems", {}, ...view.problems.map((p) =>
        h("li", {}, h("code", { text: p.path }), " — ", p.text))));
    }
  }
}
