// Documents: browse a page at a time, filter by metadata, open one (text, chunks, metadata), delete.

import { del, get, query } from "../api.js";
import { t } from "../i18n.js";
import { el, state, can, guarded, notify, heading } from "../ui.js";

const PAGE = 50;

export async function render(view) {
  view.append(heading("documents"));
  if (!state.collection) { view.append(el("p", {}, t("no_collection"))); return; }
  const filter = el("input", { id: "doc-filter", type: "text", autocomplete: "off", "aria-describedby": "filter-help" });
  const list = el("section", { id: "doc-list" });
  let offset = 0;
  const load = async () => {
    const filters = parseFilter(filter.value);
    const page = await guarded(() => get(`/documents?${query({ collection: state.collection, offset, limit: PAGE, filters: filters && JSON.stringify(filters) })}`));
    if (page) list.replaceChildren(table(page, view, load), pager());
  };
  const pager = () => el("div", { class: "row" },
    el("button", { type: "button", disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, t("previous")),
    el("span", {}, t("page", { from: offset + 1 })),
    el("button", { type: "button", onclick: () => { offset += PAGE; load(); } }, t("next")));
  view.append(
    el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); offset = 0; load(); } },
      el("label", { for: "doc-filter" }, t("filter")), filter, el("button", { type: "submit" }, t("apply")),
      el("span", { id: "filter-help", class: "muted small" }, t("filter_help"))),
    list);
  await load();
}

// "lang=en, year=2020" -> {"lang": "en", "year": 2020}; a value in JSON syntax keeps its type.
export function parseFilter(text) {
  const out = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq < 1) continue;
    const raw = part.slice(eq + 1).trim();
    let value = raw;
    try { value = JSON.parse(raw); } catch { /* a bare word is a string */ }
    out[part.slice(0, eq).trim()] = value;
  }
  return Object.keys(out).length ? out : null;
}

function table(page, view, reload) {
  if (!page.documents.length) return el("p", {}, t("no_documents"));
  const write = can("write");
  return el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["doc_id", "title", "source", "chunks", "metadata", "actions"].map((k) => el("th", { scope: "col" }, t(k))))),
    el("tbody", {}, page.documents.map((d) => el("tr", {},
      el("td", {}, el("button", { type: "button", class: "link", onclick: () => openDoc(view, d.doc_id) }, d.doc_id)),
      el("td", {}, d.title), el("td", {}, d.source), el("td", { class: "num" }, d.chunk_count),
      el("td", { class: "small" }, Object.entries(d.metadata).filter(([k]) => !["title", "source"].includes(k)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")),
      el("td", {}, write ? el("button", { type: "button", class: "danger", "aria-label": `${t("delete")} ${d.doc_id}`, onclick: () => remove(d.doc_id, reload) }, t("delete")) : "")))));
}

async function openDoc(view, docId) {
  const doc = await guarded(() => get(`/documents/${encodeURIComponent(docId)}?${query({ collection: state.collection })}`));
  if (!doc) return;
  const back = async () => { view.replaceChildren(); await guarded(() => render(view)); };
  view.replaceChildren(
    el("button", { type: "button", class: "plain", onclick: back }, `← ${t("back")}`),
    el("h1", {}, doc.title || doc.doc_id),
    el("dl", { class: "meta" },
      el("dt", {}, t("doc_id")), el("dd", {}, doc.doc_id),
      el("dt", {}, t("source")), el("dd", {}, doc.source || "—"),
      el("dt", {}, t("metadata")), el("dd", {}, el("code", {}, JSON.stringify(doc.metadata)))),
    el("h2", {}, `${t("chunks")} (${doc.chunks.length})`),
    el("ol", { class: "chunks" }, doc.chunks.map((c) => el("li", {},
      c.section ? el("div", { class: "muted small" }, c.section) : "", el("p", {}, c.text)))));
}

async function remove(docId, reload) {
  if (!confirm(t("confirm_delete", { name: docId }))) return;
  const ok = await guarded(() => del(`/documents/${encodeURIComponent(docId)}?${query({ collection: state.collection })}`));
  if (ok) { notify(t("deleted", { name: docId }), "ok"); reload(); }
}
