// The image viewport: one canvas showing a slice of the chosen series, with stack scroll,
// window/level, zoom and pan, the value under the pointer, length measurement and cine.
// Mouse, touch and keyboard all drive the same few actions (step, setWindow, zoomAt, panBy,
// measure points), so each way of working behaves the same.
import { defaultWindow, renderFrame } from "../dicom/index.js";
import { language, onLanguage, pick, t } from "../i18n.js";
import { h } from "./dom.js";
import { formatLength, formatValue, lengthOf } from "./measure.js";

const TOOLS = ["scroll", "window", "zoom", "pan", "measure"];
const MIN_SCALE = 0.05;
const MAX_SCALE = 40;

export class Viewport extends EventTarget {
  /**
   * @param {import("./images.js").ImageCache} images
   */
  constructor(images) {
    super();
    this.images = images;
    this.tool = "scroll";
    this.slices = []; // instance refs of the series
    this.index = 0;
    this.frameIndex = 0;
    this.frames = 1; // frames of the current instance
    this.frameMode = false; // a single multi-frame instance: scrolling moves its frames
    this.img = null;
    this.frame = null;
    this.window = null; // the doctor's window; null: each image's default
    this.scale = 1;
    this.pan = { x: 0, y: 0 }; // CSS px offset of the image centre from the canvas centre
    this.fitted = true;
    this.lengths = new Map(); // slice key → [{a, b}]
    this.pending = null; // a length being drawn: {a, b}
    this.cursor = null; // the keyboard's probe point (image coordinates), Measure tool
    this.pointerAt = null; // last image point under the mouse
    this.playing = false;
    this._token = 0;
    this._pointers = new Map();
    this._wheel = 0;
    this._drawQueued = false;
    this._offscreen = document.createElement("canvas");

    this.canvas = h("canvas.viewport-canvas", { "aria-hidden": "true" });
    this.message = h("div.viewport-message", { role: "alert", hidden: true });
    this.topLeft = h("div.overlay.top-left", { "data-testid": "overlay-slice" });
    this.topRight = h("div.overlay.top-right", { "data-testid": "overlay-window" });
    this.bottomLeft = h("div.overlay.bottom-left", { "data-testid": "overlay-value", "aria-live": "polite" });
    this.bottomRight = h("div.overlay.bottom-right", { "data-testid": "overlay-length", "aria-live": "polite" });
    this.el = h("div.viewport", { tabindex: "0", role: "application", i18nAttr: { "aria-label": "viewportLabel" } },
      this.canvas, this.message, this.topLeft, this.topRight, this.bottomLeft, this.bottomRight);

    this._bind();
    new ResizeObserver(() => this._resize()).observe(this.el);
    onLanguage(() => this._overlay());
  }

  // ---- what the toolbar and tests call ------------------------------------------------------

  /**
   * Show a series from its first image (or `start`).
   * @param {string[]} refs the series' image instances in order
   */
  async showSeries(refs, start = 0) {
    this.pause();
    this.slices = refs;
    this.window = null;
    this.lengths.clear();
    this.pending = null;
    this.cursor = null;
    this.fitted = true;
    this.frameMode = false;
    this.frameIndex = 0;
    await this.goTo(start);
    if (refs.length === 1 && this.frames > 1) {
      this.frameMode = true;
      this._overlay();
    }
  }

  /** How many positions scrolling goes through: the slices, or the frames of a lone cine. */
  get count() {
    return this.frameMode ? this.frames : this.slices.length;
  }

  get position() {
    return this.frameMode ? this.frameIndex : this.index;
  }

  /** Move n positions (negative: back), clamped to the stack. */
  step(n) {
    return this.goTo(this.position + n);
  }

  /** Show position i (a slice, or a frame of a lone multi-frame instance). */
  async goTo(i) {
    const last = Math.max(0, this.count - 1);
    const target = Math.min(last, Math.max(0, Math.round(i)));
    if (this.frameMode) return this._show(this.index, target);
    if (target === this.index && this.img && this.slices.length) return undefined;
    return this._show(target, 0);
  }

  /**
   * Select a tool by name (scroll, window, zoom, pan, measure).
   * @param {string} name
   * @param {{probe?: boolean}} [options] probe: show the keyboard's cross-hair at once (the
   *   tool was chosen from the keyboard); otherwise it appears on the first Enter, so a mouse
   *   user's arrow keys still change slices
   */
  setTool(name, { probe = false } = {}) {
    if (!TOOLS.includes(name)) return;
    this.tool = name;
    this.pending = null;
    this.cursor = null;
    if (name === "measure" && probe) this._probe();
    this.el.dataset.tool = name;
    this.dispatchEvent(new Event("tool"));
    this._queueDraw();
  }

  _probe() {
    if (this.frame && !this.cursor) this.cursor = { x: this.frame.width / 2, y: this.frame.height / 2 };
  }

  /** The window in use now: {center, width}. */
  currentWindow() {
    if (this.window) return this.window;
    if (this.img && this.frame) return defaultWindow(this.img, this.frame);
    return null;
  }

  /** Use this window for every slice until reset. */
  setWindow(w) {
    if (!w || !Number.isFinite(w.center) || !Number.isFinite(w.width)) return;
    this.window = { center: w.center, width: Math.max(1, w.width) };
    this._render();
  }

  /** Back to each image's own window and the fitted view. */
  reset() {
    this.window = null;
    this.fit();
    this._render();
  }

  fit() {
    this.fitted = true;
    this.pan = { x: 0, y: 0 };
    this._fitScale();
    this._queueDraw();
  }

  /** Zoom by factor f about a point of the canvas (CSS px; default its centre). */
  zoomAt(f, cx, cy) {
    const rect = this._size();
    const px = (cx ?? rect.w / 2) - rect.w / 2;
    const py = (cy ?? rect.h / 2) - rect.h / 2;
    const next = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * f));
    const k = next / this.scale;
    // Keep the image point under (cx, cy) where it is.
    this.pan = { x: px - (px - this.pan.x) * k, y: py - (py - this.pan.y) * k };
    this.scale = next;
    this.fitted = false;
    this._queueDraw();
  }

  panBy(dx, dy) {
    this.pan = { x: this.pan.x + dx, y: this.pan.y + dy };
    this.fitted = false;
    this._queueDraw();
  }

  /** Measurements on the slice shown: [{a, b, length: {value, unit}}]. */
  currentLengths() {
    return (this.lengths.get(this._key()) ?? []).map((m) => ({ ...m, length: lengthOf(m.a, m.b, this.img?.header) }));
  }

  clearLengths() {
    this.lengths.delete(this._key());
    this.pending = null;
    this._queueDraw();
  }

  /** Start cine through the current instance's frames (or the stack when single frames). */
  play() {
    if (this.playing || !this.canPlay()) return;
    this.playing = true;
    const fps = this.fps();
    let last = performance.now();
    let busy = false;
    const tick = async (now) => {
      if (!this.playing) return;
      if (!busy && now - last >= 1000 / fps) {
        last = now;
        busy = true;
        if (this.frames > 1) await this._show(this.index, (this.frameIndex + 1) % this.frames);
        else await this._show((this.index + 1) % this.slices.length, 0);
        busy = false;
      }
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    this.dispatchEvent(new Event("cine"));
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    this.dispatchEvent(new Event("cine"));
  }

  canPlay() {
    return this.frames > 1 || this.slices.length > 1;
  }

  /** Frames per second of cine: from Frame Time (or Cine Rate), else 10. */
  fps() {
    const ms = this.img?.header?.frameTimeMs;
    const fps = ms > 0 ? 1000 / ms : 10;
    return Math.min(60, Math.max(1, Math.round(fps * 10) / 10));
  }

  /** Where image point (x, y) is on the page (client px): for tests and the keyboard probe. */
  clientPoint(x, y) {
    const r = this.canvas.getBoundingClientRect();
    const p = this._toCanvas(x, y);
    return { x: r.left + p.x, y: r.top + p.y };
  }

  // ---- loading and drawing ------------------------------------------------------------------

  async _show(index, frameIndex) {
    const ref = this.slices[index];
    if (ref === undefined) return;
    const token = ++this._token;
    this.index = index;
    this.frameIndex = frameIndex;
    this._overlay();
    const img = await this.images.get(ref);
    if (token !== this._token) return;
    const frame = img.displayable ? await img.frame(frameIndex) : null;
    if (token !== this._token) return;
    const sizeChanged = !this.frame || !frame || frame.width !== this.frame.width || frame.height !== this.frame.height;
    this.img = img;
    this.frame = frame;
    this.frames = img.header?.frames ?? 1;
    if (this.cursor && frame) {
      this.cursor = { x: Math.min(this.cursor.x, frame.width - 0.5), y: Math.min(this.cursor.y, frame.height - 0.5) };
    }
    if (sizeChanged && this.fitted) this._fitScale();
    this._render();
    this.dispatchEvent(new Event("slice"));
    // Read the neighbours while the doctor looks: the next step of a scroll is then at hand
    // (on the stick each read is a decryption).
    for (const j of [index + 1, index - 1]) {
      if (j >= 0 && j < this.slices.length) this.images.get(this.slices[j]);
    }
  }

  _render() {
    const frame = this.frame;
    // The message replaces the picture at once (not on the next animation frame), so there is
    // never a moment of blank canvas with nothing said.
    this.message.hidden = !!frame || !this.img;
    if (!frame) {
      this._offscreen.width = 1;
      this._offscreen.height = 1;
      this._queueDraw();
      this._overlay();
      return;
    }
    const data = renderFrame(this.img, frame, this.currentWindow());
    this._offscreen.width = frame.width;
    this._offscreen.height = frame.height;
    this._offscreen.getContext("2d").putImageData(data, 0, 0);
    this._queueDraw();
    this._overlay();
  }

  _aspect() {
    // Non-square pixels are drawn at their true shape: rows are this many columns tall.
    const s = this.img?.header?.pixelSpacing;
    return s && s[0] > 0 && s[1] > 0 ? s[0] / s[1] : 1;
  }

  _size() {
    return { w: this.canvas.clientWidth || 1, h: this.canvas.clientHeight || 1 };
  }

  _fitScale() {
    if (!this.frame) return;
    const { w, h: hh } = this._size();
    this.scale = Math.min(w / this.frame.width, hh / (this.frame.height * this._aspect())) || 1;
  }

  _resize() {
    const dpr = globalThis.devicePixelRatio || 1;
    const { w, h: hh } = this._size();
    this.canvas.width = Math.max(1, Math.round(w * dpr));
    this.canvas.height = Math.max(1, Math.round(hh * dpr));
    if (this.fitted) this._fitScale();
    this._draw();
  }

  _toCanvas(x, y) {
    const { w, h: hh } = this._size();
    const fw = this.frame?.width ?? 1;
    const fh = this.frame?.height ?? 1;
    const a = this._aspect();
    return {
      x: w / 2 + this.pan.x + (x - fw / 2) * this.scale,
      y: hh / 2 + this.pan.y + (y - fh / 2) * this.scale * a,
    };
  }

  _toImage(cx, cy) {
    const { w, h: hh } = this._size();
    const fw = this.frame?.width ?? 1;
    const fh = this.frame?.height ?? 1;
    const a = this._aspect();
    return {
      x: (cx - w / 2 - this.pan.x) / this.scale + fw / 2,
      y: (cy - hh / 2 - this.pan.y) / (this.scale * a) + fh / 2,
    };
  }

  _queueDraw() {
    if (this._drawQueued) return;
    this._drawQueued = true;
    requestAnimationFrame(() => {
      this._drawQueued = false;
      this._draw();
    });
  }

  _draw() {
    const ctx = this.canvas.getContext("2d");
    const dpr = globalThis.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.frame) {
      this._messageText();
      return;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const p = this._toCanvas(0, 0);
    // Enlarged pixels stay sharp squares (what a radiologist expects); shrinking smooths.
    ctx.imageSmoothingEnabled = this.scale < 1;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(this._offscreen, p.x, p.y, this.frame.width * this.scale, this.frame.height * this.scale * this._aspect());
    this._drawLengths(ctx);
    if (this.cursor) {
      const c = this._toCanvas(this.cursor.x, this.cursor.y);
      ctx.strokeStyle = "#ffd400";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(c.x - 8, c.y);
      ctx.lineTo(c.x + 8, c.y);
      ctx.moveTo(c.x, c.y - 8);
      ctx.lineTo(c.x, c.y + 8);
      ctx.stroke();
    }
  }

  _drawLengths(ctx) {
    const all = [...(this.lengths.get(this._key()) ?? [])];
    if (this.pending?.b) all.push(this.pending);
    ctx.lineWidth = 2;
    ctx.font = "14px system-ui, sans-serif";
    for (const m of all) {
      const a = this._toCanvas(m.a.x, m.a.y);
      const b = this._toCanvas(m.b.x, m.b.y);
      ctx.strokeStyle = "#ffd400";
      ctx.beginPath();
      ctx.moveTo(a.x, a.y);
      ctx.lineTo(b.x, b.y);
      ctx.stroke();
      for (const q of [a, b]) ctx.strokeRect(q.x - 3, q.y - 3, 6, 6);
      const text = formatLength(lengthOf(m.a, m.b, this.img.header), this.img.header, true);
      ctx.fillStyle = "#000";
      ctx.fillText(text, b.x + 7, b.y + 1);
      ctx.fillStyle = "#ffd400";
      ctx.fillText(text, b.x + 6, b.y);
    }
  }

  _messageText() {
    if (!this.img) return;
    const r = this.img.reason;
    this.message.textContent = r ? pick(r) : t("loading");
    this.message.lang = language() === "zh" ? "zh-CN" : "en";
  }

  _key() {
    return `${this.slices[this.index]}#${this.frameIndex}`;
  }

  _overlay() {
    const n = this.slices.length;
    const lines = [];
    if (n) lines.push(t("sliceOf", { n: this.index + 1, total: n }));
    if (this.frames > 1) lines.push(t("frameOf", { n: this.frameIndex + 1, total: this.frames }));
    this.topLeft.textContent = lines.join("\n");
    const w = this.frame?.samples === 1 ? this.currentWindow() : null;
    const right = [];
    if (w) right.push(t("wl", { width: round(w.width), center: round(w.center) }));
    if (this.frame) right.push(t("zoomPct", { pct: Math.round(this.scale * 100) }));
    this.topRight.textContent = right.join("\n");
    const ms = this.currentLengths();
    this.bottomRight.textContent = ms.length && this.img ? formatLength(ms[ms.length - 1].length, this.img.header) : "";
    this._value();
    if (!this.frame) this._messageText();
  }

  _value() {
    const p = this.cursor ?? this.pointerAt;
    if (!p || !this.frame) {
      this.bottomLeft.textContent = "";
      return;
    }
    const v = this.frame.valueAt(p.x, p.y);
    this.bottomLeft.textContent = v === null || v === undefined ? "" : formatValue(v, this.img.header, p);
  }

  // ---- input --------------------------------------------------------------------------------

  _bind() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("pointerdown", (e) => this._down(e));
    c.addEventListener("pointermove", (e) => this._move(e));
    c.addEventListener("pointerup", (e) => this._up(e));
    c.addEventListener("pointercancel", (e) => this._up(e));
    c.addEventListener("pointerleave", (e) => {
      if (!this._pointers.size && e.pointerType === "mouse") {
        this.pointerAt = null;
        this._value();
      }
    });
    c.addEventListener("wheel", (e) => this._onWheel(e), { passive: false });
    this.el.addEventListener("keydown", (e) => this._key_(e));
  }

  _local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  _down(e) {
    this.el.focus({ preventScroll: true });
    const at = this._local(e);
    this.canvas.setPointerCapture?.(e.pointerId);
    this._pointers.set(e.pointerId, at);
    if (this._pointers.size === 2) {
      // Two fingers: pinch zoom and pan together; whatever one finger was doing stops.
      const [p, q] = [...this._pointers.values()];
      this._pinch = { dist: Math.hypot(p.x - q.x, p.y - q.y) || 1, mid: { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 } };
      this._drag = null;
      this.pending = null;
      return;
    }
    if (this._pointers.size > 2) return;
    const mode = e.button === 2 ? "window" : e.button === 1 ? "pan" : this.tool;
    this._drag = { mode, last: at, start: at, acc: 0, window: this.currentWindow() };
    if (mode === "measure" && this.frame) {
      const p = this._toImage(at.x, at.y);
      if (this.pending && !this.pending.dragging) {
        this._finishLength(p); // second click of a click-click length
        this._drag = null;
      } else {
        this.pending = { a: p, b: null, dragging: true };
      }
    }
    e.preventDefault();
  }

  _move(e) {
    const at = this._local(e);
    if (this.frame && e.pointerType === "mouse") {
      this.pointerAt = this._toImage(at.x, at.y);
      if (!this.cursor) this._value();
    }
    if (!this._pointers.has(e.pointerId)) {
      if (this.pending && !this.pending.dragging && this.frame) {
        this.pending.b = this._toImage(at.x, at.y);
        this._queueDraw();
      }
      return;
    }
    this._pointers.set(e.pointerId, at);
    if (this._pinch && this._pointers.size >= 2) {
      const [p, q] = [...this._pointers.values()];
      const dist = Math.hypot(p.x - q.x, p.y - q.y) || 1;
      const mid = { x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 };
      this.panBy(mid.x - this._pinch.mid.x, mid.y - this._pinch.mid.y);
      this.zoomAt(dist / this._pinch.dist, mid.x, mid.y);
      this._pinch = { dist, mid };
      this._overlay();
      return;
    }
    const d = this._drag;
    if (!d) return;
    const dx = at.x - d.last.x;
    const dy = at.y - d.last.y;
    d.last = at;
    if (d.mode === "scroll") {
      // One slice per 12 px of travel (a finger swipe or a drag); up goes back.
      d.acc += dy;
      const steps = Math.trunc(d.acc / 12);
      if (steps) {
        d.acc -= steps * 12;
        this.step(steps);
      }
    } else if (d.mode === "window" && this.frame?.samples === 1) {
      const w = this.currentWindow();
      const range = Math.max(1, this.frame.max - this.frame.min);
      const k = Math.max(range / 512, 0.02);
      this.setWindow({ center: w.center + dy * k, width: Math.max(1, w.width + dx * k) });
    } else if (d.mode === "zoom") {
      this.zoomAt(Math.exp(-dy / 150), d.start.x, d.start.y);
      this._overlay();
    } else if (d.mode === "pan") {
      this.panBy(dx, dy);
    } else if (d.mode === "measure" && this.pending) {
      this.pending.b = this._toImage(at.x, at.y);
      this._queueDraw();
    }
  }

  _up(e) {
    if (!this._pointers.has(e.pointerId)) return;
    this._pointers.delete(e.pointerId);
    if (this._pointers.size < 2) this._pinch = null;
    const d = this._drag;
    this._drag = null;
    if (d?.mode === "measure" && this.pending) {
      const at = this._local(e);
      const moved = Math.hypot(at.x - d.start.x, at.y - d.start.y);
      if (moved > 4) this._finishLength(this._toImage(at.x, at.y));
      else this.pending.dragging = false; // a click: the next click ends the length
    } else if (d && e.pointerType !== "mouse" && this.frame) {
      // A tap (no hover on touch screens) reads the value where the finger was.
      const at = this._local(e);
      if (Math.hypot(at.x - d.start.x, at.y - d.start.y) <= 4) {
        this.pointerAt = this._toImage(at.x, at.y);
        this._value();
      }
    }
  }

  _finishLength(b) {
    const a = this.pending.a;
    this.pending = null;
    const key = this._key();
    if (!this.lengths.has(key)) this.lengths.set(key, []);
    this.lengths.get(key).push({ a, b });
    this._queueDraw();
    this._overlay();
    this.dispatchEvent(new Event("length"));
  }

  _onWheel(e) {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey) {
      const at = this._local(e);
      this.zoomAt(Math.exp(-e.deltaY / 300), at.x, at.y);
      this._overlay();
      return;
    }
    // A mouse notch is one slice; a trackpad's small deltas add up to one.
    const dy = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaY;
    if (Math.abs(dy) >= 50) {
      this._wheel = 0;
      this.step(Math.sign(dy));
      return;
    }
    this._wheel += dy;
    if (Math.abs(this._wheel) >= 50) {
      this.step(Math.sign(this._wheel));
      this._wheel = 0;
    }
  }

  _key_(e) {
    const k = e.key;
    const handled = () => {
      e.preventDefault();
      e.stopPropagation();
    };
    const arrows = { ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0] };
    if (k in arrows) {
      const [ax, ay] = arrows[k];
      if (e.ctrlKey || e.metaKey) {
        const w = this.currentWindow();
        if (w && this.frame?.samples === 1) {
          const stepSize = Math.max(1, (this.frame.max - this.frame.min) / 100);
          this.setWindow({ center: w.center - ay * stepSize, width: Math.max(1, w.width + ax * stepSize) });
        }
      } else if (e.shiftKey && this.tool !== "measure") {
        this.panBy(ax * 20, ay * 20);
      } else if (this.tool === "measure" && this.cursor) {
        const s = e.shiftKey ? 10 : 1;
        this.cursor = {
          x: Math.min(this.frame.width - 0.5, Math.max(0.5, this.cursor.x + ax * s)),
          y: Math.min(this.frame.height - 0.5, Math.max(0.5, this.cursor.y + ay * s)),
        };
        if (this.pending) this.pending.b = { ...this.cursor };
        this._value();
        this._queueDraw();
      } else {
        this.step(ax + ay);
      }
      return handled();
    }
    switch (k) {
      case "PageUp": this.step(-10); return handled();
      case "PageDown": this.step(10); return handled();
      case "Home": this.goTo(0); return handled();
      case "End": this.goTo(this.count - 1); return handled();
      case "+": case "=": this.zoomAt(1.25); this._overlay(); return handled();
      case "-": case "_": this.zoomAt(0.8); this._overlay(); return handled();
      case "0": this.fit(); this._overlay(); return handled();
      case " ":
        if (this.playing) this.pause();
        else this.play();
        return handled();
      case "Enter":
        if (this.tool === "measure" && this.frame) {
          this._probe();
          if (this.pending) this._finishLength({ ...this.cursor });
          else this.pending = { a: { ...this.cursor }, b: { ...this.cursor }, dragging: false };
          this._queueDraw();
          return handled();
        }
        return undefined;
      case "Escape":
        if (this.pending) {
          this.pending = null;
          this._queueDraw();
          return handled();
        }
        return undefined;
      default:
        return undefined;
    }
  }
}

function round(v) {
  return Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 10) / 10;
}
