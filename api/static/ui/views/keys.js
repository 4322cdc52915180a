// API key: kept in this tab's session storage, sent as a Bearer token; shows what the key may do.

import { getKey, setKey } from "../api.js";
import { t } from "../i18n.js";
import { el, state, notify, heading } from "../ui.js";

export async function render(view) {
  view.append(heading("key"));
  const input = el("input", { id: "api-key", type: "password", autocomplete: "off", value: getKey(), "aria-describedby": "key-help" });
  const changed = () => document.dispatchEvent(new CustomEvent("zhiku:key"));
  view.append(
    el("form", { class: "row", onsubmit: (e) => { e.preventDefault(); setKey(input.value.trim()); notify(t("saved"), "ok"); changed(); } },
      el("label", { for: "api-key" }, t("key")), input,
      el("button", { type: "submit" }, t("save")),
      el("button", { type: "button", class: "plain", onclick: () => { setKey(""); input.value = ""; notify(t("cleared"), "ok"); changed(); } }, t("clear"))),
    el("p", { id: "key-help", class: "muted" }, t("key_help")),
    el("p", { id: "key-scope" }, state.me.keys_enabled
      ? t("scope_of", { scope: state.me.scope, collections: state.me.collections.join(", ") })
      : t("open_access")));
}
