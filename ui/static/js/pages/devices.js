// Devices: status tabs, attribute filters, sorting, paging, admission and group actions.

import { del, enc, get, postPage } from "../api.js";
import { badge, confirmAction, fmtAgo, h, link, navigate, pager, replace, table, toast } from "../dom.js";
import {
  DEVAUTH, DEVICE_STATUSES, INVENTORY_V2, attr, bulk, deviceLabel, filterAttributes,
  filterBuilder, setAuthStatus,
} from "../inventory.js";
import { preauthorizeDialog, importDialog } from "./preauthorize.js";
import { groupDialog } from "./groups.js";
import { idAttribute } from "./settings.js";

const PER_PAGE = 20;

function parseFilters(text) {
  try { const v = JSON.parse(text || "[]"); return Array.isArray(v) ? v : []; } catch { return []; }
}

export async function render(ctx, _params, query) {
  const status = query.get("status") || "accepted";
  const page = Math.max(1, Number(query.get("page")) || 1);
  const filters = parseFilters(query.get("filters"));
  const [sortScope, sortAttr, sortOrder] = (query.get("sort") || "").split(":");
  const sort = sortAttr ? { key: `${sortScope}:${sortAttr}`, order: sortOrder === "desc" ? "desc" : "asc" } : null;
  const state = { status, page, filters: JSON.stringify(filters), sort: query.get("sort") || "" };
  const go = (changes) => navigate("devices", { ...state, ...changes, filters: (changes.filters ?? state.filters) === "[]" ? "" : (changes.filters ?? state.filters) });

  const searchFilters = [...filters];
  if (status !== "all") searchFilters.push({ scope: "identity", attribute: "status", type: "$eq", value: status });
  const body = { page, per_page: PER_PAGE, filters: searchFilters };
  if (sort) body.sort = [{ scope: sortScope, attribute: sortAttr, order: sort.order }];

  const [result, counts, attributes, idAttr] = await Promise.all([
    postPage(`${INVENTORY_V2}/filters/search`, body),
    Promise.all(DEVICE_STATUSES.map((s) => get(`${DEVAUTH}/devices/count`, { status: s }).then((r) => r.count).catch(() => null))),
    filterAttributes(),
    idAttribute(),
  ]);
  if (!ctx.alive) return;

  const selected = new Set();
  const bulkBar = h("div", { class: "bulk-bar", hidden: true });
  const refreshBulk = () => {
    bulkBar.hidden = selected.size === 0;
    replace(bulkBar, h("strong", {}, `${selected.size} selected`), bulkButtons());
  };
  const runBulk = async (label, action) => {
    const { ok, failed } = await bulk([...selected], action);
    if (ok) toast(`${label}: ${ok} device${ok === 1 ? "" : "s"}`, "success");
    for (const [id, msg] of failed) toast(`${id}: ${msg}`, "error");
    ctx.refresh();
  };
  const bulkButtons = () => {
    const b = [];
    if (["pending", "rejected", "all"].includes(status)) b.push(h("button", { type: "button", class: "btn btn-small btn-primary", onclick: () => runBulk("Accepted", (id) => setAuthStatus(id, "accepted")) }, "Accept"));
    if (["pending", "accepted", "all"].includes(status)) b.push(h("button", { type: "button", class: "btn btn-small", onclick: () => runBulk("Rejected", (id) => setAuthStatus(id, "rejected")) }, "Reject"));
    if (["accepted", "all"].includes(status)) {
      b.push(h("button", { type: "button", class: "btn btn-small", onclick: () => groupDialog([...selected], ctx.refresh) }, "Set group"));
    }
    b.push(h("button", { type: "button", class: "btn btn-small btn-danger", onclick: async () => {
      if (!(await confirmAction("Decommission devices", `Decommission ${selected.size} device(s)? Their inventory and pending deployments are removed.`, "Decommission"))) return;
      runBulk("Decommissioned", (id) => del(`${DEVAUTH}/devices/${enc(id)}`));
    } }, "Decommission"));
    return b;
  };

  const checkbox = (d) => h("input", { type: "checkbox", class: "row-check", value: d.id, "aria-label": `select ${d.id}`, onchange: (e) => {
    if (e.target.checked) selected.add(d.id); else selected.delete(d.id);
    refreshBulk();
  } });
  const selectAll = h("input", { type: "checkbox", "aria-label": "select all", onchange: (e) => {
    for (const box of ctx.main.querySelectorAll("input.row-check")) {
      box.checked = e.target.checked;
      if (box.checked) selected.add(box.value); else selected.delete(box.value);
    }
    refreshBulk();
  } });
  const rowActions = (d) => {
    const st = attr(d, "identity", "status");
    if (st !== "pending") return null;
    return h("span", { class: "row-actions" },
      h("button", { type: "button", class: "btn btn-small btn-primary", onclick: async () => {
        try { await setAuthStatus(d.id, "accepted"); toast("Device accepted", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
      } }, "Accept"),
      h("button", { type: "button", class: "btn btn-small", onclick: async () => {
        try { await setAuthStatus(d.id, "rejected"); toast("Device rejected"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
      } }, "Reject"));
  };
  const columns = [
    { title: selectAll, render: checkbox, class: "col-check" },
    { title: "Device", render: (d) => link(`#/devices/${enc(d.id)}`, deviceLabel(d, idAttr), { class: "device-link" }) },
    { title: "Device type", sortKey: "inventory:device_type", render: (d) => attr(d, "inventory", "device_type") ?? "—" },
    { title: "Software", sortKey: "inventory:artifact_name", render: (d) => attr(d, "inventory", "artifact_name") ?? "—" },
    { title: "Group", sortKey: "system:group", render: (d) => attr(d, "system", "group") ?? "—" },
    { title: "Status", render: (d) => badge(attr(d, "identity", "status")) },
    { title: "Last check-in", sortKey: "system:check_in_time", render: (d) => fmtAgo(attr(d, "system", "check_in_time") || attr(d, "system", "updated_ts")) },
    { title: "", render: rowActions, class: "col-actions" },
  ];
  const onSort = (key) => {
    const order = sort && sort.key === key && sort.order === "asc" ? "desc" : "asc";
    go({ sort: `${key}:${order}`, page: 1 });
  };

  const tabs = h("div", { class: "tabs", role: "tablist" },
    [...DEVICE_STATUSES, "all"].map((s, i) => h("a", { href: "#", role: "tab", class: s === status ? "tab active" : "tab",
      "aria-selected": String(s === status), onclick: (e) => { e.preventDefault(); go({ status: s, page: 1 }); } },
    s[0].toUpperCase() + s.slice(1), i < counts.length && counts[i] !== null ? h("span", { class: "count" }, String(counts[i])) : null)));

  const filterBox = filterBuilder(filters, attributes, (f) => go({ filters: JSON.stringify(f), page: 1 }));
  const emptyHint = filters.length ? "No device matches these filters." :
    status === "pending" ? "Devices that ask to join appear here until you accept or reject them." :
      status === "accepted" ? "Accept pending devices, or preauthorize devices, to manage them here." : "";

  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Devices"),
      h("div", { class: "head-actions" },
        h("button", { type: "button", class: "btn", onclick: () => preauthorizeDialog(ctx.refresh) }, "Preauthorize"),
        h("button", { type: "button", class: "btn", onclick: () => importDialog(ctx.refresh) }, "Import preauthorizations"))),
    tabs,
    h("details", { class: "card filters", open: filters.length ? true : undefined },
      h("summary", {}, `Filters${filters.length ? ` (${filters.length})` : ""}`), filterBox),
    bulkBar,
    table(columns, result.items, { sort, onSort, emptyTitle: `No ${status === "all" ? "" : `${status} `}devices`, emptyHint,
      rowAttrs: (d) => ({ "data-device-id": d.id }) }),
    result.total > PER_PAGE ? pager({ page, perPage: PER_PAGE, total: result.total, onChange: (p) => go({ page: p }) }) : null);
}

