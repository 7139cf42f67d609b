// The viewport's toolbar: tools, zoom, window presets, cine. Every control is a real button,
// so the whole viewer works from the keyboard (Tab, Enter/Space) as well as by mouse and touch.
import { onLanguage, t } from "../i18n.js";
import { clear, h } from "./dom.js";
import { presetsFor } from "./presets.js";

const TOOLS = [
  ["scroll", "toolScroll", "S"], ["window", "toolWindow", "W"], ["zoom", "toolZoom", "Z"],
  ["pan", "toolPan", "P"], ["measure", "toolMeasure", "M"],
];

export class Toolbar {
  /** @param {import("./viewport.js").Viewport} viewport */
  constructor(viewport) {
    this.vp = viewport;
    this.toolButtons = TOOLS.map(([name, key, shortcut]) => h("button.tool", {
      type: "button", "data-tool": name, "aria-pressed": String(viewport.tool === name), i18n: key,
      "aria-keyshortcuts": shortcut, on: { click: (e) => viewport.setTool(name, { probe: e.detail === 0 }) },
    }));
    const zoom = [
      h("button", { type: "button", "data-action": "zoom-in", i18nAttr: { "aria-label": "zoomIn", title: "zoomIn" }, text: "+", on: { click: () => { viewport.zoomAt(1.25); viewport._overlay(); } } }),
      h("button", { type: "button", "data-action": "zoom-out", i18nAttr: { "aria-label": "zoomOut", title: "zoomOut" }, text: "−", on: { click: () => { viewport.zoomAt(0.8); viewport._overlay(); } } }),
      h("button", { type: "button", "data-action": "fit", i18n: "fit", on: { click: () => { viewport.fit(); viewport._overlay(); } } }),
    ];
    this.presets = h("div.presets", { role: "group", i18nAttr: { "aria-label": "presets" } });
    this.clearButton = h("button", { type: "button", "data-action": "clear-lengths", i18n: "clearMeasure", hidden: true, on: { click: () => viewport.clearLengths() } });
    this.playButton = h("button.play", { type: "button", "data-action": "cine", hidden: true, on: { click: () => (viewport.playing ? viewport.pause() : viewport.play()) } });
    this.fps = h("span.fps", { hidden: true });
    this.el = h("div.toolbar", { role: "toolbar", i18nAttr: { "aria-label": "tools" } },
      h("div.group.tools", { role: "group" }, ...this.toolButtons),
      h("div.group.zoom", { role: "group" }, ...zoom),
      this.presets,
      h("div.group.cine", {}, this.playButton, this.fps, this.clearButton));
    viewport.addEventListener("tool", () => this.sync());
    viewport.addEventListener("slice", () => this.sync());
    viewport.addEventListener("cine", () => this.sync());
    viewport.addEventListener("length", () => this.sync());
    onLanguage(() => { this._presetKey = null; this.sync(); });
    // Single-letter shortcuts on the viewport for the tools (and R for reset).
    viewport.el.addEventListener("keydown", (e) => {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      const tool = TOOLS.find(([, , s]) => s.toLowerCase() === e.key.toLowerCase());
      if (tool) { viewport.setTool(tool[0], { probe: true }); e.preventDefault(); }
      else if (e.key.toLowerCase() === "r") { viewport.reset(); e.preventDefault(); }
    });
    this.sync();
  }

  sync() {
    const vp = this.vp;
    for (const b of this.toolButtons) b.setAttribute("aria-pressed", String(b.dataset.tool === vp.tool));
    const playable = vp.frames > 1;
    this.playButton.hidden = !playable;
    this.fps.hidden = !playable;
    this.playButton.textContent = t(vp.playing ? "pause" : "play");
    this.playButton.setAttribute("aria-pressed", String(vp.playing));
    this.fps.textContent = t("fps", { fps: vp.fps() });
    this.clearButton.hidden = !vp.currentLengths().length;
    this._syncPresets();
  }

  _syncPresets() {
    const list = presetsFor(this.vp.frame?.samples === 1 ? this.vp.img : null);
    const key = JSON.stringify(list);
    if (key === this._presetKey) return;
    this._presetKey = key;
    clear(this.presets);
    for (const p of list) {
      this.presets.append(h("button.preset", { type: "button", "data-source": p.source, "data-center": String(p.center),
        "data-width": String(p.width), text: p.label, on: { click: () => this.vp.setWindow(p) } }));
    }
    if (this.vp.frame) {
      this.presets.append(h("button.preset", { type: "button", "data-action": "reset", i18n: "reset", on: { click: () => this.vp.reset() } }));
    }
  }
}
