// A device's configuration (deviceconfig): desired vs reported with a diff, an editor, deploy.

import { ApiError, enc, get, post, put } from "./api.js";
import { badge, confirmAction, empty, fmtDate, h, link, replace, section, toast } from "./dom.js";

export const DEVICECONFIG = "/api/management/v1/deviceconfig";
const DEPLOYMENTS = "/api/management/v1/deployments";
const MAX_KEYS = 100; // the server's limits (docs/deviceconfig.md); it checks them itself too

// Each key's state, desired against reported.
export function diffConfig(configured, reported) {
  const keys = [...new Set([...Object.keys(configured), ...Object.keys(reported)])].sort();
  return keys.map((key) => {
    const want = Object.hasOwn(configured, key) ? configured[key] : undefined;
    const have = Object.hasOwn(reported, key) ? reported[key] : undefined;
    let state = "same";
    if (want === undefined) state = "removed";
    else if (have === undefined) state = "added";
    else if (want !== have) state = "changed";
    return { key, want, have, state };
  });
}

const STATE_TEXT = { same: "in sync", changed: "differs", added: "not on device", removed: "only on device" };

function value(v) {
  if (v === undefined) return h("span", { class: "muted" }, "—");
  if (v === "") return h("span", { class: "muted" }, "(empty)");
  return h("code", { class: "cfg-value" }, v);
}

function diffTable(rows) {
  return h("div", { class: "table-wrap" }, h("table", { class: "cfg-diff", id: "config-diff" },
    h("thead", {}, h("tr", {}, h("th", {}, "Key"), h("th", {}, "Desired"), h("th", {}, "Reported"), h("th", {}, ""))),
    h("tbody", {}, rows.map((r) => h("tr", { class: `cfg-${r.state}`, "data-key": r.key, "data-state": r.state },
      h("th", { scope: "row" }, h("code", {}, r.key)), h("td", {}, value(r.want)), h("td", {}, value(r.have)),
      h("td", { class: "cfg-state" }, STATE_TEXT[r.state]))))));
}

function summary(cfg, rows) {
  if (cfg.reported_ts == null) return h("p", { id: "config-summary" }, badge("not reported"), " ",
    h("span", { class: "muted" }, "The device has not reported a configuration yet (it does after a configuration deployment, with the mender-configure update module)."));
  const differing = rows.filter((r) => r.state !== "same").length;
  return h("p", { id: "config-summary" }, differing ? badge("differs") : badge("in sync"), " ",
    h("span", { class: "muted" }, differing ? `${differing} of ${rows.length} keys differ · ` : "", `reported ${fmtDate(cfg.reported_ts)}`));
}

function editor(deviceId, configured, { onDone, onCancel }) {
  const rows = h("div", { class: "cfg-rows" });
  const addRow = (key = "", val = "") => {
    const row = h("div", { class: "cfg-row" },
      h("input", { class: "cfg-key", "aria-label": "key", placeholder: "key", value: key, maxlength: 4096 }),
      h("textarea", { class: "cfg-val", "aria-label": "value", placeholder: "value", rows: 1, maxlength: 4096, value: val }),
      h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": "remove key", onclick: () => row.remove() }, "✕"));
    rows.append(row);
    return row;
  };
  Object.entries(configured).forEach(([k, v]) => addRow(k, v));
  if (!rows.children.length) addRow();
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const collect = () => {
    const out = {};
    for (const row of rows.children) {
      const key = row.querySelector(".cfg-key").value;
      const val = row.querySelector(".cfg-val").value;
      if (!key.trim() && !val) continue;
      if (!key.trim()) throw new Error("Every value needs a key.");
      if (Object.hasOwn(out, key)) throw new Error(`The key "${key}" is given twice.`);
      out[key] = val;
    }
    if (Object.keys(out).length > MAX_KEYS) throw new Error(`At most ${MAX_KEYS} keys.`);
    return out;
  };
  const save = (deploy) => async () => {
    let body;
    try { body = collect(); } catch (err) { error.textContent = err.message; error.hidden = false; return; }
    error.hidden = true;
    try {
      await put(`${DEVICECONFIG}/configurations/device/${enc(deviceId)}`, body);
    } catch (err) { error.textContent = err.message; error.hidden = false; return; }
    if (!deploy) { toast("Configuration saved", "success"); onDone(); return; }
    await deployNow(deviceId);
    onDone();
  };
  return h("div", { class: "cfg-editor", id: "config-editor" }, rows, error,
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn btn-small", id: "config-add", onclick: () => addRow().querySelector(".cfg-key").focus() }, "+ Add key"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", class: "btn btn-small", onclick: onCancel }, "Cancel"),
      h("button", { type: "button", class: "btn btn-small", id: "config-save", onclick: save(false) }, "Save"),
      h("button", { type: "button", class: "btn btn-small btn-primary", id: "config-save-deploy", onclick: save(true) }, "Save and deploy")));
}

async function deployNow(deviceId) {
  try {
    const { deployment_id: id } = await post(`${DEVICECONFIG}/configurations/device/${enc(deviceId)}/deploy`, {});
    toast(`Configuration deployment ${id.slice(0, 8)} created: the device gets it at its next check`, "success");
    return id;
  } catch (err) { toast(`Deploy: ${err.message}`, "error"); return null; }
}

async function latestDeployment(id) {
  if (!id) return null;
  try { return await get(`${DEPLOYMENTS}/deployments/${enc(id)}`); } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

// The section of the device page; `cfg` is deviceconfig's record, or null when it has none.
export async function configurationSection(deviceId, cfg, refresh) {
  const record = cfg || { configured: {}, reported: {}, reported_ts: null };
  const deployment = await latestDeployment(record.deployment_id).catch(() => null);
  const body = h("div", {});
  const view = () => {
    const diff = diffConfig(record.configured, record.reported);
    replace(body,
      summary(record, diff),
      diff.length ? diffTable(diff) : empty("No configuration", "Add keys and deploy them; a device with the mender-configure update module applies them and reports them back."),
      record.deployment_id ? h("p", { class: "muted small", id: "config-deployment" }, "Latest configuration deployment: ",
        link(`#/deployments/${enc(record.deployment_id)}`, record.deployment_id.slice(0, 8)),
        deployment ? [" ", badge(deployment.status)] : null) : null,
      h("div", { class: "form-actions" },
        h("button", { type: "button", class: "btn btn-small", id: "config-edit", onclick: edit }, "Edit"),
        h("button", { type: "button", class: "btn btn-small btn-primary", id: "config-deploy", disabled: !cfg, onclick: deploy }, "Deploy"),
        h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: refresh }, "Refresh")));
  };
  const edit = () => replace(body, editor(deviceId, record.configured, { onDone: refresh, onCancel: view }));
  const deploy = async () => {
    const n = Object.keys(record.configured).length;
    if (!(await confirmAction("Deploy configuration", `The desired configuration (${n} key${n === 1 ? "" : "s"}) is sent to the device as a configuration deployment.`, "Deploy", "btn-primary"))) return;
    if (await deployNow(deviceId)) refresh();
  };
  view();
  return section("Configuration", body);
}
