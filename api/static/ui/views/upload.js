// Upload: drop files or a folder; one progress bar per upload, following its job at /jobs/{id}.

import { get, upload } from "../api.js";
import { t } from "../i18n.js";
import { el, state, can, explain, heading } from "../ui.js";

const POLL_MS = 500;

export async function render(view) {
  view.append(heading("upload"));
  const name = state.collection;
  if (!name) { view.append(el("p", {}, t("no_collection"))); return; }
  if (!can("write", name)) { view.append(el("p", { class: "muted" }, t("no_write", { name }))); return; }
  const jobs = el("ul", { class: "jobs", "aria-label": t("upload") });
  const send = (files) => files.length && jobs.prepend(startUpload(name, files));
  const pick = el("input", { type: "file", id: "pick-files", multiple: true, class: "visually-hidden", onchange: (e) => { send([...e.target.files]); e.target.value = ""; } });
  const folder = el("input", { type: "file", id: "pick-folder", multiple: true, webkitdirectory: true, class: "visually-hidden", onchange: (e) => { send([...e.target.files]); e.target.value = ""; } });
  const zone = el("div", { class: "dropzone", id: "dropzone" },
    el("p", {}, t("drop_here")),
    el("p", {}, el("label", { for: "pick-files", class: "button" }, t("choose_files")), " ",
      el("label", { for: "pick-folder", class: "button" }, t("choose_folder"))),
    pick, folder,
    el("p", { class: "muted" }, t("upload_to", { name })));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    send(await droppedFiles(e.dataTransfer));
  });
  view.append(zone, jobs);
}

// Files from a drop, folders walked recursively (webkitGetAsEntry is how browsers expose dropped folders).
async function droppedFiles(transfer) {
  const entries = [...transfer.items].map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  if (!entries.length) return [...transfer.files];
  const out = [];
  const walk = async (entry) => {
    if (entry.isFile) out.push(await new Promise((ok, fail) => entry.file(ok, fail)));
    else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  };
  for (const entry of entries) await walk(entry);
  return out;
}

function startUpload(collection, files) {
  const bar = el("progress", { max: 1, value: 0, "aria-label": t("uploading") });
  const status = el("span", { class: "status", role: "status" }, t("uploading"));
  const details = el("div", {});
  const item = el("li", { class: "job" }, el("div", { class: "row" }, el("strong", {}, t("files_n", { n: files.length })), status), bar, details);
  const form = new FormData();
  form.append("collection", collection);
  for (const f of files) form.append("files", f, f.webkitRelativePath || f.name);
  upload("/documents", form, (fraction) => { bar.value = fraction * 0.5; })
    .then(({ status: code, body }) => (code === 202 ? follow(body.job.id, bar, status, details) : finish(body, bar, status, details)))
    .catch((err) => { bar.value = 1; item.classList.add("failed"); status.textContent = t("failed"); details.append(el("p", { class: "error" }, explain(err))); });
  return item;
}

async function follow(jobId, bar, status, details) {
  for (;;) {
    let job;
    try { job = await get(`/jobs/${jobId}`); } catch (err) { status.textContent = t("failed"); details.replaceChildren(el("p", { class: "error" }, explain(err))); return; }
    status.textContent = t(job.state);
    if (job.state === "queued") bar.value = 0.5;
    if (job.state === "running") bar.removeAttribute("value"); // indeterminate: the job reports no fraction
    if (job.state === "succeeded" || job.state === "failed") { finish(job, bar, status, details); return; }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// An inline result (201) or a finished job: counts, and each failed file with its reason.
function finish(result, bar, status, details) {
  bar.value = 1;
  const failed = result.state === "failed";
  status.textContent = t(failed ? "failed" : "succeeded");
  bar.closest("li").classList.add(failed ? "failed" : "done");
  const documents = result.documents ?? (result.doc_ids || []).length;
  details.replaceChildren(el("p", {}, t("job_summary", { documents, chunks: result.chunks ?? 0 })));
  if (result.message) details.append(el("p", { class: "error" }, result.message));
  const errors = result.errors || [];
  if (errors.length) {
    details.append(el("table", { class: "grid" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("file")), el("th", { scope: "col" }, t("reason")))),
      el("tbody", {}, errors.map((e) => el("tr", {}, el("td", {}, e.file), el("td", {}, `${e.error} (${e.code})`))))));
  }
}
