// Shared device helpers: inventory attribute access, the filter-predicate builder, admission actions.

import { ApiError, enc, get, post, put } from "./api.js";
import { h } from "./dom.js";

export const DEVAUTH = "/api/management/v2/devauth";
export const INVENTORY_V1 = "/api/management/v1/inventory";
export const INVENTORY_V2 = "/api/management/v2/inventory";
export const DEVICE_STATUSES = ["accepted", "pending", "rejected", "preauthorized", "noauth"];
export const SCOPES = ["inventory", "identity", "system", "tags"];
export const OPERATORS = [
  ["$eq", "equals"], ["$ne", "not equal"], ["$in", "is one of"], ["$nin", "is none of"],
  ["$regex", "matches regex"], ["$exists", "exists"], ["$gt", ">"], ["$gte", "≥"], ["$lt", "<"], ["$lte", "≤"],
];

export function attr(device, scope, name) {
  const found = (device.attributes || []).find((a) => a.scope === scope && a.name === name);
  return found ? found.value : undefined;
}

export function attrsOf(device, scope) {
  return (device.attributes || []).filter((a) => a.scope === scope)
    .sort((a, b) => a.name.localeCompare(b.name));
}

// A short human label for a device: the configured id attribute, else a few identity attributes.
export function deviceLabel(device, idAttribute) {
  if (idAttribute && idAttribute.attribute && idAttribute.attribute !== "id") {
    const v = attr(device, idAttribute.scope || "identity", idAttribute.attribute);
    if (v !== undefined) return String(v);
  }
  const identity = attrsOf(device, "identity").filter((a) => a.name !== "status");
  if (identity.length) return identity.slice(0, 2).map((a) => `${a.name}: ${a.value}`).join(", ");
  return device.id;
}

export function identityLabel(identityData) {
  return Object.entries(identityData || {}).map(([k, v]) => `${k}: ${v}`).join(", ") || "—";
}

function typedValue(op, raw) {
  const text = raw.trim();
  if (op === "$exists") return !["false", "no", "0"].includes(text.toLowerCase());
  const scalar = (s) => (s !== "" && !Number.isNaN(Number(s)) && ["$gt", "$gte", "$lt", "$lte"].includes(op) ? Number(s) : s);
  if (op === "$in" || op === "$nin") return text.split(",").map((s) => s.trim()).filter(Boolean);
  return scalar(text);
}

// A list of predicate rows; `onChange(filters)` receives valid v2 predicates.
export function filterBuilder(initial, attributes, onApply, { applyLabel = "Search" } = {}) {
  const rows = h("div", { class: "filter-rows" });
  const listId = `attrs-${Math.random().toString(36).slice(2)}`;
  const datalist = h("datalist", { id: listId },
    attributes.map((a) => h("option", { value: a.name }, `${a.name} (${a.scope})`)));
  const addRow = (pred = { scope: "inventory", attribute: "", type: "$eq", value: "" }) => {
    const scope = h("select", { class: "filter-scope", "aria-label": "scope" },
      SCOPES.map((s) => h("option", { value: s, selected: s === pred.scope }, s)));
    const name = h("input", { class: "filter-attribute", "aria-label": "attribute", list: listId, placeholder: "attribute", value: pred.attribute });
    const op = h("select", { class: "filter-op", "aria-label": "operator" },
      OPERATORS.map(([v, label]) => h("option", { value: v, selected: v === pred.type }, label)));
    const value = h("input", { class: "filter-value", "aria-label": "value", placeholder: "value",
      value: Array.isArray(pred.value) ? pred.value.join(", ") : String(pred.value ?? "") });
    name.addEventListener("change", () => {
      const known = attributes.find((a) => a.name === name.value);
      if (known) scope.value = known.scope;
    });
    const row = h("div", { class: "filter-row" }, scope, name, op, value,
      h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": "remove filter", onclick: () => row.remove() }, "✕"));
    row.predicate = () => (name.value.trim() ? { scope: scope.value, attribute: name.value.trim(), type: op.value, value: typedValue(op.value, value.value) } : null);
    rows.append(row);
  };
  (initial || []).forEach(addRow);
  const collect = () => [...rows.children].map((r) => r.predicate()).filter(Boolean);
  const box = h("div", { class: "filter-builder" }, datalist, rows,
    h("div", { class: "filter-actions" },
      h("button", { type: "button", class: "btn btn-small", onclick: () => addRow() }, "+ Add filter"),
      onApply ? h("button", { type: "button", class: "btn btn-small btn-primary", onclick: () => onApply(collect()) }, applyLabel) : null,
      onApply ? h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => { rows.replaceChildren(); onApply([]); } }, "Clear") : null));
  box.collect = collect;
  return box;
}

export async function filterAttributes() {
  try {
    return await get(`${INVENTORY_V2}/filters/attributes`);
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) return [];
    throw err;
  }
}

export async function groups() {
  try { return await get(`${INVENTORY_V1}/groups`); } catch (err) { if (err.status === 401) throw err; return []; }
}

// Admission: set the status of the device's auth set(s). With `onlyPending`, only pending sets change.
export async function setAuthStatus(deviceId, status) {
  const dev = await get(`${DEVAUTH}/devices/${enc(deviceId)}`);
  const sets = dev.auth_sets || [];
  let target = sets.find((s) => s.status === "pending");
  if (!target && status === "rejected") target = sets.find((s) => s.status === "accepted" || s.status === "preauthorized");
  if (!target && status === "accepted") target = sets.find((s) => s.status === "rejected");
  if (!target) throw new ApiError(409, `no auth set of this device can become ${status}`, null);
  await put(`${DEVAUTH}/devices/${enc(deviceId)}/auth/${enc(target.id)}/status`, { status });
}

export async function preauthorize(identityData, pubkey, force = false) {
  return post(`${DEVAUTH}/devices`, { identity_data: identityData, pubkey, ...(force ? { force } : {}) });
}

// Run an action on many devices; returns {ok, failed: [[id, message]]}.
export async function bulk(ids, action) {
  const failed = [];
  let ok = 0;
  for (const id of ids) {
    try { await action(id); ok += 1; } catch (err) { if (err.status === 401) throw err; failed.push([id, err.message]); }
  }
  return { ok, failed };
}
