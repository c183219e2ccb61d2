// Settings → Integrations: the organization's webhooks (iot-manager) and their recent deliveries.

import { del, get, post } from "../api.js";
import { badge, confirmAction, field, fmtAgo, fmtDate, h, link, replace, section, table, toast } from "../dom.js";

const API = "/api/management/v1/iot-manager";
const RECENT = 20; // events shown

// 32 random bytes as 64 hex digits: the longest HMAC key Mender's API takes.
function randomSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function urlProblem(value) {
  let url;
  try { url = new URL(value); } catch { return "Not a URL."; }
  if (!["http:", "https:"].includes(url.protocol)) return "Only http:// and https:// URLs.";
  return "";
}

function createForm(onCreated) {
  const url = h("input", { id: "webhook-url", type: "url", placeholder: "https://hooks.example.com/mender", required: true });
  const description = h("input", { id: "webhook-description", placeholder: "optional", maxlength: "1024" });
  const secret = h("input", { id: "webhook-secret", class: "mono", placeholder: "optional: up to 64 hex digits", autocomplete: "off",
    spellcheck: "false", pattern: "[0-9a-fA-F]{0,64}" });
  const error = h("div", { class: "field-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "btn btn-primary", id: "webhook-create" }, "Add webhook");
  const generate = h("button", { type: "button", class: "btn btn-small", id: "webhook-generate",
    onclick: () => { secret.value = randomSecret(); } }, "Generate");
  return h("form", { id: "webhook-form", class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    error.textContent = urlProblem(url.value.trim())
      || (/^[0-9a-fA-F]{0,64}$/.test(secret.value.trim()) ? "" : "The secret is up to 64 hexadecimal digits.");
    if (error.textContent) return;
    const http = { url: url.value.trim() };
    if (secret.value.trim()) http.secret = secret.value.trim();
    const body = { provider: "webhook", credentials: { type: "http", http } };
    if (description.value.trim()) body.description = description.value.trim();
    submit.disabled = true;
    try {
      await post(`${API}/integrations`, body);
      toast(http.secret ? "Webhook added. Keep the secret: it is never shown again." : "Webhook added", "success");
      onCreated();
    } catch (err) {
      error.textContent = err.message;
    } finally {
      submit.disabled = false;
    }
  } },
  field("URL", url), field("Description", description),
  field("Signing secret", h("div", { class: "inline-form" }, secret, generate), "HMAC-SHA256 key for the X-Men-Signature header"),
  submit, error);
}

function deliveryCell(status, names) {
  const state = status.state || (status.success ? "delivered" : "failed");
  const detail = [];
  if (status.status_code) detail.push(`HTTP ${status.status_code}`);
  if (status.error) detail.push(status.error);
  if (status.attempt_count > 1 || state !== "delivered") detail.push(`${status.attempt_count} attempt${status.attempt_count === 1 ? "" : "s"}`);
  if (state === "pending" && status.next_attempt) detail.push(`next ${fmtDate(status.next_attempt)}`);
  return h("div", { class: "delivery", dataset: { integration: status.integration_id, state } },
    badge(state), " ", h("span", { class: "muted small" }, names.get(status.integration_id) || status.integration_id.slice(0, 8)),
    detail.length ? h("div", { class: "muted small" }, detail.join(" · ")) : null);
}

function eventsTable(events, names) {
  return table([
    { title: "Time", render: (e) => h("span", { title: fmtDate(e.time) }, fmtAgo(e.time)) },
    { title: "Event", render: (e) => h("code", {}, e.type) },
    { title: "Subject", class: "mono", render: (e) => {
      const id = e.data && e.data.id;
      if (!id) return "—";
      return e.type.startsWith("device-") && e.type !== "device-decommissioned" ? link(`#/devices/${encodeURIComponent(id)}`, id)
        : e.type.startsWith("deployment-") ? link(`#/deployments/${encodeURIComponent(id)}`, id) : id;
    } },
    { title: "Deliveries", render: (e) => e.delivery_statuses.map((s) => deliveryCell(s, names)) },
  ], events, { emptyTitle: "No events yet", emptyHint: "Device admission and deployment changes are posted to every webhook.",
    rowAttrs: (e) => ({ class: "event-row", dataset: { type: e.type } }) });
}

export async function render(ctx) {
  const [integrations, events] = await Promise.all([get(`${API}/integrations`), get(`${API}/events`, { per_page: RECENT })]);
  if (!ctx.alive) return;
  const webhooks = (integrations || []).filter((i) => i.provider === "webhook");
  const names = new Map(webhooks.map((i) => [i.id, i.description || new URL(i.credentials.http.url).host]));
  const remove = async (integration) => {
    const ok = await confirmAction("Remove webhook", `Stop posting events to ${integration.credentials.http.url}? Its undelivered events are given up.`, "Remove");
    if (!ok) return;
    try { await del(`${API}/integrations/${integration.id}`); toast("Webhook removed", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  const list = table([
    { title: "URL", class: "mono", render: (i) => i.credentials.http.url },
    { title: "Description", render: (i) => i.description || "—" },
    { title: "Signed", render: (i) => (i.credentials.http.secret ? "yes" : "no") },
    { title: "", render: (i) => h("button", { type: "button", class: "btn btn-small btn-danger", "aria-label": `remove ${i.credentials.http.url}`,
      onclick: () => remove(i) }, "Remove") },
  ], webhooks, { emptyTitle: "No webhooks", emptyHint: "Add one below: device and deployment events are posted to it.",
    rowAttrs: (i) => ({ class: "webhook-row", dataset: { id: i.id } }) });
  const recent = h("div", { id: "webhook-events" }, eventsTable(events || [], names));
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Integrations"), link("#/settings", "‹ Settings")),
    section("Webhooks",
      h("p", { class: "muted" }, "Each event is posted as JSON, signed when a secret is set, retried with backoff while the receiver fails. ",
        "See docs/iotmanager.md for the payloads and how to verify a signature."),
      h("div", { id: "webhook-list" }, list), h("h3", {}, "Add a webhook"), createForm(ctx.refresh)),
    section(`Recent deliveries (last ${RECENT} events)`, recent));
  ctx.every(5000, async () => {
    try {
      const latest = await get(`${API}/events`, { per_page: RECENT });
      if (ctx.alive) replace(recent, eventsTable(latest || [], names));
    } catch { /* the next round tries again; a 401 has already sent the operator to the login form */ }
  });
}
