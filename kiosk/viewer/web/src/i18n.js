// The page's words in English and Chinese. Every text the doctor reads comes from here (or from
// a library's own {en, zh} message), so switching the language changes all of it at once.
//
// Static labels are marked in the DOM with data-i18n="key" (and data-i18n-attr="attr:key;...")
// and refreshed by applyLanguage(); parts that compose their text at run time (the overlay, the
// custody banner) listen with onLanguage() and redraw themselves.

const TEXTS = {
  title: ["Open your images", "打开您的影像"],
  languageButton: ["中文", "English"],
  languageButtonLabel: ["切换到中文", "Switch to English"],
  // Unlock screen
  unlockHeading: ["Open the images on this stick", "打开此 U 盘中的影像"],
  unlockIntro: ["Everything happens in this browser: nothing is sent anywhere, nothing is installed.",
    "所有操作都在此浏览器中完成：不会上传任何数据，也无需安装任何软件。"],
  pickLabel: ["1. Choose the archive", "1. 选择压缩包"],
  pickHint: ["Choose IMAGES.zip — or, when it is split, all of IMAGES.zip.001, .002 … together (select them all at once). They are in the same folder as this page.",
    "请选择 IMAGES.zip；如已分卷，请同时选中 IMAGES.zip.001、.002 … 全部分卷。它们与本页面在同一文件夹中。"],
  pickButton: ["Choose files…", "选择文件…"],
  dropHere: ["or drop the files here", "或将文件拖放到此处"],
  pickFolderButton: ["Unencrypted copy: choose its folder…", "未加密副本：选择其文件夹…"],
  noFiles: ["No archive chosen yet.", "尚未选择压缩包。"],
  chosen: ["Chosen: {parts}", "已选择：{parts}"],
  missingParts: ["Missing: {missing}. Choose all the parts together.", "缺少：{missing}。请同时选择所有分卷。"],
  passLabel: ["2. Type the passphrase from the slip", "2. 输入凭条上的密码"],
  passHint: ["Five groups of four letters and digits, with dashes: XXXX-XXXX-XXXX-XXXX-XXXX", "五组，每组四个字母或数字，用短横线分隔：XXXX-XXXX-XXXX-XXXX-XXXX"],
  showPass: ["Show", "显示"],
  hidePass: ["Hide", "隐藏"],
  openButton: ["Open", "打开"],
  opening: ["Opening… {percent}", "正在打开… {percent}"],
  wrongPassphrase: ["The passphrase does not open this archive. Check it against the slip and try again (letters and digits, with dashes).",
    "密码无法打开此压缩包。请对照凭条核对后重试（字母和数字，以短横线分隔）。"],
  openFailed: ["This archive could not be opened.", "无法打开此压缩包。"],
  notReady: ["This page cannot open archives (its archive reader is missing).", "本页面无法打开压缩包（缺少压缩包读取组件）。"],
  needFiles: ["Choose the archive first.", "请先选择压缩包。"],
  needPass: ["Type the passphrase first.", "请先输入密码。"],
  // Viewer
  studies: ["Studies", "检查"],
  seriesLabel: ["Series {number}", "序列 {number}"],
  images: ["{n} images", "{n} 幅影像"],
  oneImage: ["1 image", "1 幅影像"],
  noImages: ["There are no images in this package.", "此数据包中没有影像。"],
  patient: ["Patient", "患者"],
  born: ["born {date}", "出生 {date}"],
  studyOn: ["{date}", "{date}"],
  tools: ["Tools", "工具"],
  toolScroll: ["Scroll", "翻页"],
  toolWindow: ["Window", "窗宽窗位"],
  toolZoom: ["Zoom", "缩放"],
  toolPan: ["Pan", "平移"],
  toolMeasure: ["Measure", "测量"],
  zoomIn: ["Zoom in", "放大"],
  zoomOut: ["Zoom out", "缩小"],
  fit: ["Fit", "适应窗口"],
  presets: ["Window presets", "窗口预设"],
  presetFile: ["File: {name}", "文件：{name}"],
  presetFileN: ["File window {n}", "文件窗口 {n}"],
  presetSoft: ["Soft tissue", "软组织"],
  presetLung: ["Lung", "肺"],
  presetBone: ["Bone", "骨"],
  presetBrain: ["Brain", "脑"],
  reset: ["Reset", "重置"],
  clearMeasure: ["Clear lengths", "清除测量"],
  play: ["Play", "播放"],
  pause: ["Pause", "暂停"],
  fps: ["{fps} frames/s", "{fps} 帧/秒"],
  sliceOf: ["Image {n}/{total}", "影像 {n}/{total}"],
  frameOf: ["Frame {n}/{total}", "帧 {n}/{total}"],
  wl: ["W {width} / L {center}", "窗宽 {width} / 窗位 {center}"],
  zoomPct: ["Zoom {pct}%", "缩放 {pct}%"],
  valueHu: ["{value} HU at ({x}, {y})", "{value} HU，位置 ({x}, {y})"],
  valuePlain: ["Value {value} at ({x}, {y})", "数值 {value}，位置 ({x}, {y})"],
  valueRgb: ["RGB {value} at ({x}, {y})", "RGB {value}，位置 ({x}, {y})"],
  lengthMm: ["{value} mm", "{value} 毫米"],
  lengthMmDetector: ["{value} mm (at the detector)", "{value} 毫米（探测器平面）"],
  lengthPx: ["{value} pixels (no pixel spacing in the file)", "{value} 像素（文件中无像素间距）"],
  loading: ["Loading…", "正在加载…"],
  viewportLabel: ["Image. Arrow keys or Page Up/Down change the image; + and − zoom; Ctrl+arrows change the window; 0 fits; in Measure, arrows move the cursor and Enter sets a point.",
    "影像。方向键或 Page Up/Down 切换影像；+ 和 − 缩放；Ctrl+方向键调节窗口；0 适应窗口；测量时方向键移动光标，回车设点。"],
  keysHelp: ["Keys: ↑/↓ image · PgUp/PgDn ±10 · Home/End · +/− zoom · 0 fit · Ctrl+arrows window · Shift+arrows pan · Space play",
    "按键：↑/↓ 切换影像 · PgUp/PgDn ±10 · Home/End · +/− 缩放 · 0 适应 · Ctrl+方向键 窗口 · Shift+方向键 平移 · 空格 播放"],
  warning: ["Note: {text}", "注意：{text}"],
  // Reports
  reportsHeading: ["Reports", "报告"],
  noReports: ["There is no report in this package.", "此数据包中没有报告。"],
  reportOriginal: ["Original report ({language}): {title}", "原始报告（{language}）：{title}"],
  reportTranslation: ["Certified English translation of: {original}, translator {translator}", "以下报告的认证英文译本：{original}，译者 {translator}"],
  reportTranslationUncertified: ["Translation (not certified) of: {original}, translator {translator}", "以下报告的译本（未认证）：{original}，译者 {translator}"],
  reportOther: ["Report ({language}): {title}", "报告（{language}）：{title}"],
  langZh: ["Chinese", "中文"],
  langEn: ["English", "英文"],
  unknownTranslator: ["not named", "未署名"],
  showReport: ["Show", "显示"],
  hideReport: ["Hide", "隐藏"],
  openTab: ["Open in a new tab", "在新标签页中打开"],
  reportFailed: ["This report could not be read from the stick.", "无法从 U 盘读取此报告。"],
  showReports: ["Reports", "报告"],
  // Custody
  custodyChecking: ["Checking the chain of custody… {checked}/{total} files", "正在核验监管链… {checked}/{total} 个文件"],
  custodyVerified: ["Verified: {images}, {reports}, from kiosk {kiosk} on {date} (key fingerprint {fingerprint}). Compare the fingerprint with the slip or README.TXT.",
    "已核验：{images}，{reports}，来自自助机 {kiosk}，{date}（密钥指纹 {fingerprint}）。请与凭条或 README.TXT 上的指纹核对。"],
  custodyImages: ["{n} images", "{n} 幅影像"],
  custodyOneImage: ["1 image", "1 幅影像"],
  custodyOriginal: ["the original report", "原始报告"],
  custodyOriginals: ["{n} original reports", "{n} 份原始报告"],
  custodyTranslation: ["its certified translation", "其认证译本"],
  custodyTranslations: ["{n} certified translations", "{n} 份认证译本"],
  custodyNoReports: ["no report", "无报告"],
  custodyWarning: ["Warning: this package does not match what the kiosk signed. Do not rely on the files named below.",
    "警告：此数据包与自助机签名的内容不符。请勿信赖下列文件。"],
  custodyUnsigned: ["Unsigned: this package carries no kiosk signature, so where these files came from cannot be checked.",
    "未签名：此数据包没有自助机签名，无法核验这些文件的来源。"],
  custodyUnknown: ["The chain of custody is not known for this source.", "此来源的监管链未知。"],
  custodyFrom: ["Signed by kiosk {kiosk} on {date}, key fingerprint {fingerprint}.", "由自助机 {kiosk} 于 {date} 签名，密钥指纹 {fingerprint}。"],
  problemChanged: ["changed since the kiosk signed it", "自助机签名后已被修改"],
  problemMissing: ["missing", "缺失"],
  problemUnlisted: ["not in the signed list", "不在签名清单中"],
  problemSignature: ["the signature does not match", "签名不符"],
  problemDamaged: ["damaged", "已损坏"],
  // Save for PACS
  saveButton: ["Save for your PACS", "保存以导入 PACS"],
  saveHint: ["Writes a plain (unencrypted) zip of the DICOM files and DICOMDIR, ready to import.", "生成一个未加密的 zip（DICOM 文件和 DICOMDIR），可直接导入 PACS。"],
  saveFallback: ["This browser cannot write to a file directly: the copy is built in memory and then downloaded (large packages may need Chrome or Edge).",
    "此浏览器无法直接写入文件：副本将先在内存中生成，然后下载（较大的数据包可能需要 Chrome 或 Edge）。"],
  saving: ["Saving… {percent}", "正在保存… {percent}"],
  saved: ["Saved.", "已保存。"],
  saveCancelled: ["Not saved.", "未保存。"],
  saveFailed: ["The copy could not be saved.", "无法保存副本。"],
  saveDownload: ["Download the copy", "下载副本"],
};

const listeners = new Set();
let current = pickDefault();

function pickDefault() {
  const langs = globalThis.navigator?.languages?.length ? navigator.languages : [globalThis.navigator?.language ?? "en"];
  return String(langs[0] ?? "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

/** The language shown now: "en" or "zh". */
export function language() {
  return current;
}

/**
 * Switch the language: every data-i18n element under document is refreshed and every
 * onLanguage listener called.
 * @param {"en"|"zh"} lang
 */
export function setLanguage(lang) {
  current = lang === "zh" ? "zh" : "en";
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  applyLanguage(document);
  for (const fn of listeners) fn(current);
}

/**
 * Call fn(lang) after each language switch; returns a function that stops it.
 * @param {(lang: string) => void} fn
 */
export function onLanguage(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function fill(template, params) {
  return template.replace(/\{(\w+)\}/g, (m, k) => (params && k in params ? String(params[k]) : m));
}

/**
 * The text of `key` in the current language, with {placeholders} filled from params.
 * @param {string} key
 * @param {Record<string, unknown>} [params]
 */
export function t(key, params) {
  const pair = TEXTS[key];
  if (!pair) return key;
  return fill(pair[current === "zh" ? 1 : 0], params);
}

/**
 * A library's own bilingual message ({en, zh}) in the current language.
 * @param {{en: string, zh: string}|null|undefined} message
 */
export function pick(message) {
  if (!message) return "";
  return (current === "zh" ? message.zh : message.en) ?? message.en ?? "";
}

/**
 * Mark an element's text (and attributes) as i18n keys and fill them now.
 * @param {Element} el
 * @param {string|null} key text key (null: attributes only)
 * @param {Record<string, unknown>} [params]
 * @param {Record<string, string>} [attrs] attribute name → key
 */
export function label(el, key, params, attrs) {
  if (key) el.dataset.i18n = key;
  if (params) el.dataset.i18nParams = JSON.stringify(params);
  if (attrs) el.dataset.i18nAttr = Object.entries(attrs).map(([a, k]) => `${a}:${k}`).join(";");
  refresh(el);
  return el;
}

function refresh(el) {
  const params = el.dataset.i18nParams ? JSON.parse(el.dataset.i18nParams) : undefined;
  if (el.dataset.i18n) el.textContent = t(el.dataset.i18n, params);
  if (el.dataset.i18nAttr) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":");
      el.setAttribute(attr, t(key, params));
    }
  }
}

/**
 * Refresh every marked element under root.
 * @param {ParentNode} root
 */
export function applyLanguage(root) {
  for (const el of root.querySelectorAll("[data-i18n], [data-i18n-attr]")) refresh(el);
}
