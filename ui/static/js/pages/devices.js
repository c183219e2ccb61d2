// Devices: status tabs, a search box and the filter builder (both in the URL), sort by any column,
// page size, and bulk actions on a selection or on every device matching the search: one request each.

import { enc, get, post, postPage } from "../api.js";
import { badge, confirmAction, field, fmtAgo, h, link, modal, navigate, pager, replace, table, toast } from "../dom.js";
import {
  DEVAUTH, DEVICE_STATUSES, INVENTORY_V2, attr, deviceLabel, filterAttributes, filterBuilder, groups,
  setAuthStatus,
} from "../inventory.js";
import { preauthorizeDialog, importDialog } from "./preauthorize.js";
import { bulkGroupDialog, bulkPaths, bulkTagDialog, fmtCount, runBulk, selectionBody } from "../selection.js";
import { idAttribute } from "./settings.js";

export const PAGE_SIZES = [20, 50, 100, 250, 500];
let lastResult = null; // the panel of the last bulk action, shown once after the list reloads

function parseFilters(text) {
  try { const v = JSON.parse(text || "[]"); return Array.isArray(v) ? v : []; } catch { return []; }
}

// The search the URL describes, as the v2 filters/search body (without paging and sort).
export function searchOf(query) {
  const status = query.get("status") || "accepted";
  const filters = parseFilters(query.get("filters"));
  const all = [...filters];
  if (status !== "all") all.push({ scope: "identity", attribute: "status", type: "$eq", value: status });
  const text = (query.get("q") || "").trim();
  return { status, filters, text, body: { filters: all, ...(text ? { text } : {}) } };
}

function saveFilterDialog(filters) {
  const name = h("input", { id: "filter-name", maxlength: "256", placeholder: "e.g. arm boards in Tallinn" });
  const error = h("div", { class: "field-error", role: "alert" });
  modal("Save as a filter", h("div", {}, field("Name", name, "Saved filters can be deployed to (devices that match later join too)."), error), [{
    label: "Save filter", onclick: async (close) => {
      if (!name.value.trim()) { error.textContent = "Give the filter a name."; return; }
      try {
        await post(`${INVENTORY_V2}/filters`, { name: name.value.trim(), terms: filters });
        close();
        toast(`Filter "${name.value.trim()}" saved`, "success");
      } catch (err) { error.textContent = err.message; }
    },
  }]);
}

export async function render(ctx, _params, query) {
  const { status, filters, text, body: search } = searchOf(query);
  const page = Math.max(1, Number(query.get("page")) || 1);
  const perPage = PAGE_SIZES.includes(Number(query.get("per_page"))) ? Number(query.get("per_page")) : 20;
  const [sortScope, sortAttr, sortOrder] = (query.get("sort") || "").split(":");
  const sort = sortAttr ? { key: `${sortScope}:${sortAttr}`, order: sortOrder === "desc" ? "desc" : "asc" } : null;
  const state = { status, page, per_page: perPage === 20 ? "" : perPage, q: text, filters: filters.length ? JSON.stringify(filters) : "", sort: query.get("sort") || "" };
  const go = (changes) => navigate("devices", { ...state, ...changes });

  const body = { page, per_page: perPage, ...search };
  if (sort) body.sort = [{ scope: sortScope, attribute: sortAttr, order: sort.order }];
  const [result, counts, attributes, idAttr, known] = await Promise.all([
    postPage(`${INVENTORY_V2}/filters/search`, body),
    Promise.all(DEVICE_STATUSES.map((s) => get(`${DEVAUTH}/devices/count`, { status: s }).then((r) => r.count).catch(() => null))),
    filterAttributes(),
    idAttribute(),
    groups(),
  ]);
  if (!ctx.alive) return;

  // selection: ids picked on this page, or `all` = every device matching the search
  const selection = { all: false, ids: new Set(), filters: search.filters, text: search.text };
  const count = () => (selection.all ? result.total : selection.ids.size);
  const resultBox = h("div", { id: "bulk-result" }, lastResult);
  lastResult = null;
  const bulkBar = h("div", { class: "bulk-bar", hidden: true });
  const after = () => { lastResult = resultBox.firstChild; ctx.refresh(); };
  const act = async (title, [method, path], extra = {}) => {
    await runBulk({ title, method, path, body: { ...selectionBody(selection), ...extra }, into: resultBox });
    after();
  };
  const bulkButtons = () => {
    const b = [];
    const n = count();
    if (["pending", "rejected", "all"].includes(status)) {
      b.push(h("button", { type: "button", class: "btn btn-small btn-primary", onclick: () => act("Accepted", bulkPaths.status(), { status: "accepted" }) }, "Accept"));
    }
    if (["pending", "accepted", "all"].includes(status)) {
      b.push(h("button", { type: "button", class: "btn btn-small", onclick: () => act("Rejected", bulkPaths.status(), { status: "rejected" }) }, "Reject"));
    }
    b.push(h("button", { type: "button", class: "btn btn-small", id: "bulk-group", onclick: () => bulkGroupDialog(selection, n, known, resultBox, after) }, "Group…"));
    b.push(h("button", { type: "button", class: "btn btn-small", id: "bulk-tag", onclick: () => bulkTagDialog(selection, n, resultBox, after) }, "Tag…"));
    b.push(h("button", { type: "button", class: "btn btn-small btn-danger", onclick: async () => {
      if (!(await confirmAction("Decommission devices", `Decommission ${fmtCount(n)} device${n === 1 ? "" : "s"}? Their inventory and pending deployments are removed.`, "Decommission"))) return;
      act("Decommissioned", bulkPaths.decommission());
    } }, "Decommission"));
    return b;
  };
  const pageBoxes = () => [...ctx.main.querySelectorAll("input.row-check")];
  const refreshBulk = () => {
    const n = count();
    bulkBar.hidden = n === 0;
    const onPage = pageBoxes();
    const wholePage = onPage.length > 0 && onPage.every((b) => b.checked);
    let banner = null;
    if (selection.all) {
      banner = h("span", { class: "select-all-note" }, `All ${fmtCount(result.total)} matching devices are selected. `,
        h("button", { type: "button", class: "link-button link", id: "clear-selection", onclick: () => {
          selection.all = false; selection.ids.clear(); onPage.forEach((b) => { b.checked = false; }); selectAll.checked = false; refreshBulk();
        } }, "Clear selection"));
    } else if (wholePage && result.total > onPage.length) {
      banner = h("span", { class: "select-all-note" }, `All ${onPage.length} on this page are selected. `,
        h("button", { type: "button", class: "link-button link", id: "select-all-matching", onclick: () => { selection.all = true; refreshBulk(); } },
          `Select all ${fmtCount(result.total)} matching`));
    }
    replace(bulkBar, h("strong", { id: "selected-count" }, `${fmtCount(n)} selected`), banner, h("span", { class: "bulk-actions" }, bulkButtons()));
  };

  const checkbox = (d) => h("input", { type: "checkbox", class: "row-check", value: d.id, "aria-label": `select ${d.id}`, onchange: (e) => {
    if (selection.all) { selection.all = false; pageBoxes().forEach((b) => { if (b.checked) selection.ids.add(b.value); }); }
    if (e.target.checked) selection.ids.add(d.id); else selection.ids.delete(d.id);
    refreshBulk();
  } });
  const selectAll = h("input", { type: "checkbox", id: "select-page", "aria-label": "select this page", onchange: (e) => {
    selection.all = false;
    for (const box of pageBoxes()) {
      box.checked = e.target.checked;
      if (box.checked) selection.ids.add(box.value); else selection.ids.delete(box.value);
    }
    refreshBulk();
  } });
  const rowActions = (d) => {
    if (attr(d, "identity", "status") !== "pending") return null;
    return h("span", { class: "row-actions" },
      h("button", { type: "button", class: "btn btn-small btn-primary", onclick: async () => {
        try { await setAuthStatus(d.id, "accepted"); toast("Device accepted", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
      } }, "Accept"),
      h("button", { type: "button", class: "btn btn-small", onclick: async () => {
        try { await setAuthStatus(d.id, "rejected"); toast("Device rejected"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
      } }, "Reject"));
  };
  const nameKey = idAttr && idAttr.attribute && idAttr.attribute !== "id" ? `${idAttr.scope || "identity"}:${idAttr.attribute}` : "identity:id";
  const columns = [
    { title: selectAll, render: checkbox, class: "col-check" },
    { title: "Device", sortKey: nameKey, render: (d) => link(`#/devices/${enc(d.id)}`, deviceLabel(d, idAttr), { class: "device-link", title: d.id }) },
    { title: "Device type", sortKey: "inventory:device_type", render: (d) => attr(d, "inventory", "device_type") ?? "—" },
    { title: "Software", sortKey: "inventory:artifact_name", render: (d) => attr(d, "inventory", "artifact_name") ?? "—" },
    { title: "Group", sortKey: "system:group", render: (d) => attr(d, "system", "group") ?? "—" },
    { title: "Status", sortKey: "identity:status", render: (d) => badge(attr(d, "identity", "status")) },
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
    s[0].toUpperCase() + s.slice(1), i < counts.length && counts[i] !== null ? h("span", { class: "count" }, fmtCount(counts[i])) : null)));

  const searchBox = h("input", { type: "search", id: "device-search", value: text, "aria-label": "search devices",
    placeholder: "Search name, MAC, serial, any attribute…" });
  const searchForm = h("form", { class: "toolbar search-bar", role: "search", onsubmit: (e) => { e.preventDefault(); go({ q: searchBox.value.trim(), page: 1 }); } },
    searchBox, h("button", { type: "submit", class: "btn btn-small btn-primary", id: "device-search-button" }, "Search"),
    h("label", { class: "page-size" }, "Per page ", h("select", { id: "page-size", "aria-label": "devices per page", onchange: (e) => go({ per_page: Number(e.target.value) === 20 ? "" : e.target.value, page: 1 }) },
      PAGE_SIZES.map((n) => h("option", { value: String(n), selected: n === perPage }, String(n))))));
  const filterBox = filterBuilder(filters, attributes, (f) => go({ filters: f.length ? JSON.stringify(f) : "", page: 1 }),
    { applyLabel: "Apply filters" });
  const saveFilter = h("button", { type: "button", class: "btn btn-small", id: "save-filter", disabled: !filters.length || Boolean(text),
    title: text ? "The text search cannot be saved: express it as attribute filters" : filters.length ? "" : "Add a filter first",
    onclick: () => saveFilterDialog(filters) }, "Save as filter");
  filterBox.querySelector(".filter-actions").append(saveFilter);
  const emptyHint = text ? "No device matches this search." : filters.length ? "No device matches these filters." :
    status === "pending" ? "Devices that ask to join appear here until you accept or reject them." :
      status === "accepted" ? "Accept pending devices, or preauthorize devices, to manage them here." : "";

  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Devices"),
      h("div", { class: "head-actions" },
        h("button", { type: "button", class: "btn", onclick: () => preauthorizeDialog(ctx.refresh) }, "Preauthorize"),
        h("button", { type: "button", class: "btn", onclick: () => importDialog(ctx.refresh) }, "Import preauthorizations"))),
    tabs,
    searchForm,
    h("details", { class: "card filters", open: filters.length ? true : undefined },
      h("summary", {}, `Filters${filters.length ? ` (${filters.length})` : ""}`), filterBox),
    h("div", { class: "result-line muted", id: "match-count" }, `${fmtCount(result.total)} device${result.total === 1 ? "" : "s"} match`),
    resultBox,
    bulkBar,
    table(columns, result.items, { sort, onSort, emptyTitle: `No ${status === "all" ? "" : `${status} `}devices`, emptyHint,
      rowAttrs: (d) => ({ "data-device-id": d.id }) }),
    result.total > perPage ? pager({ page, perPage, total: result.total, onChange: (p) => go({ page: p }) }) : null);
}
