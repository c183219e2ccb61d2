// Settings: the tenant's settings (the device name attribute among them) and the user's own.

import { ApiError, get, post } from "../api.js";
import { field, h, replace, section, toast } from "../dom.js";
import { SCOPES } from "../inventory.js";

const SETTINGS = "/api/management/v1/useradm/settings";

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

function jsonEditor(id, path, value, title) {
  const area = h("textarea", { id, rows: "10", class: "mono", spellcheck: "false" });
  area.value = JSON.stringify(value, null, 2);
  const error = h("div", { class: "alert alert-error", hidden: true });
  const save = async () => {
    error.hidden = true;
    let body;
    try {
      body = JSON.parse(area.value);
      if (!body || typeof body !== "object" || Array.isArray(body)) throw new Error("must be a JSON object");
    } catch (err) { error.textContent = `Not valid: ${err.message}`; error.hidden = false; return; }
    try { await post(path, body); toast(`${title} saved`, "success"); } catch (err) { error.textContent = err.message; error.hidden = false; }
  };
  return h("div", {}, area, error, h("div", { class: "form-actions" },
    h("button", { type: "button", class: "btn btn-primary", onclick: save }, "Save")));
}

export async function render(ctx) {
  const [tenant, mine] = await Promise.all([load(SETTINGS), load(`${SETTINGS}/me`)]);
  if (!ctx.alive) return;
  const current = tenant.id_attribute || { attribute: "", scope: "identity" };
  const name = h("input", { id: "id-attribute", placeholder: "e.g. mac or serial_no", value: current.attribute === "id" ? "" : current.attribute || "" });
  const scope = h("select", { id: "id-scope" }, SCOPES.map((s) => h("option", { value: s, selected: s === (current.scope || "identity") }, s)));
  const saveName = async () => {
    const next = { ...tenant };
    if (name.value.trim()) next.id_attribute = { attribute: name.value.trim(), scope: scope.value };
    else delete next.id_attribute;
    try { await post(SETTINGS, next); toast("Device name attribute saved", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Settings")),
    section("Device names",
      h("p", { class: "muted" }, "Which attribute names a device in lists. Empty: its identity attributes."),
      h("div", { class: "inline-form" }, field("Attribute", name), field("Scope", scope),
        h("button", { type: "button", class: "btn btn-primary", onclick: saveName }, "Save"))),
    h("div", { class: "grid-2" },
      section("Organization settings (JSON)", jsonEditor("tenant-settings", SETTINGS, tenant, "Organization settings")),
      section("My settings (JSON)", jsonEditor("user-settings", `${SETTINGS}/me`, mine, "My settings"))));
}
