// Shared helpers for the views: DOM building, console state, notices, permissions, highlighting.

import { get, ApiError } from "./api.js";
import { t, has } from "./i18n.js";

export const state = {
  collection: sessionStorage.getItem("zhiku.collection") || "",
  collections: [],
  me: { scope: "read", collections: [], keys_enabled: false, defaults: {} },
};

// el("p", {class: "x", onclick: fn}, "text", child): text is always a text node, never HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const RANK = { read: 0, write: 1, admin: 2 };

// Whether the console's key may do a `needed`-scope action on `collection` (mirrors the server's rule).
export function can(needed, collection = state.collection) {
  const me = state.me;
  const reach = me.collections.includes("*") || (collection && me.collections.includes(collection));
  return Boolean(reach) && RANK[me.scope] >= RANK[needed];
}

export function notify(message, kind = "error") {
  const box = document.getElementById("notice");
  box.className = "notice " + kind;
  box.replaceChildren(el("span", {}, message), el("button", { type: "button", class: "plain", onclick: () => { box.hidden = true; } }, t("close")));
  box.hidden = false;
}

export function clearNotice() { document.getElementById("notice").hidden = true; }

// An error as words for a person: the API's message, known codes translated, details listed.
export function explain(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  const known = has("error." + err.code) ? t("error." + err.code) + " " : "";
  const lines = [known + err.message];
  for (const e of err.details.errors || []) lines.push(`${e.file || e.loc || ""}: ${e.error || e.msg || e.code || ""}`);
  return lines.join("\n");
}

// Run fn; an error becomes a notice (which stays until the next navigation or its close button).
export async function guarded(fn) {
  try { return await fn(); } catch (err) { notify(explain(err)); return undefined; }
}

const NOBODY = { scope: "read", collections: [], keys_enabled: true, defaults: {} };

export async function refreshMe() {
  try { state.me = await get("/ui/me"); } catch (err) { state.me = NOBODY; state.collections = []; throw err; }
}

export async function refreshCollections() {
  const body = await get("/collections");
  state.collections = body.collections;
  const names = body.collections.map((c) => c.name);
  if (!names.includes(state.collection)) setCollection(names[0] || "");
  else document.dispatchEvent(new CustomEvent("zhiku:collections"));
  return body.collections;
}

export function setCollection(name) {
  state.collection = name;
  sessionStorage.setItem("zhiku.collection", name);
  document.dispatchEvent(new CustomEvent("zhiku:collections"));
}

// Query terms to highlight: words in Latin scripts, and each CJK run with its two-character pieces
// (the index cuts Chinese into words, so a bigram catches most of them without a dictionary here).
export function termsOf(text) {
  const terms = new Set();
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    for (const part of m[0].split(/([\p{Script=Han}]+)/u)) {
      if (!part) continue;
      if (/\p{Script=Han}/u.test(part)) {
        if (part.length <= 2) terms.add(part);
        for (let i = 0; i + 2 <= part.length; i++) terms.add(part.slice(i, i + 2));
      } else if (part.length >= 2) terms.add(part);
    }
  }
  return [...terms].sort((a, b) => b.length - a.length);
}

// `text` as nodes with every occurrence of `terms` in <mark>, built without innerHTML.
export function highlight(text, terms) {
  if (!terms.length) return [document.createTextNode(text)];
  const escaped = terms.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const re = new RegExp(`(${escaped.join("|")})`, "giu");
  // split() with one capture group puts the matches at the odd indices.
  return text.split(re).map((piece, i) => (i % 2 ? el("mark", {}, piece) : document.createTextNode(piece)));
}

export function heading(key) { return el("h1", {}, t(key)); }
