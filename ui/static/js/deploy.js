// Shared deployment helpers: statistics grouped for progress bars, list fetching.

import { ApiError, post } from "./api.js";
import { h, progressBar } from "./dom.js";

export const DEPLOYMENTS_V1 = "/api/management/v1/deployments";
export const DEPLOYMENTS_V2 = "/api/management/v2/deployments";

// Device-deployment statuses, grouped as the progress bars show them.
export const STAT_GROUPS = [
  ["success", "Succeeded", ["success"]],
  ["failure", "Failed", ["failure"]],
  ["inprogress", "In progress", ["downloading", "installing", "rebooting", "pause_before_installing",
    "pause_before_rebooting", "pause_before_committing"]],
  ["pending", "Pending", ["pending"]],
  ["skipped", "Skipped", ["noartifact", "already-installed"]],
  ["aborted", "Aborted", ["aborted", "decommissioned"]],
];

export function groupStats(stats) {
  const s = stats || {};
  const groups = STAT_GROUPS.map(([key, label, members]) => ({ key, label, count: members.reduce((n, m) => n + (Number(s[m]) || 0), 0) }));
  const total = groups.reduce((n, g) => n + g.count, 0);
  return { groups, total };
}

export function progressCell(stats, deviceCount) {
  const { groups, total } = groupStats(stats);
  const denominator = Math.max(total, deviceCount || 0);
  const done = groups.filter((g) => ["success", "failure", "skipped", "aborted"].includes(g.key)).reduce((n, g) => n + g.count, 0);
  return h("div", { class: "progress-cell" }, progressBar(groups, denominator),
    h("span", { class: "progress-text" }, `${done}/${denominator}`));
}

// Statistics of many deployments in one request: {id: stats}
export async function statisticsOf(ids) {
  if (!ids.length) return {};
  try {
    const list = await post(`${DEPLOYMENTS_V1}/deployments/statistics/list`, { deployment_ids: ids });
    return Object.fromEntries((list || []).map((item) => [item.id, item.stats || item.statistics || {}]));
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) return {};
    throw err;
  }
}

export function statsOf(deployment, byId) {
  return byId[deployment.id] || (deployment.statistics && deployment.statistics.status) || {};
}
