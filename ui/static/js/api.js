// The management API client: same-origin fetch with the session cookie and the CSRF header.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrf") return decodeURIComponent(rest.join("="));
  }
  return "";
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => q.append(key, v));
    else q.append(key, value);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

function unauthorized() {
  window.dispatchEvent(new CustomEvent("session-expired"));
}

async function parse(response) {
  const type = response.headers.get("Content-Type") || "";
  if (response.status === 204) return null;
  if (type.includes("json")) return response.json();
  return response.text();
}

export async function request(method, path, { json, body, contentType, params, headers = {}, quiet401 = false } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (!["GET", "HEAD"].includes(method)) init.headers["X-CSRF-Token"] = csrfToken();
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.headers["Content-Type"] = contentType;
    init.body = body;
  }
  const response = await fetch(path + query(params), init);
  const data = await parse(response).catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && !quiet401) unauthorized();
    const message = data && typeof data === "object" && data.error ? data.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message, data);
  }
  return { data, headers: response.headers, status: response.status };
}

export const get = async (path, params) => (await request("GET", path, { params })).data;
export const post = async (path, json) => (await request("POST", path, { json })).data;
export const put = async (path, json) => (await request("PUT", path, { json })).data;
export const patch = async (path, json) => (await request("PATCH", path, { json })).data;
export const del = async (path) => (await request("DELETE", path)).data;

export async function getPage(path, params) {
  const { data, headers } = await request("GET", path, { params });
  const total = Number(headers.get("X-Total-Count"));
  return { items: data || [], total: Number.isFinite(total) && headers.has("X-Total-Count") ? total : null };
}

export async function postPage(path, json) {
  const { data, headers } = await request("POST", path, { json });
  return { items: data || [], total: Number(headers.get("X-Total-Count") || 0) };
}

// Multipart upload with progress (fetch cannot report upload progress).
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.withCredentials = true;
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
    xhr.addEventListener("load", () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { body = xhr.responseText; }
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, location: xhr.getResponseHeader("Location") });
      else {
        if (xhr.status === 401) unauthorized();
        reject(new ApiError(xhr.status, body && body.error ? body.error : `${xhr.status} ${xhr.statusText}`, body));
      }
    });
    xhr.addEventListener("error", () => reject(new ApiError(0, "network error", null)));
    xhr.send(form);
  });
}

export async function login(email, password) {
  return request("POST", "/ui/session", { json: { email, password }, quiet401: true });
}

export async function logout() {
  return request("DELETE", "/ui/session", { quiet401: true });
}

export const enc = encodeURIComponent;
