// Groups and saved filters: static groups with their sizes, saved filters with their live counts;
// open either in the device list, deploy to either.

import { ApiError, del, enc, getPage, postPage } from "../api.js";
import { confirmAction, empty, h, link, replace, section, table, toast } from "../dom.js";
import { INVENTORY_V1, INVENTORY_V2, groups } from "../inventory.js";
import { fmtCount } from "../selection.js";

const ACCEPTED = { scope: "identity", attribute: "status", type: "$eq", value: "accepted" };
const MAX_COUNTED = 200; // groups and filters counted on one page view (each count is one indexed search)

// How many devices match these predicates (one search, one row).
export async function countOf(filters) {
  const { total } = await postPage(`${INVENTORY_V2}/filters/search`, { page: 1, per_page: 1, filters, attributes: [{ scope: "identity", attribute: "status" }] });
  return total;
}

export const groupFilter = (name) => [{ scope: "system", attribute: "group", type: "$eq", value: name }];
export const devicesLink = (filters, status = "all") => `#/devices?status=${status}&filters=${enc(JSON.stringify(filters))}`;

async function savedFilters() {
  try {
    const { items } = await getPage(`${INVENTORY_V2}/filters`, { per_page: 500 });
    return items;
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) return [];
    throw err;
  }
}

function countCell(promise) {
  const cell = h("span", { class: "count-cell" }, "…");
  promise.then((n) => { cell.textContent = fmtCount(n); }, () => { cell.textContent = "—"; });
  return cell;
}

export async function render(ctx) {
  const [names, filters] = await Promise.all([groups(), savedFilters()]);
  if (!ctx.alive) return;
  const removeGroup = (name) => async () => {
    if (!(await confirmAction("Delete group", `Take every device out of ${name}? The devices stay.`, "Delete group"))) return;
    try { await del(`${INVENTORY_V1}/groups/${enc(name)}`); toast(`Group ${name} deleted`, "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  const removeFilter = (f) => async () => {
    if (!(await confirmAction("Delete filter", `Delete the saved filter "${f.name}"? Deployments made from it keep its terms.`, "Delete filter"))) return;
    try { await del(`${INVENTORY_V2}/filters/${enc(f.id)}`); toast("Filter deleted", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  const describe = (terms) => (terms || []).map((t) => `${t.scope}.${t.attribute} ${t.type} ${Array.isArray(t.value) ? t.value.join(", ") : String(t.value)}`).join(" and ");
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Groups and filters"),
      h("div", { class: "head-actions" }, h("a", { class: "btn", href: "#/devices" }, "Search devices to make a filter"))),
    section("Static groups",
      h("p", { class: "muted" }, "A device is in at most one group. Add devices to a group from the device list (select, then Group…)."),
      names.length ? table([
        { title: "Group", render: (g) => link(devicesLink(groupFilter(g)), g, { class: "group-link" }) },
        { title: "Devices", class: "num", render: (g, i) => (i < MAX_COUNTED ? countCell(countOf(groupFilter(g))) : "—") },
        { title: "Accepted", class: "num", render: (g, i) => (i < MAX_COUNTED ? countCell(countOf([...groupFilter(g), ACCEPTED])) : "—") },
        { title: "", class: "col-actions", render: (g) => h("span", { class: "row-actions" },
          h("a", { class: "btn btn-small btn-primary", href: `#/deployments/new?group=${enc(g)}` }, "Deploy"),
          h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: removeGroup(g) }, "Delete")) },
      ], names, { rowAttrs: (g) => ({ "data-group": g }) }) : empty("No groups yet", "Select devices in the device list and choose Group…")),
    section("Saved filters",
      h("p", { class: "muted" }, "Counts are live: devices that match later join deployments made to a filter."),
      filters.length ? table([
        { title: "Filter", render: (f) => link(devicesLink(f.terms, "accepted"), f.name, { class: "filter-link" }) },
        { title: "Terms", render: (f) => h("span", { class: "mono small" }, describe(f.terms)) },
        { title: "Accepted devices", class: "num", render: (f, i) => (i < MAX_COUNTED ? countCell(countOf([...f.terms, ACCEPTED])) : "—") },
        { title: "", class: "col-actions", render: (f) => h("span", { class: "row-actions" },
          h("a", { class: "btn btn-small btn-primary", href: `#/deployments/new?filter=${enc(f.id)}` }, "Deploy"),
          h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: removeFilter(f) }, "Delete")) },
      ], filters, { rowAttrs: (f) => ({ "data-filter-id": f.id }) }) : empty("No saved filters", "Search devices with filters, then Save as filter.")));
}
