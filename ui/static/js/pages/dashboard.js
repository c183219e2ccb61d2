// Dashboard: devices by status, devices waiting for acceptance, active deployments, recent failures.

import { enc, get, getPage } from "../api.js";
import { badge, empty, fmtAgo, fmtDate, h, link, replace, section, table, toast } from "../dom.js";
import { DEVAUTH, DEVICE_STATUSES, identityLabel, setAuthStatus } from "../inventory.js";
import { DEPLOYMENTS_V1, groupStats, progressCell, statisticsOf, statsOf } from "../deploy.js";

const REFRESH_MS = 5000;

function statusCards(counts) {
  return h("div", { class: "stat-cards" }, DEVICE_STATUSES.map((s, i) =>
    h("a", { class: `stat-card stat-${s}`, href: `#/devices?status=${s}` },
      h("span", { class: "stat-value" }, counts[i] === null ? "—" : String(counts[i])),
      h("span", { class: "stat-label" }, s))));
}

function pendingList(devices, refresh) {
  if (!devices.length) return empty("No devices waiting", "New devices appear here when they first ask to join.");
  return table([
    { title: "Identity", render: (d) => link(`#/devices/${enc(d.id)}`, identityLabel(d.identity_data)) },
    { title: "Asked", render: (d) => fmtAgo(d.created_ts) },
    { title: "", class: "col-actions", render: (d) => h("button", { type: "button", class: "btn btn-small btn-primary", onclick: async () => {
      try { await setAuthStatus(d.id, "accepted"); toast("Device accepted", "success"); refresh(); } catch (err) { toast(err.message, "error"); }
    } }, "Accept") },
  ], devices);
}

function deploymentTable(items, stats, emptyTitle, emptyHint) {
  return table([
    { title: "Deployment", render: (d) => link(`#/deployments/${enc(d.id)}`, d.name) },
    { title: "Release", render: (d) => d.artifact_name },
    { title: "Progress", render: (d) => progressCell(statsOf(d, stats), d.device_count) },
    { title: "Status", render: (d) => badge(d.status) },
    { title: "Created", render: (d) => fmtDate(d.created) },
  ], items, { emptyTitle, emptyHint });
}

async function load() {
  const [counts, pending, active, pendingDeps, finished] = await Promise.all([
    Promise.all(DEVICE_STATUSES.map((s) => get(`${DEVAUTH}/devices/count`, { status: s }).then((r) => r.count).catch(() => null))),
    get(`${DEVAUTH}/devices`, { status: "pending", per_page: 5 }),
    getPage(`${DEPLOYMENTS_V1}/deployments`, { status: "inprogress", per_page: 10 }),
    getPage(`${DEPLOYMENTS_V1}/deployments`, { status: "pending", per_page: 10 }),
    getPage(`${DEPLOYMENTS_V1}/deployments`, { status: "finished", per_page: 20 }),
  ]);
  const running = [...active.items, ...pendingDeps.items];
  const stats = await statisticsOf([...running, ...finished.items].map((d) => d.id));
  const failures = finished.items.filter((d) => groupStats(statsOf(d, stats)).groups.find((g) => g.key === "failure").count > 0).slice(0, 5);
  return { counts, pending: pending || [], running, finished: finished.items, failures, stats };
}

export async function render(ctx) {
  const draw = (data) => {
    replace(ctx.main,
      h("div", { class: "page-head" }, h("h1", {}, "Dashboard")),
      statusCards(data.counts),
      h("div", { class: "grid-2" },
        section("Waiting for acceptance", pendingList(data.pending, ctx.refresh),
          data.counts[1] > data.pending.length ? h("p", {}, link("#/devices?status=pending", `All ${data.counts[1]} pending devices →`)) : null),
        section("Recent failures", deploymentTable(data.failures, data.stats, "No recent failures", "Finished deployments where a device failed show up here."))),
      section("Active deployments", deploymentTable(data.running, data.stats, "No active deployments",
        "Create a deployment to update devices."), h("p", {}, link("#/deployments/new", "Create a deployment →"))));
  };
  draw(await load());
  ctx.every(REFRESH_MS, async () => {
    if (document.querySelector(".modal-backdrop")) return;
    try { const data = await load(); if (ctx.alive) draw(data); } catch { /* next tick retries */ }
  });
}
