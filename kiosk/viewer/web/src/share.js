// The phone page (SHARE.html), served by the office gateway at /s/{id} (docs/gateway.md "Phone
// API"): ask for the passcode when the share has one, then the viewer on the share's studies
// through DICOMweb (DicomwebSource), the custody banner from the kiosk's signed manifest, and
// "Download for your doctor". Every request goes to this page's own origin.
import * as dicom from "./dicom/index.js";
import { language, onLanguage, setLanguage } from "./i18n.js";
import * as manifest from "./manifest/index.js";
import * as dicomweb from "./source/dicomweb/index.js";
import { startApp } from "./ui/app.js";

const TEXTS = {
  title: ["Your images", "您的影像"],
  languageButton: ["中文", "English"],
  opening: ["Opening your images…", "正在打开您的影像…"],
  passHeading: ["Type the passcode from your slip", "请输入回执上的密码"],
  passHint: ["Six digits, printed on your slip next to the QR code.", "六位数字，印在回执上二维码旁边。"],
  passLabel: ["Passcode", "密码"],
  open: ["Open", "打开"],
  needDigits: ["Type the six digits.", "请输入六位数字。"],
  wrong: ["The passcode is not right. Check the six digits on your slip. Tries left: {n}.",
    "密码不正确。请核对回执上的六位数字。剩余尝试次数：{n}。"],
  locked: ["Too many wrong passcodes: the link is locked. Ask the office to reissue it.",
    "密码错误次数过多，链接已锁定。请联系机构重新签发。"],
  revoked: ["This link has been withdrawn.", "此链接已被撤销。"],
  expired: ["This link has expired.", "此链接已过期。"],
  unknown: ["This link does not work.", "此链接无法打开。"],
  rate: ["Too many tries. Wait a minute and try again.", "尝试过于频繁。请稍候一分钟再试。"],
  failed: ["The server could not be reached. Check your connection and try again.", "无法连接服务器。请检查网络后重试。"],
  retry: ["Try again", "重试"],
  waiting: ["Some of your images are still on their way to the office; those here are shown. Open the link again later for the rest.",
    "部分影像仍在传送至机构服务器；现显示已到达的影像。请稍后重新打开链接查看其余影像。"],
  nothing: ["Your images have not reached the office server yet. Open the link again later.",
    "您的影像尚未到达机构服务器。请稍后重新打开链接。"],
  download: ["Download for your doctor", "下载给您的医生"],
  downloadHint: ["All the images as one zip (DICOM files and DICOMDIR) for a doctor's viewer or PACS.",
    "所有影像打包为一个 zip 文件（DICOM 文件及 DICOMDIR），供医生的阅片软件或 PACS 使用。"],
};

function t(key, params = {}) {
  const pair = TEXTS[key] ?? [key, key];
  return pair[language() === "zh" ? 1 : 0].replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k === "key") { e.dataset.shareText = v; e.textContent = t(v); }
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? "" : v);
  }
  e.append(...children);
  return e;
}

/** Re-word every element marked with a share text (after a language switch). */
function relabel(root = document) {
  for (const e of root.querySelectorAll("[data-share-text]")) {
    e.textContent = t(e.dataset.shareText, JSON.parse(e.dataset.shareParams || "{}"));
  }
  document.title = `${t("title")} · ${language() === "zh" ? "Your images" : "您的影像"}`;
}

function say(e, key, params) {
  e.dataset.shareText = key;
  e.dataset.shareParams = JSON.stringify(params ?? {});
  e.textContent = t(key, params);
}

/** The share id of this page's address (/s/{id}), or null. */
export function shareIdOf(pathname) {
  const m = /^\/s\/([a-z2-7]{26})\/?$/.exec(pathname);
  return m ? m[1] : null;
}

const root = document.getElementById("app");
const gate = document.getElementById("gate");
const bar = document.getElementById("share-bar");
const id = shareIdOf(location.pathname);
const base = id ? `/s/${id}` : null;
const state = { phase: "start", share: null, source: null, app: null, timings: { start: performance.now() } };
globalThis.medpassLib = { dicom, manifest, dicomweb, share: { state, shareIdOf }, ui: { app: null, language, setLanguage } };
onLanguage(() => relabel());

const langButton = el("button", { type: "button", class: "lang", "data-testid": "language",
  onclick: () => setLanguage(language() === "zh" ? "en" : "zh") });
const syncLang = () => { langButton.textContent = t("languageButton"); langButton.lang = language() === "zh" ? "en" : "zh-CN"; };
onLanguage(syncLang);
syncLang();
const message = el("p", { class: "gate-message", role: "alert", "data-testid": "share-message" });
const body = el("div", { class: "gate-body" });
gate.replaceChildren(
  el("header", { class: "topbar" }, el("span", { class: "brand", key: "title" }), langButton),
  el("main", { class: "gate-main" }, body, message));
relabel();

async function call(method, path, payload) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (payload !== undefined) {
    init.body = JSON.stringify(payload);
    init.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(`${base}${path}`, init);
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  return { status: r.status, data: data ?? {} };
}

/** Show a refusal: nothing else to do on this page (or a retry button for a passing failure). */
function stop(key, params, retry = false) {
  state.phase = key;
  body.replaceChildren(retry ? el("button", { type: "button", class: "gate-retry", key: "retry", onclick: () => begin() }) : "");
  say(message, key, params);
}

function refusal(status, data) {
  const reason = data?.reason;
  if (status === 410) return stop(reason === "expired" ? "expired" : "revoked");
  if (status === 404) return stop("unknown");
  if (status === 423) return stop("locked");
  if (status === 429) return stop("rate", {}, true);
  return stop("failed", {}, true);
}

function askPasscode() {
  state.phase = "passcode";
  const input = el("input", { id: "passcode", type: "text", inputmode: "numeric", autocomplete: "one-time-code",
    maxlength: "6", pattern: "[0-9]{6}", "aria-describedby": "pass-hint", enterkeyhint: "go" });
  const button = el("button", { type: "submit", class: "gate-open", key: "open" });
  const form = el("form", { class: "gate-form", novalidate: true },
    el("h1", { key: "passHeading" }),
    el("p", { id: "pass-hint", key: "passHint" }),
    el("label", { for: "passcode", key: "passLabel" }), input, button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const code = input.value.replace(/\s+/g, "");
    if (!/^[0-9]{6}$/.test(code)) return say(message, "needDigits");
    button.disabled = true;
    try {
      const { status, data } = await call("POST", "/session", { passcode: code });
      if (status === 200) {
        message.textContent = "";
        return openShare();
      }
      if (status === 401 && data.reason === "passcode") {
        input.value = "";
        input.focus();
        return say(message, "wrong", { n: data.attempts_left ?? "?" });
      }
      return refusal(status, data);
    } catch {
      return say(message, "failed");
    } finally {
      button.disabled = false;
    }
  });
  body.replaceChildren(form);
  message.textContent = "";
  input.focus();
}

async function begin() {
  if (!base) return stop("unknown");
  body.replaceChildren(el("p", { class: "gate-opening", key: "opening" }));
  message.textContent = "";
  try {
    const { status, data } = await call("GET", "/api/share");
    if (status === 200) return showViewer(data);
    if (status === 401 && data.reason === "session") {
      if (data.passcode) return askPasscode();
      const opened = await call("POST", "/session", {});
      return opened.status === 200 ? openShare() : refusal(opened.status, opened.data);
    }
    return refusal(status, data);
  } catch {
    return stop("failed", {}, true);
  }
}

async function openShare() {
  body.replaceChildren(el("p", { class: "gate-opening", key: "opening" }));
  try {
    const { status, data } = await call("GET", "/api/share");
    return status === 200 ? showViewer(data) : refusal(status, data);
  } catch {
    return stop("failed", {}, true);
  }
}

async function showViewer(share) {
  state.share = share;
  state.timings.share = performance.now();
  if (share.state === "revoked" || share.state === "expired") return stop(share.state);
  if (!share.studies_present) return stop("nothing", {}, true);
  const custody = new dicomweb.DicomwebCustody();
  // The signature is checked before the viewer starts: reports are paired by the manifest.
  await custody.load(share.manifest ?? null, share.manifest_jws ?? null);
  const source = new dicomweb.DicomwebSource(`${base}/dicom-web`, { label: t("title"), custody, studies: share.studies });
  state.source = source;
  state.phase = "viewer";
  gate.hidden = true;
  const link = el("a", { class: "download", href: `${base}/download`, download: "medpass-images.zip", "data-testid": "download", key: "download" });
  bar.replaceChildren(link, el("span", { class: "download-hint", key: "downloadHint" }));
  if (share.state === "waiting") bar.append(el("p", { class: "share-waiting", role: "status", key: "waiting" }));
  bar.hidden = false;
  const app = startApp(root, { source });
  state.app = app;
  globalThis.medpassLib.ui.app = app;
  // The time the first slice is on screen (the budget: 2 s on loopback, 300 slices).
  const watch = () => {
    const v = app.screen()?.viewport;
    if (v?.frame) state.timings.firstImage = performance.now();
    else requestAnimationFrame(watch);
  };
  requestAnimationFrame(watch);
  return app;
}

begin();
