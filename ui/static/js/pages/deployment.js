// One deployment: its target as chosen, an outcome badge, progress by status and per phase (updating
// while devices report), the devices by name with attempts and logs, abort.

import { ApiError, enc, get, getPage, postPage, put } from "../api.js";
import {
  badge, confirmAction, fmtDate, h, kvTable, link, modal, pager, progressBar, replace, section, table, toast,
} from "../dom.js";
import { DEPLOYMENTS_V1, groupStats } from "../deploy.js";
import { INVENTORY_V2, deviceLabel } from "../inventory.js";
import { fmtCount } from "../selection.js";
import { idAttribute } from "./settings.js";
import { rolloutSections } from "../rollout.js";

const POLL_MS = 3000;
const PER_PAGE = 20;

// What the operator chose, from the deployment's recorded target.
export function targetText(dep) {
  const t = dep.target || {};
  if (t.type === "all_devices") return "all devices";
  if (t.type === "group") return `group ${t.group}`;
  if (t.type === "filter") return t.filter_name ? `filter ${t.filter_name}` : "an inventory filter";
  if (t.type === "devices") return `${fmtCount(t.device_count || 0)} device${t.device_count === 1 ? "" : "s"}`;
  return dep.filter ? "an inventory filter" : dep.groups && dep.groups.length ? `group ${dep.groups[0]}` : "devices";
}

// The outcome badge: a finished deployment says whether every device succeeded.
export function outcome(dep, stats) {
  if (dep.status !== "finished") return { text: dep.status, kind: dep.status };
  const s = stats || {};
  if ((s.aborted || 0) > 0) return { text: "aborted", kind: "aborted" };
  if ((s.failure || 0) > 0) return { text: "finished with failures", kind: "failed" };
  if ((s.success || 0) > 0 && !s.noartifact) return { text: "all succeeded", kind: "succeeded" };
  return { text: "finished", kind: "finished" };
}

export function outcomeBadge(dep, stats, attrs = {}) {
  const o = outcome(dep, stats);
  return h("span", { class: `badge badge-${o.kind}`, ...attrs }, o.text);
}

function statusBars(stats, deviceCount) {
  const { groups, total } = groupStats(stats);
  const denominator = Math.max(total, deviceCount || 0, 1);
  return h("div", { class: "status-bars", id: "status-bars" },
    h("div", { class: "overall" }, progressBar(groups, denominator)),
    groups.map((g) => h("div", { class: "status-bar", "data-status": g.key },
      h("span", { class: "status-label" }, g.label),
      progressBar([g], denominator),
      h("span", { class: "status-count", "data-count": String(g.count) }, fmtCount(g.count)))));
}

function phaseTable(phases) {
  return table([
    { title: "Phase", render: (p, i) => `${i + 1}` },
    { title: "Starts", render: (p) => fmtDate(p.start_ts) },
    { title: "Batch", render: (p) => `${p.batch_size} %` },
    { title: "Planned", class: "num", render: (p) => (p.device_limit === null || p.device_limit === undefined ? "the rest" : fmtCount(p.device_limit)) },
    { title: "Joined", class: "num", render: (p) => fmtCount(p.device_count) },
    ...[["success", "Succeeded"], ["failure", "Failed"], ["inprogress", "In progress"], ["pending", "Pending"], ["aborted", "Aborted"]].map(([key, title]) => ({
      title, class: "num", render: (p) => h("span", { "data-key": key }, fmtCount(groupStats(p.stats).groups.find((g) => g.key === key).count)),
    })),
  ], phases, { rowAttrs: (p, i) => ({ "data-phase": p.id }) });
}

function showLog(deploymentId, deviceId, label) {
  const pre = h("pre", { class: "log", id: "device-log" }, "Loading…");
  modal(`Deployment log of ${label}`, pre, []);
  get(`${DEPLOYMENTS_V1}/deployments/${enc(deploymentId)}/devices/${enc(deviceId)}/log`)
    .then((text) => { pre.textContent = typeof text === "string" ? text : JSON.stringify(text, null, 2); })
    .catch((err) => { pre.textContent = err instanceof ApiError && err.status === 404 ? "This device sent no log." : `Could not load the log: ${err.message}`; });
}

function deviceTable(dep, devices, names) {
  const label = (d) => names[d.id] || d.id;
  return table([
    { title: "Device", render: (d) => link(`#/devices/${enc(d.id)}`, label(d), { class: "device-link", title: d.id }) },
    { title: "Device type", render: (d) => d.device_type || "—" },
    { title: "Status", render: (d) => h("span", {}, badge(d.status), d.substate ? h("span", { class: "muted small" }, ` ${d.substate}`) : null) },
    { title: "Attempts", class: "num", render: (d) => (d.attempts !== undefined ? `${d.attempts} of ${1 + (d.retries || 0)}` : "—") },
    { title: "Phase", class: "num", render: (d) => (d.phase !== undefined && d.phase !== null ? String(d.phase + 1) : "—") },
    { title: "Started", render: (d) => fmtDate(d.started) },
    { title: "Finished", render: (d) => fmtDate(d.finished) },
    { title: "", class: "col-actions", render: (d) => (d.log ? h("button", { type: "button", class: "btn btn-small", onclick: () => showLog(dep.id, d.id, label(d)) }, "View log") : null) },
  ], devices, { emptyTitle: "No devices yet", emptyHint: "Devices join when they check in (or when they match, for a dynamic deployment).",
    rowAttrs: (d) => ({ "data-device-id": d.id }) });
}

// Display names of a page of devices (the device list's), by one inventory search.
async function namesOf(ids, idAttr) {
  if (!ids.length) return {};
  try {
    const { items } = await postPage(`${INVENTORY_V2}/filters/search`, { page: 1, per_page: ids.length, device_ids: ids });
    return Object.fromEntries(items.map((d) => [d.id, deviceLabel(d, idAttr)]));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    return {};
  }
}

export async function render(ctx, [id], query) {
  const page = Math.max(1, Number(query.get("page")) || 1);
  const idAttr = await idAttribute();
  const load = async () => {
    const [dep, stats, devs, phases] = await Promise.all([
      get(`${DEPLOYMENTS_V1}/deployments/${enc(id)}`),
      get(`${DEPLOYMENTS_V1}/deployments/${enc(id)}/statistics`),
      getPage(`${DEPLOYMENTS_V1}/deployments/${enc(id)}/devices/list`, { page, per_page: PER_PAGE }),
      get(`${DEPLOYMENTS_V1}/deployments/${enc(id)}/statistics/phases`),
    ]);
    const names = await namesOf(devs.items.map((d) => d.id), idAttr);
    return [dep, stats, devs, phases, names];
  };
  let data;
  try { data = await load(); } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      replace(ctx.main, h("h1", {}, "Deployment not found"), h("p", {}, link("#/deployments", "Back to deployments")));
      return;
    }
    throw err;
  }
  if (!ctx.alive) return;
  const head = h("div", { class: "page-head" });
  const summary = h("div", { id: "deployment-summary" });
  const bars = h("div", {});
  const phasesBox = h("div", { id: "phase-breakdown" });
  const devicesBox = h("div", {});
  const abort = async () => {
    if (!(await confirmAction("Abort deployment", "Devices that have not finished stop updating; finished ones keep their software.", "Abort deployment"))) return;
    try {
      await put(`${DEPLOYMENTS_V1}/deployments/${enc(id)}/status`, { status: "aborted" });
      toast("Deployment aborted", "success");
      update(await load());
    } catch (err) { toast(err.message, "error"); }
  };
  const rollout = rolloutSections(id, async () => update(await load()));
  const update = ([dep, stats, devs, phases, names]) => {
    rollout.update(dep);
    replace(head,
      h("div", {}, h("h1", {}, dep.name, " ", outcomeBadge(dep, stats, { id: "deployment-status" })),
        h("div", { class: "muted mono small" }, dep.id)),
      h("div", { class: "head-actions" }, dep.status !== "finished"
        ? h("button", { type: "button", class: "btn btn-danger", id: "abort-deployment", onclick: abort }, "Abort") : null));
    const total = groupStats(stats).total;
    replace(summary, kvTable([
      ...(dep.type === "configuration" ? configurationRows(dep, devs.items)
        : [["Release", link(`#/releases/${enc(dep.artifact_name)}`, dep.artifact_name)],
          ["Target", h("span", { id: "deployment-target" }, targetText(dep))]]),
      ["Devices", dep.dynamic ? `${fmtCount(dep.device_count ?? 0)} so far (${fmtCount(dep.initial_device_count || 0)} matched at the start)`
        : fmtCount(Math.max(total, dep.device_count || 0))],
      ["Created", fmtDate(dep.created)], ["Finished", fmtDate(dep.finished)],
      ["Retries", dep.retries ? `${dep.retries} per device` : "none"],
    ]));
    replace(bars, statusBars(stats, dep.dynamic ? dep.device_count : Math.max(total, dep.device_count || 0)));
    replace(phasesBox, phases.length ? phaseTable(phases) : null);
    phasesBox.closest("section").hidden = !phases.length;
    replace(devicesBox, deviceTable(dep, devs.items, names),
      devs.total !== null && devs.total > PER_PAGE ? pager({ page, perPage: PER_PAGE, total: devs.total,
        onChange: (p) => { location.hash = `#/deployments/${enc(id)}?page=${p}`; } }) : null);
    return dep.status;
  };
  replace(ctx.main,
    h("div", { class: "breadcrumbs" }, link("#/deployments", "Deployments"), " / ", data[0].name),
    head,
    h("div", { class: "grid-2" }, section("Overview", summary), section("Progress", bars)),
    section("Phases", phasesBox),
    ...rollout.nodes,
    section("Devices", devicesBox));
  let status = update(data);
  // Poll while devices can still report; stop once finished and one more refresh has shown the end state.
  ctx.every(POLL_MS, async () => {
    if (status === "finished" || document.querySelector(".modal-backdrop")) return;
    try { const fresh = await load(); if (ctx.alive) status = update(fresh); } catch { /* retried on the next tick */ }
  });
}

// A configuration deployment (deviceconfig's): no release, one device; the values stay with
// deviceconfig, the deployment shows the keys only.
function configurationRows(dep, devices) {
  let keys = [];
  try { keys = Object.keys(JSON.parse(dep.configuration || "{}")); } catch { /* shown as none */ }
  const device = devices[0];
  return [
    ["Type", "Configuration"],
    ["Device", device ? link(`#/devices/${enc(device.id)}`, device.id, { id: "configuration-device" }) : "—"],
    ["Keys", keys.length ? h("span", { id: "configuration-keys" }, keys.join(", ")) : "none"],
  ];
}
