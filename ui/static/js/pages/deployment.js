// One deployment: per-status progress that updates while devices report, per-device statuses, logs, abort.

import { ApiError, enc, get, getPage, put } from "../api.js";
import {
  badge, confirmAction, fmtDate, h, kvTable, link, modal, pager, progressBar, replace, section, table, toast,
} from "../dom.js";
import { DEPLOYMENTS_V1, groupStats } from "../deploy.js";
import { rolloutSections } from "../rollout.js";

const POLL_MS = 3000;
const PER_PAGE = 20;

function statusBars(stats, deviceCount) {
  const { groups, total } = groupStats(stats);
  const denominator = Math.max(total, deviceCount || 0, 1);
  return h("div", { class: "status-bars", id: "status-bars" },
    h("div", { class: "overall" }, progressBar(groups, denominator)),
    groups.map((g) => h("div", { class: "status-bar", "data-status": g.key },
      h("span", { class: "status-label" }, g.label),
      progressBar([g], denominator),
      h("span", { class: "status-count", "data-count": String(g.count) }, `${g.count}`))));
}

function showLog(deploymentId, deviceId) {
  const pre = h("pre", { class: "log", id: "device-log" }, "Loading…");
  modal(`Deployment log of ${deviceId}`, pre, []);
  get(`${DEPLOYMENTS_V1}/deployments/${enc(deploymentId)}/devices/${enc(deviceId)}/log`)
    .then((text) => { pre.textContent = typeof text === "string" ? text : JSON.stringify(text, null, 2); })
    .catch((err) => { pre.textContent = err instanceof ApiError && err.status === 404 ? "This device sent no log." : `Could not load the log: ${err.message}`; });
}

function deviceTable(dep, devices) {
  const withAttempts = devices.some((d) => d.attempts !== undefined);
  return table([
    { title: "Device", render: (d) => link(`#/devices/${enc(d.id)}`, d.id, { class: "mono" }) },
    { title: "Device type", render: (d) => d.device_type || "—" },
    { title: "Status", render: (d) => h("span", {}, badge(d.status), d.substate ? h("span", { class: "muted small" }, ` ${d.substate}`) : null) },
    withAttempts ? { title: "Attempts", render: (d) => (d.attempts !== undefined ? String(d.attempts) : "—") } : null,
    { title: "Started", render: (d) => fmtDate(d.started || d.created) },
    { title: "Finished", render: (d) => fmtDate(d.finished) },
    { title: "", class: "col-actions", render: (d) => (d.log ? h("button", { type: "button", class: "btn btn-small", onclick: () => showLog(dep.id, d.id) }, "View log") : null) },
  ].filter(Boolean), devices, { emptyTitle: "No devices yet", emptyHint: "Devices join when they check in (or when they match, for a dynamic deployment).",
    rowAttrs: (d) => ({ "data-device-id": d.id }) });
}

export async function render(ctx, [id], query) {
  const page = Math.max(1, Number(query.get("page")) || 1);
  const load = () => Promise.all([
    get(`${DEPLOYMENTS_V1}/deployments/${enc(id)}`),
    get(`${DEPLOYMENTS_V1}/deployments/${enc(id)}/statistics`),
    getPage(`${DEPLOYMENTS_V1}/deployments/${enc(id)}/devices/list`, { page, per_page: PER_PAGE }),
  ]);
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
  const update = ([dep, stats, devs]) => {
    rollout.update(dep);
    replace(head,
      h("div", {}, h("h1", {}, dep.name, " ", h("span", { id: "deployment-status" }, badge(dep.status))),
        h("div", { class: "muted mono small" }, dep.id)),
      h("div", { class: "head-actions" }, dep.status !== "finished"
        ? h("button", { type: "button", class: "btn btn-danger", id: "abort-deployment", onclick: abort }, "Abort") : null));
    const target = dep.filter ? `filter${dep.filter.name ? ` ${dep.filter.name}` : ""}` : (dep.groups && dep.groups.length ? `group ${dep.groups.join(", ")}` : "devices");
    replace(summary, kvTable([
      ...(dep.type === "configuration" ? configurationRows(dep, devs.items)
        : [["Release", link(`#/releases/${enc(dep.artifact_name)}`, dep.artifact_name)], ["Target", target]]),
      ["Devices", dep.initial_device_count && dep.initial_device_count !== dep.device_count
        ? `${dep.device_count ?? 0} so far, of ${dep.initial_device_count} targeted` : String(dep.device_count ?? "—")],
      ["Created", fmtDate(dep.created)], ["Finished", fmtDate(dep.finished)],
      ...(dep.phases && dep.phases.length > 1 ? [["Phases", h("span", {}, dep.phases.map((p, i) =>
        h("div", {}, `${i + 1}: ${p.batch_size ?? "rest"}% from ${fmtDate(p.start_ts)}`)))]] : []),
      ...(dep.retries ? [["Retries", String(dep.retries)]] : []),
    ]));
    replace(bars, statusBars(stats, dep.device_count));
    replace(devicesBox, deviceTable(dep, devs.items),
      devs.total !== null && devs.total > PER_PAGE ? pager({ page, perPage: PER_PAGE, total: devs.total,
        onChange: (p) => { location.hash = `#/deployments/${enc(id)}?page=${p}`; } }) : null);
    return dep.status;
  };
  replace(ctx.main,
    h("div", { class: "breadcrumbs" }, link("#/deployments", "Deployments"), " / ", data[0].name),
    head,
    h("div", { class: "grid-2" }, section("Overview", summary), section("Progress", bars)),
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
