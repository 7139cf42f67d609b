// The viewer's shell (docs/viewer.md): a top bar with the language switch, then the unlock
// screen, then the viewer on the opened Source.
import { language, onLanguage, setLanguage } from "../i18n.js";
import { h } from "./dom.js";
import { UnlockScreen } from "./unlock.js";
import { ViewerScreen } from "./viewer.js";

/**
 * Start the page in `root`.
 * @param {HTMLElement} root
 * @param {{source?: object, describeFiles?: Function, openPackage?: Function}} [options]
 *   `source`: show this Source at once (the gateway, tests); else the unlock screen opens the
 *   stick with `describeFiles`/`openPackage` (source/zip)
 * @returns {{show: (source: object) => Promise<ViewerScreen>, unlock: () => UnlockScreen,
 *   screen: () => object}}
 */
export function startApp(root, options = {}) {
  const langButton = h("button.lang", { type: "button", lang: "zh-CN", i18n: "languageButton",
    i18nAttr: { "aria-label": "languageButtonLabel" }, "data-testid": "language",
    on: { click: () => setLanguage(language() === "zh" ? "en" : "zh") } });
  const sync = () => langButton.setAttribute("lang", language() === "zh" ? "en" : "zh-CN");
  onLanguage(sync);
  const body = h("div.screen");
  root.replaceChildren(
    h("header.topbar", {}, h("span.brand", { i18n: "title" }), langButton),
    body);
  document.documentElement.lang = language() === "zh" ? "zh-CN" : "en";
  sync();
  let screen = null;

  const app = {
    async show(source) {
      screen?.close?.();
      screen = new ViewerScreen(source);
      body.replaceChildren(screen.el);
      root.classList.add("viewing");
      await screen.start();
      return screen;
    },
    unlock(fns = options) {
      screen?.close?.();
      screen = new UnlockScreen({
        describeFiles: fns.describeFiles, openPackage: fns.openPackage,
        onOpened: (source) => app.show(source),
      });
      body.replaceChildren(screen.el);
      root.classList.remove("viewing");
      return screen;
    },
    screen: () => screen,
  };
  if (options.source) app.show(options.source);
  else app.unlock(options);
  return app;
}
