// Settings: the organization (its tenant token: copy, rotate), its settings (the device name
// attribute among them) and the user's own.

import { ApiError, get, post } from "../api.js";
import { confirmAction, field, h, link, replace, section, toast } from "../dom.js";
import { SCOPES } from "../inventory.js";

const SETTINGS = "/api/management/v1/useradm/settings";
const ORGANIZATION = "/api/management/v1/tenantadm/user/tenant";

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // plain HTTP (a lab server): the clipboard API is unavailable, select-and-copy still works
  const area = h("textarea", { class: "offscreen", readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  const ok = document.execCommand("copy");
  area.remove();
  if (!ok) throw new Error("the browser refused to copy");
}

function organizationSection(ctx, org) {
  const token = h("textarea", { id: "tenant-token", class: "mono", rows: "3", readonly: true,
    "aria-label": "Tenant token", spellcheck: "false" });
  token.value = org.tenant_token;
  const copy = async () => {
    try { await copyText(token.value); toast("Tenant token copied", "success"); } catch (err) {
      token.select();
      toast(`Copy failed (${err.message}): the token is selected, copy it with Ctrl+C`, "error");
    }
  };
  const rotate = async () => {
    const ok = await confirmAction("Rotate the tenant token?",
      "Devices already accepted keep working with the current token, but it will not admit any new device: " +
      "new devices need the new token in their mender.conf.", "Rotate", "btn-primary");
    if (!ok) return;
    try {
      const next = await post(`${ORGANIZATION}/tenant_token`);
      token.value = next.tenant_token;
      ctx.setOrg(next);
      toast("Tenant token rotated", "success");
    } catch (err) { toast(err.message, "error"); }
  };
  return section("Organization",
    h("table", { class: "kv" }, h("tbody", {},
      h("tr", {}, h("th", {}, "Name"), h("td", { id: "organization-name" }, org.name)),
      h("tr", {}, h("th", {}, "ID"), h("td", { class: "mono", id: "organization-id" }, org.id)))),
    h("p", { class: "muted" }, "Devices of this organization authenticate with its tenant token: ",
      h("code", {}, "\"TenantToken\""), " in their mender.conf."),
    h("div", { class: "token-box" }, token,
      h("div", { class: "form-actions" },
        h("button", { type: "button", class: "btn", id: "copy-tenant-token", onclick: copy }, "Copy"),
        h("button", { type: "button", class: "btn", id: "rotate-tenant-token", onclick: rotate }, "Rotate"))));
}

async function load(path) {
  try { return (await get(path)) || {}; } catch (err) {
    if (err instanceof ApiError && err.status === 404) return {};
    throw err;
  }
}

// The attribute that names devices in lists (Mender's UI keeps it in the tenant settings as `id_attribute`).
export async function idAttribute() {
  try {
    const settings = await load(SETTINGS);
    return settings.id_attribute || null;
  } catch (err) {
    if (err.status === 401) throw err;
    return null;
  }
}

// A settings object as a form: one row per setting (name, value), validated as typed. A value
// that reads as JSON (a number, true/false, an object or array) is stored as such, else as text.
function parseValue(text) {
  const t = text.trim();
  if (/^(-?\d+(\.\d+)?|true|false|null|[[{].*)$/s.test(t)) {
    try { return { value: JSON.parse(t) }; } catch { if (/^[[{]/.test(t)) return { error: "not valid JSON" }; }
  }
  return { value: text };
}

function showValue(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

export function settingsForm(id, path, value, title, { hidden = [], onSaved } = {}) {
  const rows = h("div", { class: "kv-rows" });
  const error = h("div", { class: "field-error", role: "alert" });
  const save = h("button", { type: "submit", class: "btn btn-primary" }, "Save");
  const problems = () => {
    const seen = new Set();
    for (const row of rows.children) {
      const name = row.querySelector(".kv-name").value.trim();
      const val = row.querySelector(".kv-value").value;
      if (!name && !val) continue;
      if (!name) return "Every setting needs a name.";
      if (!/^[A-Za-z0-9_.-]{1,128}$/.test(name)) return `${name}: letters, digits, '.', '-' and '_' only.`;
      if (seen.has(name)) return `${name}: given twice.`;
      seen.add(name);
      const parsed = parseValue(val);
      if (parsed.error) return `${name}: ${parsed.error}.`;
    }
    return "";
  };
  const check = () => { error.textContent = problems(); save.disabled = Boolean(error.textContent); };
  const addRow = (name = "", val = "") => {
    const row = h("div", { class: "kv-row" },
      h("input", { class: "kv-name", "aria-label": "setting name", placeholder: "name", value: name, oninput: check }),
      h("input", { class: "kv-value", "aria-label": "setting value", placeholder: "value", value: val, oninput: check }),
      h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": "remove setting", onclick: () => { row.remove(); check(); } }, "✕"));
    rows.append(row);
  };
  for (const [k, v] of Object.entries(value || {})) if (!hidden.includes(k)) addRow(k, showValue(v));
  const form = h("form", { id, class: "settings-form", onsubmit: async (e) => {
    e.preventDefault();
    check();
    if (error.textContent) return;
    const body = Object.fromEntries(Object.entries(value || {}).filter(([k]) => hidden.includes(k)));
    for (const row of rows.children) {
      const name = row.querySelector(".kv-name").value.trim();
      if (name) body[name] = parseValue(row.querySelector(".kv-value").value).value;
    }
    try { await post(path, body); toast(`${title} saved`, "success"); if (onSaved) onSaved(); } catch (err) { error.textContent = err.message; }
  } }, rows.children.length ? null : h("p", { class: "muted" }, "No settings yet."), rows, error,
  h("div", { class: "form-actions" }, h("button", { type: "button", class: "btn btn-small", onclick: () => addRow() }, "+ Add setting"), save));
  return form;
}

export async function render(ctx) {
  const [tenant, mine, org] = await Promise.all([load(SETTINGS), load(`${SETTINGS}/me`), get(ORGANIZATION)]);
  if (!ctx.alive) return;
  const current = tenant.id_attribute || { attribute: "", scope: "identity" };
  const name = h("input", { id: "id-attribute", placeholder: "e.g. mac or serial_no", list: "id-attribute-names",
    value: current.attribute === "id" ? "" : current.attribute || "" });
  const nameError = h("div", { class: "field-error", role: "alert" });
  name.addEventListener("input", () => {
    nameError.textContent = name.value.trim() && !/^[^\s]{1,1024}$/.test(name.value.trim()) ? "An attribute name has no spaces." : "";
  });
  const scope = h("select", { id: "id-scope" }, SCOPES.map((s) => h("option", { value: s, selected: s === (current.scope || "identity") }, s)));
  const saveName = async () => {
    if (nameError.textContent) return;
    const next = { ...tenant };
    if (name.value.trim()) next.id_attribute = { attribute: name.value.trim(), scope: scope.value };
    else delete next.id_attribute;
    try { await post(SETTINGS, next); toast("Device name attribute saved", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Settings"), link("#/settings/integrations", "Integrations (webhooks) ›", { id: "integrations-link" })),
    organizationSection(ctx, org),
    section("Device names",
      h("p", { class: "muted" }, "Which attribute names a device in lists. Empty: its identity attributes."),
      h("div", { class: "inline-form" }, field("Attribute", name), field("Scope", scope),
        h("button", { type: "button", class: "btn btn-primary", id: "save-id-attribute", onclick: saveName }, "Save")), nameError),
    h("div", { class: "grid-2" },
      section("Organization settings", h("p", { class: "muted small" }, "Shared by every user of the organization."),
        settingsForm("tenant-settings", SETTINGS, tenant, "Organization settings", { hidden: ["id_attribute"], onSaved: ctx.refresh })),
      section("My settings", h("p", { class: "muted small" }, "Yours alone."),
        settingsForm("user-settings", `${SETTINGS}/me`, mine, "My settings", { onSaved: ctx.refresh }))));
}
