// Search: mode, fusion and α; hits with the query's terms highlighted; a debug view of each leg and stage.

import { post } from "../api.js";
import { t } from "../i18n.js";
import { el, state, guarded, highlight, termsOf, heading } from "../ui.js";

export async function render(view) {
  view.append(heading("search"));
  if (!state.collection) { view.append(el("p", {}, t("no_collection"))); return; }
  const d = state.me.defaults || {};
  const q = el("input", { id: "q", type: "search", name: "query", required: true, autocomplete: "off" });
  const mode = select("mode", ["hybrid", "dense", "bm25"].map((m) => [m, t(m)]), "hybrid");
  const fusion = select("fusion", [["convex", "convex"], ["rrf", "RRF"], ["dbsf", "DBSF"]], d.fusion || "convex");
  const alphaOut = el("output", { for: "alpha" }, String(d.alpha ?? 0.4));
  const alpha = el("input", { id: "alpha", type: "range", min: 0, max: 1, step: 0.05, value: d.alpha ?? 0.4,
    oninput: (e) => { alphaOut.textContent = e.target.value; } });
  const topK = el("input", { id: "top_k", type: "number", min: 1, max: 50, value: 10 });
  const debug = el("input", { id: "debug", type: "checkbox" });
  const results = el("section", { id: "results", "aria-live": "polite" });
  const form = el("form", { class: "search-form", onsubmit: (e) => { e.preventDefault(); run(); } },
    el("div", { class: "row grow" }, el("label", { for: "q" }, t("query")), q, el("button", { type: "submit" }, t("go"))),
    el("div", { class: "row" },
      el("label", { for: "mode" }, t("mode")), mode,
      el("label", { for: "fusion" }, t("fusion")), fusion,
      el("label", { for: "alpha" }, t("alpha")), alpha, alphaOut,
      el("label", { for: "top_k" }, t("top_k")), topK,
      debug, el("label", { for: "debug" }, t("debug"))));
  view.append(form, results);
  q.focus();

  async function run() {
    const body = { query: q.value, collection: state.collection, top_k: Number(topK.value), mode: mode.value, debug: debug.checked };
    if (mode.value === "hybrid") Object.assign(body, { fusion: fusion.value, alpha: Number(alpha.value) });
    const found = await guarded(() => post("/search", body));
    if (!found) return;
    const terms = termsOf(q.value);
    results.replaceChildren(found.hits.length ? el("ol", { class: "hits" }, found.hits.map((h) => hitItem(h, terms))) : el("p", {}, t("no_hits")));
    if (debug.checked) results.append(await debugView(body, found));
  }
}

function select(id, options, value) {
  return el("select", { id, name: id }, options.map(([v, label]) => el("option", { value: v, selected: v === value }, label)));
}

export function hitItem(hit, terms) {
  return el("li", { class: "hit" },
    el("div", { class: "hit-head" },
      el("strong", {}, hit.title || hit.doc_id),
      hit.section ? el("span", { class: "muted" }, ` · ${hit.section}`) : "",
      el("span", { class: "score", title: t("score") }, hit.score.toFixed(3))),
    el("p", { class: "hit-text" }, highlight(hit.text, terms)),
    el("div", { class: "muted small" }, hit.source || hit.doc_id));
}

// Each leg's own ranking (the same query run dense-only and BM25-only) next to the fused one, and stage timings.
async function debugView(body, fused) {
  const legs = {};
  for (const leg of ["dense", "bm25"]) {
    const res = await guarded(() => post("/search", { ...body, mode: leg, debug: false, fusion: undefined, alpha: undefined }));
    legs[leg] = new Map((res ? res.hits : []).map((h, i) => [h.chunk_id, [i + 1, h.score]]));
  }
  const cell = (leg, id) => { const r = legs[leg].get(id); return r ? `#${r[0]} (${r[1].toFixed(3)})` : "—"; };
  const timings = Object.entries(fused.timings_ms || {});
  return el("section", { class: "debug", "aria-label": t("debug") },
    el("h2", {}, t("legs")),
    el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, [t("rank"), t("hit"), t("fused"), t("dense"), t("bm25")].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, fused.hits.map((h, i) => el("tr", {},
        el("td", { class: "num" }, i + 1), el("td", {}, h.title || h.doc_id),
        el("td", { class: "num" }, h.score.toFixed(3)), el("td", {}, cell("dense", h.chunk_id)), el("td", {}, cell("bm25", h.chunk_id)))))),
    el("h2", {}, t("timings")),
    el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("stage")), el("th", { scope: "col" }, "ms"))),
      el("tbody", {}, timings.map(([k, v]) => el("tr", {}, el("td", {}, k.replace(/_ms$/, "")), el("td", { class: "num" }, v.toFixed(2)))))));
}
