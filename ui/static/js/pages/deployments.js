// Deployments: the list by status, with progress.

import { enc, getPage } from "../api.js";
import { fmtDate, h, link, navigate, pager, replace, table } from "../dom.js";
import { outcomeBadge } from "./deployment.js";
import { DEPLOYMENTS_V1, progressCell, statisticsOf, statsOf } from "../deploy.js";

const PER_PAGE = 20;
const TABS = [["inprogress", "In progress"], ["pending", "Pending"], ["finished", "Finished"], ["", "All"]];

export async function render(ctx, _params, query) {
  const status = query.has("status") ? query.get("status") : "";
  const page = Math.max(1, Number(query.get("page")) || 1);
  const search = query.get("search") || "";
  const go = (changes) => navigate("deployments", { status, page, search, ...changes });
  const load = async () => {
    const result = await getPage(`${DEPLOYMENTS_V1}/deployments`, { status: status || undefined, page, per_page: PER_PAGE, search: search || undefined, sort: "desc" });
    const stats = await statisticsOf(result.items.map((d) => d.id));
    return { ...result, stats };
  };
  const box = h("div", { id: "deployment-list" });
  const draw = ({ items, total, stats }) => {
    replace(box,
      table([
        { title: "Deployment", render: (d) => link(`#/deployments/${enc(d.id)}`, d.name, { class: "deployment-link" }) },
        { title: "Release", render: (d) => (d.type === "configuration" ? h("span", { class: "muted" }, "configuration") : d.artifact_name) },
        { title: "Devices", render: (d) => String(d.device_count ?? "—") },
        { title: "Progress", render: (d) => progressCell(statsOf(d, stats), d.device_count) },
        { title: "Status", render: (d) => outcomeBadge(d, statsOf(d, stats)) },
        { title: "Created", render: (d) => fmtDate(d.created) },
        { title: "Finished", render: (d) => fmtDate(d.finished) },
      ], items, { emptyTitle: "No deployments", emptyHint: status === "finished" ? "" : "Create a deployment to roll a release out to devices.",
        rowAttrs: (d) => ({ "data-deployment-id": d.id }) }),
      total !== null && total > PER_PAGE ? pager({ page, perPage: PER_PAGE, total, onChange: (p) => go({ page: p }) })
        : total === null && (page > 1 || items.length === PER_PAGE) ? pager({ page, perPage: PER_PAGE, total: (page - 1) * PER_PAGE + items.length + (items.length === PER_PAGE ? 1 : 0), onChange: (p) => go({ page: p }) }) : null);
  };
  const searchBox = h("input", { type: "search", id: "deployment-search", placeholder: "Search by name or release", value: search });
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Deployments"),
      h("div", { class: "head-actions" }, h("a", { class: "btn btn-primary", href: "#/deployments/new", id: "new-deployment" }, "Create deployment"))),
    h("div", { class: "tabs", role: "tablist" }, TABS.map(([value, label]) => h("a", {
      href: "#", role: "tab", class: value === status ? "tab active" : "tab", "aria-selected": String(value === status),
      onclick: (e) => { e.preventDefault(); go({ status: value, page: 1 }); } }, label))),
    h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); go({ search: searchBox.value.trim(), page: 1 }); } },
      searchBox, h("button", { type: "submit", class: "btn btn-small" }, "Search")),
    box);
  draw(await load());
  if (status !== "finished") ctx.every(4000, async () => { try { const d = await load(); if (ctx.alive) draw(d); } catch { /* retried */ } });
}
