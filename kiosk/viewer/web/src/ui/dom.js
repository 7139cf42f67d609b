// A small element builder, so the UI modules read as the DOM they make.
import { label } from "../i18n.js";

/**
 * Make an element.
 * @param {string} tag "div", "button.primary#open" (classes and id after the tag)
 * @param {object} [props] attributes; `i18n`: a text key, `i18nParams`, `i18nAttr` {attr: key},
 *   `on`: {event: handler}, `text`: plain text, `style`: an object
 * @param {...(Node|string|null|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const [, name, rest] = tag.match(/^([a-z0-9-]+)(.*)$/i);
  const el = document.createElement(name);
  for (const m of rest.matchAll(/([.#])([\w-]+)/g)) {
    if (m[1] === ".") el.classList.add(m[2]);
    else el.id = m[2];
  }
  const { i18n, i18nParams, i18nAttr, on, text, style, ...attrs } = props ?? {};
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  if (style) Object.assign(el.style, style);
  if (on) for (const [ev, fn] of Object.entries(on)) el.addEventListener(ev, fn);
  if (text !== undefined) el.textContent = text;
  if (i18n || i18nAttr) label(el, i18n ?? null, i18nParams, i18nAttr);
  for (const c of children) if (c !== null && c !== false && c !== undefined) el.append(c);
  return el;
}

/** Remove every child of el. */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}
