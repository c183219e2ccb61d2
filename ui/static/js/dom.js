// DOM helpers. Everything is built with createElement/textContent: data never goes through HTML parsing.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked" || key === "disabled" || key === "selected" || key === "multiple") el[key] = true;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function replace(el, ...children) {
  return append(clear(el), children);
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

export function fmtDate(value) {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  if (d.getUTCFullYear() <= 1) return "never"; // Go's zero time: "0001-01-01T00:00:00Z"
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function fmtAgo(value) {
  if (!value) return "never";
  const seconds = (Date.now() - new Date(value).getTime()) / 1000;
  if (Number.isNaN(seconds)) return String(value);
  if (seconds < 60) return "just now";
  for (const [unit, size] of [["day", 86400], ["hour", 3600], ["minute", 60]]) {
    if (seconds >= size) {
      const n = Math.floor(seconds / size);
      return `${n} ${unit}${n === 1 ? "" : "s"} ago`;
    }
  }
  return fmtDate(value);
}

export function fmtSize(bytes) {
  if (bytes === undefined || bytes === null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(bytes), i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i ? n.toFixed(1) : n} ${units[i]}`;
}

export function fmtValue(value) {
  if (value === null || value === undefined) return "—";
  if (Array.isArray(value)) return value.map(fmtValue).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function badge(status, extra = "") {
  const s = String(status || "unknown");
  return h("span", { class: `badge badge-${s.replace(/[^a-z0-9-]/gi, "_")} ${extra}`.trim() }, s);
}

export function spinner() {
  return h("div", { class: "loading" }, h("span", { class: "spin" }), "Loading…");
}

export function empty(title, hint) {
  return h("div", { class: "empty" }, h("div", { class: "empty-title" }, title), hint ? h("p", {}, hint) : null);
}

// columns: [{title, render(row) -> node|string, sortKey?, class?}]
export function table(columns, rows, { emptyTitle = "Nothing here yet", emptyHint = "", sort = null,
  onSort = null, rowAttrs = null } = {}) {
  if (!rows.length) return empty(emptyTitle, emptyHint);
  const head = h("tr", {}, columns.map((col) => {
    if (!col.sortKey || !onSort) return h("th", { class: col.class }, col.title);
    const active = sort && sort.key === col.sortKey;
    const arrow = active ? (sort.order === "asc" ? " ▲" : " ▼") : "";
    return h("th", { class: `${col.class || ""} sortable`.trim() },
      h("button", { class: "link-button", type: "button", "aria-sort": active ? sort.order : undefined,
        onclick: () => onSort(col.sortKey) }, col.title + arrow));
  }));
  const body = rows.map((row, i) => h("tr", rowAttrs ? rowAttrs(row) : {},
    columns.map((col) => h("td", { class: col.class }, col.render(row, i)))));
  return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

export function pager({ page, perPage, total, onChange }) {
  const pages = Math.max(1, Math.ceil(total / perPage));
  const from = total ? (page - 1) * perPage + 1 : 0;
  const to = Math.min(total, page * perPage);
  return h("div", { class: "pager" },
    h("span", {}, `${from.toLocaleString("en-US")}–${to.toLocaleString("en-US")} of ${total.toLocaleString("en-US")}`),
    h("button", { type: "button", class: "btn btn-small", disabled: page <= 1, onclick: () => onChange(page - 1) }, "‹ Prev"),
    h("span", {}, `page ${page.toLocaleString("en-US")} / ${pages.toLocaleString("en-US")}`),
    h("button", { type: "button", class: "btn btn-small", disabled: page >= pages, onclick: () => onChange(page + 1) }, "Next ›"));
}

export function progressBar(segments, total) {
  // segments: [{key, count, label}]; widths are shares of total
  const bar = h("div", { class: "progress", role: "img" });
  const labels = [];
  for (const seg of segments) {
    if (!seg.count) continue;
    const pct = total ? (100 * seg.count) / total : 0;
    const part = h("span", { class: `progress-seg seg-${seg.key}`, title: `${seg.label}: ${seg.count}` });
    part.style.width = `${pct}%`;
    bar.append(part);
    labels.push(`${seg.label} ${seg.count}`);
  }
  bar.setAttribute("aria-label", labels.join(", ") || "no devices");
  return bar;
}

let toastBox = null;
export function toast(message, kind = "info") {
  if (!toastBox) {
    toastBox = h("div", { class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(toastBox);
  }
  const item = h("div", { class: `toast toast-${kind}` }, message);
  toastBox.append(item);
  setTimeout(() => item.remove(), kind === "error" ? 8000 : 4000);
}

// Every open dialog: closed when the operator navigates away (app.js).
export function closeDialogs() {
  document.querySelectorAll(".modal-backdrop").forEach((m) => m.remove());
}

export function modal(title, body, actions, { cancelLabel, wide } = {}) {
  // actions: [{label, kind, onclick(close) }]; returns close()
  const backdrop = h("div", { class: "modal-backdrop" });
  const close = () => backdrop.remove();
  const dialog = h("div", { class: wide ? "modal modal-wide" : "modal", role: "dialog", "aria-modal": "true", "aria-label": title },
    h("h2", {}, title), h("div", { class: "modal-body" }, body),
    h("div", { class: "modal-actions" },
      h("button", { type: "button", class: "btn", onclick: close }, cancelLabel || (actions.length ? "Cancel" : "Close")),
      actions.map((a) => h("button", { type: "button", class: `btn ${a.kind || "btn-primary"}`,
        onclick: () => a.onclick(close) }, a.label))));
  backdrop.append(dialog);
  backdrop.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
  document.body.append(backdrop);
  const first = dialog.querySelector("input, textarea, select, .modal-actions .btn-primary, .modal-actions .btn-danger");
  if (first) first.focus();
  return close;
}

export function confirmAction(title, text, label, kind = "btn-danger") {
  return new Promise((resolve) => {
    let done = false;
    const close = modal(title, h("p", {}, text), [{ label, kind, onclick: (c) => { done = true; c(); resolve(true); } }]);
    const observer = new MutationObserver(() => {
      if (!document.querySelector(".modal-backdrop")) { observer.disconnect(); if (!done) resolve(false); }
    });
    observer.observe(document.body, { childList: true });
    return close;
  });
}

export function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", { class: "field-label" }, label), input,
    hint ? h("span", { class: "field-hint" }, hint) : null);
}

export function section(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

export function kvTable(entries, emptyTitle = "No attributes") {
  if (!entries.length) return empty(emptyTitle);
  return h("table", { class: "kv" }, h("tbody", {}, entries.map(([k, v]) =>
    h("tr", {}, h("th", {}, k), h("td", {}, v instanceof Node ? v : fmtValue(v))))));
}

export function navigate(path, query) {
  const qs = query ? new URLSearchParams(Object.entries(query)
    .filter(([, v]) => v !== undefined && v !== "" && v !== null)).toString() : "";
  const target = `#/${path}${qs ? `?${qs}` : ""}`;
  if (location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = target;
}
