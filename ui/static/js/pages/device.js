// One device: identity, auth sets, inventory and system attributes, group, tags, remote access,
// configuration, deployment history.

import { ApiError, del, enc, get, post, put } from "../api.js";
import {
  badge, confirmAction, fmtDate, fmtValue, h, kvTable, link, modal, navigate, replace, section, table, toast,
} from "../dom.js";
import { DEVICECONFIG, configurationSection } from "../configuration.js";
import { DEVAUTH, INVENTORY_V1, attrsOf, deviceLabel, identityLabel } from "../inventory.js";
import { groupDialog } from "./groups.js";
import { idAttribute } from "./settings.js";

const DEPLOYMENTS = "/api/management/v1/deployments";
const DEVICECONNECT = "/api/management/v1/deviceconnect";

async function optional(promise, fallback) {
  try { return await promise; } catch (err) {
    if (err instanceof ApiError && err.status === 404) return fallback;
    throw err;
  }
}

function tagsEditor(deviceId, tags, refresh) {
  const rows = h("div", { class: "tag-rows" });
  const addRow = (name = "", value = "") => {
    const row = h("div", { class: "tag-row" },
      h("input", { class: "tag-name", "aria-label": "tag name", placeholder: "name", value: name }),
      h("input", { class: "tag-value", "aria-label": "tag value", placeholder: "value", value: String(value) }),
      h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": "remove tag", onclick: () => row.remove() }, "✕"));
    rows.append(row);
  };
  tags.forEach((t) => addRow(t.name, t.value));
  const save = async () => {
    const body = [...rows.children].map((r) => ({ name: r.querySelector(".tag-name").value.trim(), value: r.querySelector(".tag-value").value }))
      .filter((t) => t.name);
    try {
      await put(`${INVENTORY_V1}/devices/${enc(deviceId)}/tags`, body);
      toast("Tags saved", "success");
      refresh();
    } catch (err) { toast(`Tags: ${err.message}`, "error"); }
  };
  return h("div", {}, rows.children.length ? null : h("p", { class: "muted" }, "No tags."), rows,
    h("div", { class: "form-actions" },
      h("button", { type: "button", class: "btn btn-small", onclick: () => addRow() }, "+ Add tag"),
      h("button", { type: "button", class: "btn btn-small btn-primary", id: "save-tags", onclick: save }, "Save tags")));
}

function authSets(dev, refresh) {
  const act = (set, status) => async () => {
    try {
      await put(`${DEVAUTH}/devices/${enc(dev.id)}/auth/${enc(set.id)}/status`, { status });
      toast(`Auth set ${status}`, "success");
      refresh();
    } catch (err) { toast(err.message, "error"); }
  };
  const remove = (set) => async () => {
    if (!(await confirmAction("Remove auth set", "The device must authenticate again with this key to reappear.", "Remove"))) return;
    try { await del(`${DEVAUTH}/devices/${enc(dev.id)}/auth/${enc(set.id)}`); refresh(); } catch (err) { toast(err.message, "error"); }
  };
  return table([
    { title: "Status", render: (s) => badge(s.status) },
    { title: "Public key", render: (s) => h("code", { class: "pubkey", title: s.pubkey }, (s.pubkey || "").replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "").slice(0, 40) + "…") },
    { title: "Submitted", render: (s) => fmtDate(s.ts) },
    { title: "", class: "col-actions", render: (s) => h("span", { class: "row-actions" },
      s.status !== "accepted" ? h("button", { type: "button", class: "btn btn-small btn-primary", onclick: act(s, "accepted") }, "Accept") : null,
      s.status !== "rejected" ? h("button", { type: "button", class: "btn btn-small", onclick: act(s, "rejected") }, "Reject") : null,
      h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: remove(s) }, "Remove")) },
  ], dev.auth_sets || [], { emptyTitle: "No authentication sets" });
}

function openTerminal(id) {
  // the terminal page is framed: it has a policy of its own (docs/ui.md)
  modal("Remote terminal", h("iframe", { class: "terminal-frame", id: "terminal-frame", title: "Remote terminal",
    src: `/ui/terminal#device=${encodeURIComponent(id)}` }), [], { cancelLabel: "Close terminal", wide: true });
}

function remoteAccess(id, conn) {
  if (!conn) return section("Remote access", h("p", { class: "muted" }, "Remote access is not available for this device."));
  const connected = conn.status === "connected";
  const command = (what, done) => async () => {
    try {
      await post(`${DEVICECONNECT}/devices/${enc(id)}/${what}`);
      toast(done, "success");
    } catch (err) { toast(err.message, "error"); }
  };
  const since = conn.status === "unknown" ? "never connected" : `since ${fmtDate(conn.updated_ts)}`;
  return section("Remote access",
    h("p", { id: "connection-status" }, badge(conn.status), " ", h("span", { class: "muted" }, since)),
    connected ? null : h("p", { class: "muted small" }, "The device connects when it runs mender-connect."),
    h("div", { class: "remote-actions" },
      h("button", { type: "button", class: "btn btn-primary", id: "open-terminal", disabled: !connected,
        onclick: () => openTerminal(id) }, "Open terminal"),
      h("button", { type: "button", class: "btn", disabled: !connected,
        onclick: command("check-update", "The device checks for an update now") }, "Check for update"),
      h("button", { type: "button", class: "btn", disabled: !connected,
        onclick: command("send-inventory", "The device sends its inventory now") }, "Send inventory")));
}

function history(items) {
  return table([
    { title: "Deployment", render: (d) => link(`#/deployments/${enc(d.deployment.id)}`, d.deployment.name || d.deployment.id) },
    { title: "Artifact", render: (d) => d.deployment.artifact_name || "—" },
    { title: "Status", render: (d) => badge(d.device.status) },
    { title: "Started", render: (d) => fmtDate(d.device.created) },
    { title: "Finished", render: (d) => fmtDate(d.device.finished) },
  ], items, { emptyTitle: "No deployments yet", emptyHint: "Deployments that include this device are listed here." });
}

export async function render(ctx, [id]) {
  const [dev, inv, hist, idAttr, conn, cfg] = await Promise.all([
    optional(get(`${DEVAUTH}/devices/${enc(id)}`), null),
    optional(get(`${INVENTORY_V1}/devices/${enc(id)}`), { id, attributes: [] }),
    optional(get(`${DEPLOYMENTS}/deployments/devices/${enc(id)}`, { per_page: 20 }), []),
    idAttribute(),
    optional(get(`${DEVICECONNECT}/devices/${enc(id)}`), null),
    optional(get(`${DEVICECONFIG}/configurations/device/${enc(id)}`), null),
  ]);
  if (!ctx.alive) return;
  if (!dev) {
    replace(ctx.main, h("h1", {}, "Device not found"), h("p", {}, link("#/devices", "Back to devices")));
    return;
  }
  const decommission = async () => {
    if (!(await confirmAction("Decommission device", "The device, its inventory and its pending deployments are removed. It must be admitted again to come back.", "Decommission"))) return;
    try { await del(`${DEVAUTH}/devices/${enc(id)}`); toast("Device decommissioned", "success"); navigate("devices"); } catch (err) { toast(err.message, "error"); }
  };
  const inventory = attrsOf(inv, "inventory").map((a) => [a.name, fmtValue(a.value)]);
  const system = attrsOf(inv, "system").map((a) => [a.name, a.name.endsWith("_ts") || a.name.endsWith("_time") ? fmtDate(a.value) : fmtValue(a.value)]);
  const group = (attrsOf(inv, "system").find((a) => a.name === "group") || {}).value;
  const configuration = dev.status === "accepted" || cfg ? await configurationSection(id, cfg, ctx.refresh) : null;
  if (!ctx.alive) return;
  const label = inv.attributes && inv.attributes.length ? deviceLabel(inv, idAttr) : identityLabel(dev.identity_data);
  replace(ctx.main,
    h("div", { class: "breadcrumbs" }, link("#/devices", "Devices"), " / ", label),
    h("div", { class: "page-head" },
      h("div", {}, h("h1", {}, label, " ", badge(dev.status)), h("div", { class: "muted mono" }, dev.id)),
      h("div", { class: "head-actions" },
        h("button", { type: "button", class: "btn btn-danger", onclick: decommission }, "Decommission"))),
    h("div", { class: "grid-2" },
      section("Identity", kvTable(Object.entries(dev.identity_data || {}), "No identity data"),
        h("p", { class: "muted small" }, `Created ${fmtDate(dev.created_ts)} · updated ${fmtDate(dev.updated_ts)}`)),
      section("Group and tags",
        h("div", { class: "group-line" }, h("span", {}, "Group: "), h("strong", { id: "device-group" }, group || "none"), " ",
          h("button", { type: "button", class: "btn btn-small", onclick: () => groupDialog([id], ctx.refresh) }, group ? "Change" : "Set group")),
        h("h3", {}, "Tags"), tagsEditor(id, attrsOf(inv, "tags"), ctx.refresh))),
    dev.status === "accepted" ? remoteAccess(id, conn) : null,
    configuration,
    section("Authentication sets", authSets(dev, ctx.refresh)),
    h("div", { class: "grid-2" },
      section("Inventory", kvTable(inventory, "The device has not reported inventory yet")),
      section("System", kvTable(system, "No system attributes"))),
    section("Deployment history", history(hist || [])));
}
