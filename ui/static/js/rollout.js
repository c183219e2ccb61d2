// Rollout safety on the deployment page: the pause state and its controls (pause, resume, start the
// next phase now), the deployment's history (automatic decisions included) and the failure insight
// (a ranked chart of the attribute values failed devices share, each bar linking to those devices).

import { ApiError, enc, get, getPage, post } from "./api.js";
import { confirmAction, empty, fmtDate, h, link, progressBar, replace, section, toast } from "./dom.js";
import { DEPLOYMENTS_V2 } from "./deploy.js";

const EVENT_TEXT = {
  started: "Started: the first device began",
  phase_promoted: "Phase opened by its schedule",
  phase_continued: "Next phase started early by an operator",
  paused: "Paused",
  resumed: "Resumed",
  aborted: "Aborted",
  finished: "Finished",
  update_control_map: "Update control map changed",
};

const pct = (x) => `${Math.round(1000 * x) / 10} %`;
// "artifact_name" recorded by the deployment is the artifact the device ran before it
const attrName = (b) => (b.scope === "deployment" && b.attribute === "artifact_name" ? "the previous artifact" : b.attribute);

function pauseText(dep) {
  const why = dep.paused_reason === "failure_threshold" ? "by its failure threshold" : "by an operator";
  return `Paused ${why} since ${fmtDate(dep.paused_ts)}: no new device starts it; devices already installing finish.`;
}

function rulesText(dep) {
  const parts = [];
  if (dep.failure_threshold) parts.push(`${dep.failure_action === "abort" ? "aborts" : "pauses"} when ${dep.failure_threshold} % of a phase's devices failed`);
  if (dep.success_threshold) parts.push(`a phase opens once ${dep.success_threshold} % of the previous one succeeded`);
  if (dep.maintenance_window) {
    const w = dep.maintenance_window;
    parts.push(`devices start only between ${w.start} and ${w.end} (${w.timezone})`);
  }
  if (dep.update_control_map) parts.push("devices follow an update control map");
  return parts.length ? `Rules: ${parts.join("; ")}.` : "";
}

function eventDetail(e) {
  const d = e.detail || {};
  if (e.type === "paused" || e.type === "aborted") {
    if (d.reason === "failure_threshold") {
      const where = d.phase === null || d.phase === undefined ? "" : ` in phase ${d.phase + 1}`;
      return ` by the failure threshold: ${d.failed} of ${d.devices} devices${where} failed (threshold ${d.failure_threshold} %)`;
    }
    return " by an operator";
  }
  if (e.type === "phase_promoted" || e.type === "phase_continued") return `: phase ${d.phase + 1}`;
  if (e.type === "finished" || (e.type === "aborted" && d.statistics)) {
    const s = d.statistics || {};
    return `: ${s.success || 0} succeeded, ${s.failure || 0} failed`;
  }
  if (e.type === "update_control_map" && d.device_id) return ` for device ${d.device_id}`;
  return "";
}

function historyList(events) {
  if (!events.length) return empty("Nothing has happened yet");
  return h("ol", { class: "history", id: "deployment-history" }, events.map((e) =>
    h("li", { "data-event": e.type },
      h("span", { class: "muted small" }, fmtDate(e.ts), " "),
      h("span", {}, EVENT_TEXT[e.type] || e.type, eventDetail(e)),
      e.actor && e.actor !== "system" ? h("span", { class: "muted small" }, " (operator)") : null)));
}

function devicesLink(b) {
  // the devices page, filtered to the value (what the deployment recorded itself has no inventory filter)
  if (b.scope === "deployment" && b.attribute !== "device_type") return null;
  const filters = [{ scope: "inventory", attribute: b.attribute, type: "$eq", value: b.value }];
  return `#/devices?status=all&filters=${encodeURIComponent(JSON.stringify(filters))}`;
}

export function insightChart(insight) {
  const rows = insight.breakdowns || [];
  if (!insight.failed) return empty("No device has failed", "The insight appears once devices fail.");
  const top = rows[0];
  const headline = top ? h("p", { class: "insight-headline", id: "insight-headline" },
    `${pct(top.share_of_failures)} of failures ran ${attrName(top)} ${top.value}, where the failure rate is `,
    `${pct(top.failure_rate)} vs ${pct(top.failure_rate_elsewhere)} elsewhere.`) : null;
  const bars = h("div", { class: "insight-bars", id: "insight-bars" }, rows.map((b, i) => {
    const href = devicesLink(b);
    const label = `${attrName(b)} = ${b.value}`;
    return h("div", { class: "insight-row", "data-rank": String(i + 1), "data-attribute": b.attribute },
      h("span", { class: "insight-label" }, href ? link(href, label, { class: "insight-link" }) : label),
      progressBar([{ key: "failure", label: "Share of failures", count: b.failed }], insight.failed),
      h("span", { class: "muted small insight-counts" },
        `${b.failed} of ${b.devices} failed (${pct(b.failure_rate)} vs ${pct(b.failure_rate_elsewhere)})`,
        b.exact ? "" : " · estimated from a sample"));
  }));
  const lines = (insight.error_lines || []).length ? h("div", {},
    h("h3", {}, "Most common errors"),
    h("ol", { class: "error-lines", id: "error-lines" }, insight.error_lines.map((e) =>
      h("li", {}, h("code", {}, e.example), h("span", { class: "muted small" }, ` on ${e.devices} device${e.devices === 1 ? "" : "s"}`))))) : null;
  return h("div", { id: "failure-insight" }, headline, bars, lines);
}

// The rollout sections of the deployment page; update(dep) refreshes the controls and history.
export function rolloutSections(id, reload) {
  const controls = h("div", { id: "rollout-controls" });
  const history = h("div", {});
  const insight = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const act = async (path, done, confirm) => {
    if (confirm && !(await confirmAction(...confirm))) return;
    try {
      await post(`${DEPLOYMENTS_V2}/deployments/${enc(id)}/${path}`, {});
      toast(done, "success");
      await reload();
    } catch (err) { toast(err.message, "error"); }
  };
  const loadInsight = async () => {
    try { replace(insight, insightChart(await get(`${DEPLOYMENTS_V2}/deployments/${enc(id)}/insights`))); } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) replace(insight, h("p", { class: "muted" }, `Could not load the insight: ${err.message}`));
    }
  };
  const update = async (dep) => {
    const open = dep.status !== "finished";
    const hasNext = dep.phases && dep.phases.length > 1 && (dep.current_phase ?? 0) < dep.phases.length - 1;
    replace(controls,
      dep.paused ? h("div", { class: "alert alert-warning", id: "paused-banner", role: "status" }, pauseText(dep)) : null,
      rulesText(dep) ? h("p", { class: "muted small", id: "rollout-rules" }, rulesText(dep)) : null,
      open ? h("div", { class: "head-actions" },
        dep.paused
          ? h("button", { type: "button", class: "btn btn-primary", id: "resume-deployment", onclick: () => act("resume", "Deployment resumed") }, "Resume")
          : h("button", { type: "button", class: "btn", id: "pause-deployment", onclick: () => act("pause", "Deployment paused") }, "Pause"),
        hasNext ? h("button", { type: "button", class: "btn", id: "continue-deployment", onclick: () => act("continue", "Next phase started",
          ["Start the next phase now", "Devices of the next phase may start before its scheduled time and before this phase reached its success threshold.", "Start next phase", "btn-primary"]) },
        "Start next phase now") : null) : null);
    try {
      const events = await getPage(`${DEPLOYMENTS_V2}/deployments/${enc(id)}/history`, { per_page: 100 });
      replace(history, historyList(events.items));
    } catch { /* shown again at the next refresh */ }
  };
  const refreshInsight = h("button", { type: "button", class: "btn btn-small", id: "refresh-insight", onclick: loadInsight }, "Refresh");
  loadInsight();
  return {
    nodes: [section("Rollout", controls, history), section("Why devices failed", refreshInsight, insight)],
    update,
  };
}
