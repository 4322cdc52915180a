// The HTTP client of the console: the key from session storage, errors as messages, SSE over POST.

const KEY = "zhiku.key";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

export function getKey() { return sessionStorage.getItem(KEY) || ""; }
export function setKey(key) { key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY); }

export function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

// The server's one error shape, {"error": {code, message, details}}, as an ApiError.
export async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch { /* not JSON: use the status text */ }
  const err = body && body.error;
  if (err) return new ApiError(response.status, err.code, err.message, err.details);
  return new ApiError(response.status, "http_" + response.status, response.statusText || `HTTP ${response.status}`);
}

export async function call(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "Content-Type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);
export const del = (path) => call("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  return q.toString();
}

// Split an SSE byte stream into {event, data} records (the text/event-stream format, data lines joined).
export function sseParser(onEvent) {
  let buffer = "";
  return (text) => {
    buffer += text.replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  };
}

// POST a JSON body and read the text/event-stream answer; onEvent(name, parsedData) per event.
export async function stream(path, body, onEvent) {
  const response = await fetch(path, {
    method: "POST",
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(body),
  });
  if (!response.ok) throw await errorOf(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let failure = null;
  const feed = sseParser((event, data) => {
    const parsed = JSON.parse(data);
    if (event === "error") failure = new ApiError(parsed.error.status || 500, parsed.error.code, parsed.error.message, parsed.error.details);
    else onEvent(event, parsed);
  });
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    feed(value);
  }
  if (failure) throw failure;
}

// Multipart upload with upload progress (fetch has none): resolves {status, body}.
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onerror = () => reject(new ApiError(0, "network", "network error"));
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* handled below */ }
      if (xhr.status >= 200 && xhr.status < 300) return resolve({ status: xhr.status, body });
      const err = body && body.error;
      reject(err ? new ApiError(xhr.status, err.code, err.message, err.details) : new ApiError(xhr.status, "http_" + xhr.status, xhr.statusText));
    };
    xhr.send(form);
  });
}
