// Dashboard: devices by status, devices waiting for acceptance, active deployments, recent failures.

import { enc, get, getPage } from "../api.js";
import { empty, fmtAgo, fmtDate, h, link, replace, section, table, toast } from "../dom.js";
import { outcomeBadge } from "./deployment.js";
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
    // no Created column: the half-width card holds name, release, progress and the whole badge
    // (the deployment list has the dates); the name says when on hover
    { title: "Deployment", class: "nowrap", render: (d) => link(`#/deployments/${enc(d.id)}`, d.name, { title: `created ${fmtDate(d.created)}` }) },
    { title: "Release", class: "nowrap", render: (d) => d.artifact_name },
    { title: "Progress", render: (d) => progressCell(statsOf(d, stats), d.device_count) },
    { title: "Status", render: (d) => outcomeBadge(d, statsOf(d, stats)) },
  ], items, { emptyTitle, emptyHint });
}

// Each part loads on its own, so that one failing API leaves the rest of the dashboard working.
async function part(promise) {
  try { return { ok: true, value: await promise }; } catch (err) {
    if (err.status === 401) throw err;
    return { ok: false, error: err.message };
  }
}

async function loadDeployments() {
  const [active, pendingDeps, finished] = await Promise.all(["inprogress", "pending", "finished"].map((status) =>
    getPage(`${DEPLOYMENTS_V1}/deployments`, { status, per_page: status === "finished" ? 20 : 10, sort: "desc" })));
  const running = [...active.items, ...pendingDeps.items];
  const stats = await statisticsOf([...running, ...finished.items].map((d) => d.id));
  const failures = finished.items.filter((d) => groupStats(statsOf(d, stats)).groups.find((g) => g.key === "failure").count > 0).slice(0, 5);
  return { running, failures, stats };
}

async function load() {
  const [counts, pending, deployments] = await Promise.all([
    part(Promise.all(DEVICE_STATUSES.map((s) => get(`${DEVAUTH}/devices/count`, { status: s }).then((r) => r.count)))),
    part(get(`${DEVAUTH}/devices`, { status: "pending", per_page: 5 })),
    part(loadDeployments()),
  ]);
  return { counts, pending, deployments };
}

function failed(result) {
  return h("div", { class: "alert alert-error" }, `Could not load: ${result.error}`);
}

export async function render(ctx) {
  const draw = (data) => {
    const { counts, pending, deployments: deps } = data;
    const pendingTotal = counts.ok ? counts.value[1] : 0;
    replace(ctx.main,
      h("div", { class: "page-head" }, h("h1", {}, "Dashboard")),
      counts.ok ? statusCards(counts.value) : failed(counts),
      h("div", { class: "grid-2" },
        section("Waiting for acceptance", pending.ok ? pendingList(pending.value || [], ctx.refresh) : failed(pending),
          pending.ok && pendingTotal > (pending.value || []).length ? h("p", {}, link("#/devices?status=pending", `All ${pendingTotal} pending devices →`)) : null),
        section("Recent failures", deps.ok ? deploymentTable(deps.value.failures, deps.value.stats, "No recent failures",
          "Finished deployments where a device failed show up here.") : failed(deps))),
      section("Active deployments", deps.ok ? deploymentTable(deps.value.running, deps.value.stats, "No active deployments",
        "Create a deployment to update devices.") : failed(deps), h("p", {}, link("#/deployments/new", "Create a deployment →"))));
  };
  draw(await load());
  ctx.every(REFRESH_MS, async () => {
    if (document.querySelector(".modal-backdrop")) return;
    try { const data = await load(); if (ctx.alive) draw(data); } catch { /* next tick retries */ }
  });
}
