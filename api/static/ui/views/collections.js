// Collections: the list with their stats; create and delete for admin keys.

import { del, post } from "../api.js";
import { t } from "../i18n.js";
import { el, state, can, guarded, notify, explain, refreshCollections, setCollection, heading } from "../ui.js";

export async function render(view) {
  const rows = await refreshCollections();
  const admin = can("admin", "*") || state.me.collections.some((c) => can("admin", c));
  view.append(heading("collections"));
  if (admin) view.append(createForm(view));
  if (!rows.length) { view.append(el("p", {}, t("no_collections"))); return; }
  const fusion = state.me.defaults.fusion || "";
  view.append(el("table", { class: "grid" },
    el("thead", {}, el("tr", {}, ["name", "documents", "chunks", "model", "fusion", "actions"].map((k) => el("th", { scope: "col" }, t(k))))),
    el("tbody", {}, rows.map((c) => el("tr", {},
      el("td", {}, el("a", { href: "#/search", onclick: () => setCollection(c.name) }, c.name)),
      el("td", { class: "num" }, c.documents),
      el("td", { class: "num" }, c.chunks),
      el("td", {}, c.model || "—"),
      el("td", {}, fusion),
      el("td", {}, can("admin", c.name)
        ? el("button", { type: "button", class: "danger", "aria-label": `${t("delete")} ${c.name}`, onclick: () => remove(view, c.name) }, t("delete"))
        : ""),
    )))));
}

function createForm(view) {
  const input = el("input", { id: "new-collection", name: "name", required: true, pattern: "[A-Za-z0-9_.\\-]{1,64}", autocomplete: "off" });
  return el("form", { class: "row", onsubmit: async (e) => {
    e.preventDefault();
    const name = input.value.trim();
    const ok = await guarded(() => post("/collections", { name }));
    if (ok) { setCollection(name); notify(t("created", { name }), "ok"); rerender(view); }
  } },
  el("label", { for: "new-collection" }, t("create_collection")), input,
  el("button", { type: "submit" }, t("create")));
}

async function remove(view, name) {
  if (!confirm(t("confirm_delete", { name }))) return;
  const ok = await guarded(() => del(`/collections/${encodeURIComponent(name)}`));
  if (ok) { notify(t("deleted", { name }), "ok"); rerender(view); }
}

async function rerender(view) {
  view.replaceChildren();
  try { await render(view); } catch (err) { notify(explain(err)); }
}
