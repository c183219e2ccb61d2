// A selection of devices for bulk actions: some ids, or every device matching a search (the
// filters and text of the device list), sent to the server as one request whatever its size.

import { ApiError, request } from "./api.js";
import { h, modal, toast } from "./dom.js";
import { DEVAUTH, INVENTORY_V2 } from "./inventory.js";

export const fmtCount = (n) => Number(n).toLocaleString("en-US");
const plural = (n, word) => `${fmtCount(n)} ${word}${n === 1 ? "" : "s"}`;

// The request body part that names the devices: {device_ids} or {filters, text}.
export function selectionBody(selection) {
  if (selection.all) {
    const body = { filters: selection.filters };
    if (selection.text) body.text = selection.text;
    return body;
  }
  return { device_ids: [...selection.ids] };
}

// The server's {matched_count, updated_count, failed_count, failures} as one line and a list.
export function summarize(result) {
  const r = result || {};
  const parts = [plural(r.updated_count || 0, "device")];
  const unchanged = (r.matched_count || 0) - (r.updated_count || 0) - (r.failed_count || 0);
  if (unchanged > 0) parts.push(`${fmtCount(unchanged)} already so`);
  if (r.failed_count) parts.push(`${fmtCount(r.failed_count)} failed`);
  return parts.join(", ");
}

function resultPanel(title, result) {
  const failures = (result && result.failures) || [];
  const more = (result.failed_count || 0) - failures.length;
  return h("div", { class: `alert ${result.failed_count ? "alert-warn" : "alert-ok"} bulk-result`, role: "status" },
    h("strong", {}, `${title}: ${summarize(result)}`),
    failures.length ? h("ul", { class: "failures" }, failures.map((f) => h("li", {}, h("span", { class: "mono" }, f.id), `: ${f.error}`)),
      more > 0 ? h("li", {}, `… and ${fmtCount(more)} more`) : null) : null);
}

// Runs one bulk request; shows one toast and, when something failed, one panel in `into`.
export async function runBulk({ title, method, path, body, into }) {
  try {
    const { data } = await request(method, path, { json: body });
    toast(`${title}: ${summarize(data)}`, data.failed_count ? "error" : "success");
    if (into) into.replaceChildren(resultPanel(title, data));
    return data;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) throw err;
    toast(`${title} failed: ${err.message}`, "error");
    if (into) into.replaceChildren(h("div", { class: "alert alert-error bulk-result" }, `${title} failed: ${err.message}`));
    return null;
  }
}

export const bulkPaths = {
  status: () => ["PUT", `${DEVAUTH}/devices/status`],
  decommission: () => ["DELETE", `${DEVAUTH}/devices`],
  group: (name) => ["PATCH", `${INVENTORY_V2}/groups/${encodeURIComponent(name)}/devices`],
  ungroup: (name) => ["DELETE", `${INVENTORY_V2}/groups/${encodeURIComponent(name)}/devices`],
  tags: () => ["PATCH", `${INVENTORY_V2}/devices/tags`],
};

const GROUP_NAME = /^[A-Za-z0-9_-]{1,256}$/;

// Add the selection to a group, or take it out of one: one request either way.
export function bulkGroupDialog(selection, count, knownGroups, into, done) {
  const input = h("input", { id: "bulk-group-name", list: "bulk-group-names", placeholder: "group name", maxlength: "256", autocomplete: "off" });
  const error = h("div", { class: "field-error", role: "alert" });
  const check = () => {
    const v = input.value.trim();
    error.textContent = !v ? "" : GROUP_NAME.test(v) ? "" : "Letters, digits, '-' and '_' only.";
    return v && !error.textContent ? v : null;
  };
  input.addEventListener("input", check);
  const body = h("div", {}, h("datalist", { id: "bulk-group-names" }, knownGroups.map((g) => h("option", { value: g }))),
    h("label", { class: "field" }, h("span", { class: "field-label" }, "Group"), input, error,
      h("span", { class: "field-hint" }, "A new name creates the group. Devices move from any other group.")));
  const act = (ungroup) => async (close) => {
    const name = check();
    if (!name) { error.textContent = error.textContent || "Enter a group name."; input.focus(); return; }
    close();
    const [method, path] = (ungroup ? bulkPaths.ungroup : bulkPaths.group)(name);
    await runBulk({ title: ungroup ? `Removed from ${name}` : `Added to ${name}`, method, path, body: selectionBody(selection), into });
    done();
  };
  modal(`Group of ${plural(count, "device")}`, body, [
    { label: "Remove from this group", kind: "btn-ghost", onclick: act(true) },
    { label: "Add to group", onclick: act(false) },
  ]);
}

export function bulkTagDialog(selection, count, into, done) {
  const name = h("input", { id: "bulk-tag-name", placeholder: "name", maxlength: "1024" });
  const value = h("input", { id: "bulk-tag-value", placeholder: "value (empty: remove the tag)" });
  const error = h("div", { class: "field-error", role: "alert" });
  name.addEventListener("input", () => { error.textContent = name.value.trim() ? "" : "A tag needs a name."; });
  modal(`Tag ${plural(count, "device")}`, h("div", {},
    h("div", { class: "inline-form" },
      h("label", { class: "field" }, h("span", { class: "field-label" }, "Tag"), name),
      h("label", { class: "field" }, h("span", { class: "field-label" }, "Value"), value)), error), [{
    label: "Apply", onclick: async (close) => {
      if (!name.value.trim()) { error.textContent = "A tag needs a name."; name.focus(); return; }
      close();
      const [method, path] = bulkPaths.tags();
      await runBulk({ title: `Tagged ${name.value.trim()}`, method, path, into,
        body: { ...selectionBody(selection), tags: [{ name: name.value.trim(), value: value.value }] } });
      done();
    },
  }]);
}
