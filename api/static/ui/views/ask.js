// Ask: the answer streams in over SSE; references first; each [n] opens the cited passage;
// a refusal says why in words and shows the best passages; follow-ups carry the history.

import { marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.es.js";
import { get, post, query, stream } from "../api.js";
import { t, has } from "../i18n.js";
import { el, state, guarded, explain, notify, highlight, termsOf, heading } from "../ui.js";
import { hitItem } from "./search.js";

let history = [];   // [{role, content}] of this conversation, sent with every follow-up
let chatOf = "";    // the collection the history belongs to

export async function render(view) {
  view.append(heading("ask"));
  if (!state.collection) { view.append(el("p", {}, t("no_collection"))); return; }
  if (chatOf !== state.collection) { history = []; chatOf = state.collection; }
  const log = el("ol", { class: "chat", id: "chat", "aria-live": "polite" });
  const dialog = el("dialog", { id: "cited", "aria-labelledby": "cited-title" });
  const question = el("textarea", { id: "question", rows: 2, required: true });
  const form = el("form", { class: "ask-form", onsubmit: (e) => { e.preventDefault(); send(); } },
    el("label", { for: "question" }, t("question")), question,
    el("div", { class: "row" },
      el("button", { type: "submit", id: "send" }, t("send")),
      el("button", { type: "button", class: "plain", onclick: () => { history = []; log.replaceChildren(); } }, t("new_chat"))));
  question.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit(); } });
  view.append(log, form, dialog);
  for (let i = 0; i + 1 < history.length; i += 2) log.append(userTurn(history[i].content), el("li", { class: "turn bot" }, renderMarkdown(history[i + 1].content)));
  question.focus();

  async function send() {
    const text = question.value.trim();
    if (!text) return;
    question.value = "";
    const refs = el("div", { class: "refs" });
    const answer = el("div", { class: "answer", "aria-busy": "true" }, t("thinking"));
    const extra = el("div", {});
    const bot = el("li", { class: "turn bot" }, refs, answer, extra);
    log.append(userTurn(text), bot);
    let sources = [];
    let draft = "";
    const open = (n) => openCitation(dialog, n, sources, bot.citations || []);
    try {
      await stream("/ask", { question: text, collection: state.collection, history, stream: true }, (event, data) => {
        if (event === "references") { sources = data.sources; refs.replaceChildren(referenceList(sources, open)); }
        if (event === "token") { draft += data.text; answer.replaceChildren(renderMarkdown(draft, open)); }
        if (event === "done") { bot.citations = data.citations; showDone(data, text, answer, extra, open); }
      });
    } catch (err) {
      answer.replaceChildren(el("p", { class: "error" }, explain(err)));
    } finally {
      answer.removeAttribute("aria-busy");
    }
  }
}

function userTurn(text) {
  return el("li", { class: "turn user" }, el("span", { class: "visually-hidden" }, t("you") + ": "), text);
}

function referenceList(sources, open) {
  return el("details", { open: true },
    el("summary", {}, `${t("references")} (${sources.length})`),
    el("ol", {}, sources.map((s) => el("li", {},
      el("button", { type: "button", class: "link", onclick: () => open(s.n) }, `[${s.n}] ${s.title || s.doc_id}`),
      s.section ? el("span", { class: "muted" }, ` · ${s.section}`) : ""))));
}

// Markdown to sanitized DOM (marked, then DOMPurify), with every [n] turned into a button.
export function renderMarkdown(text, open) {
  const box = el("div", { class: "md" });
  box.append(DOMPurify.sanitize(marked.parse(text, { async: false }), { RETURN_DOM_FRAGMENT: true }));
  if (open) linkCitations(box, open);
  return box;
}

function linkCitations(root, open) {
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const nodes = [];
  while (walker.nextNode()) if (/\[\d+\]/.test(walker.currentNode.nodeValue)) nodes.push(walker.currentNode);
  for (const node of nodes) {
    const parts = node.nodeValue.split(/(\[\d+\])/);
    node.replaceWith(...parts.map((p) => {
      const m = /^\[(\d+)\]$/.exec(p);
      return m ? el("button", { type: "button", class: "cite", "aria-label": `${t("cited")} ${m[1]}`, onclick: () => open(Number(m[1])) }, p) : document.createTextNode(p);
    }));
  }
}

async function showDone(done, question, answer, extra, open) {
  history.push({ role: "user", content: question }, { role: "assistant", content: done.answer });
  const mode = done.mode || (done.refused ? "refusal" : "answer");
  if (mode === "refusal" || done.refused) {
    const code = done.refusal_reason || "";
    const reason = has("refusal." + code) ? t("refusal." + code) : t("refusal.unknown") + (code ? ` (${code})` : "");
    answer.replaceChildren(el("div", { class: "refusal" }, el("strong", {}, t("refused") + ": "), el("span", { class: "reason" }, reason)));
    const found = await guarded(() => post("/search", { query: question, collection: state.collection, top_k: 3 }));
    if (found && found.hits.length) {
      extra.replaceChildren(el("h2", { class: "small-heading" }, t("best_passages")),
        el("ol", { class: "hits" }, found.hits.map((h) => hitItem(h, termsOf(question)))));
    }
    return;
  }
  const body = renderMarkdown(done.answer, open);
  if (mode === "quote") answer.replaceChildren(el("figure", { class: "quote" }, el("figcaption", {}, t("quote")), el("blockquote", {}, body)));
  else answer.replaceChildren(body);
}

// The cited chunk in a dialog, its supporting passage (the citation's snippet) highlighted.
async function openCitation(dialog, n, sources, citations) {
  const cite = citations.find((c) => c.n === n) || sources.find((s) => s.n === n);
  if (!cite) { notify(`[${n}]?`); return; }
  const doc = await guarded(() => get(`/documents/${encodeURIComponent(cite.doc_id)}?${query({ collection: state.collection })}`));
  if (!doc) return;
  const chunk = doc.chunks.find((c) => c.chunk_id === cite.chunk_id) || { text: doc.text, section: "" };
  const passage = el("p", { class: "passage" });
  const snippet = (cite.snippet || "").trim();
  const at = snippet ? chunk.text.indexOf(snippet) : -1;
  if (at >= 0) {
    passage.append(chunk.text.slice(0, at), el("mark", { class: "support" }, snippet), chunk.text.slice(at + snippet.length));
  } else {
    passage.append(...highlight(chunk.text, snippet ? termsOf(snippet) : []));
  }
  dialog.replaceChildren(
    el("h2", { id: "cited-title" }, `[${n}] ${doc.title || doc.doc_id}`),
    chunk.section ? el("p", { class: "muted" }, chunk.section) : "",
    passage,
    el("p", { class: "muted small" }, doc.source || doc.doc_id),
    el("form", { method: "dialog" }, el("button", { type: "submit" }, t("close"))));
  if (!dialog.open) dialog.showModal();
}
