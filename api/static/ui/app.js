// The console shell: navigation, collection picker, language switch. Each view lives in views/<name>.js.

import { t, lang, setLang } from "./i18n.js";
import { el, state, guarded, clearNotice, refreshMe, refreshCollections, setCollection } from "./ui.js";
import * as collections from "./views/collections.js";
import * as upload from "./views/upload.js";
import * as search from "./views/search.js";
import * as ask from "./views/ask.js";
import * as documents from "./views/documents.js";
import * as keys from "./views/keys.js";

const VIEWS = { collections, upload, search, ask, documents, key: keys };

function current() {
  const name = location.hash.replace(/^#\/?/, "").split("/")[0];
  return VIEWS[name] ? name : "collections";
}

// A read-only key gets no upload entry at all (the server would refuse it anyway).
function canWriteSomewhere() {
  return state.me.scope !== "read" && state.me.collections.length > 0;
}

function drawNav() {
  const active = current();
  document.getElementById("nav").replaceChildren(
    ...Object.keys(VIEWS).filter((name) => name !== "upload" || canWriteSomewhere()).map((name) =>
      el("a", { href: `#/${name}`, "aria-current": name === active ? "page" : false }, t(name))));
  const button = document.getElementById("lang");
  button.textContent = t("switch_lang");
  button.setAttribute("aria-label", t("switch_lang_label"));
  document.querySelector("label[for=collection]").textContent = t("collection");
}

function drawPicker() {
  const select = document.getElementById("collection");
  select.replaceChildren(...state.collections.map((c) =>
    el("option", { value: c.name, selected: c.name === state.collection }, c.name)));
  select.disabled = state.collections.length === 0;
}

async function render(keepNotice = false) {
  if (!keepNotice) clearNotice();
  drawNav();
  drawPicker();
  const view = document.getElementById("view");
  view.replaceChildren();
  await guarded(() => VIEWS[current()].render(view));
}

async function start() {
  setLang(lang());
  document.getElementById("lang").addEventListener("click", () => { setLang(lang() === "zh" ? "en" : "zh"); render(); });
  document.getElementById("collection").addEventListener("change", (e) => { setCollection(e.target.value); render(); });
  document.addEventListener("zhiku:collections", drawPicker);
  document.addEventListener("zhiku:key", async () => { await guarded(async () => { await refreshMe(); await refreshCollections(); }); render(true); });
  window.addEventListener("hashchange", () => render());
  await guarded(async () => { await refreshMe(); await refreshCollections(); });
  await render(true);
  document.body.dataset.ready = "1";
}

start();
