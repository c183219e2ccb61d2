// The audit log: who changed what and when, with filters and a CSV export.

import { request } from "../api.js";
import { field, fmtDate, h, pager, replace, section, table } from "../dom.js";
import { denyReason, loadPermissions } from "../perm.js";

const LOGS = "/api/management/v1/auditlogs/logs";
const TYPES = ["", "user", "user_access_token", "role", "device", "group", "filter", "deployment", "artifact", "release", "settings"];

function filterParams(query) {
  const out = {};
  for (const key of ["object_type", "object_id", "actor_email"]) if (query.get(key)) out[key] = query.get(key);
  for (const key of ["created_after", "created_before"]) {
    const v = query.get(key);
    if (v) out[key] = Math.floor(new Date(v).getTime() / 1000);
  }
  return out;
}

export async function render(ctx, _args, query) {
  const perms = await loadPermissions(ctx.me);
  if (!ctx.alive) return;
  const reason = denyReason(perms, "ReadAuditLogs");
  if (reason) {
    replace(ctx.main, h("div", { class: "page-head" }, h("h1", {}, "Audit log")), h("div", { class: "alert", id: "audit-denied" }, reason));
    return;
  }
  const page = Number(query.get("page") || 1);
  const params = filterParams(query);
  const { data, headers } = await request("GET", LOGS, { params: { ...params, page, per_page: 20 } });
  if (!ctx.alive) return;
  const total = Number(headers.get("X-Total-Count") || 0);
  const inputs = {
    object_type: h("select", { id: "audit-type" }, TYPES.map((t) => h("option", { value: t, selected: t === (query.get("object_type") || "") }, t || "any"))),
    object_id: h("input", { id: "audit-object", value: query.get("object_id") || "" }),
    actor_email: h("input", { id: "audit-actor", type: "email", value: query.get("actor_email") || "" }),
    created_after: h("input", { id: "audit-from", type: "date", value: query.get("created_after") || "" }),
    created_before: h("input", { id: "audit-to", type: "date", value: query.get("created_before") || "" }),
  };
  const go = (p) => {
    const q = new URLSearchParams();
    for (const [k, el] of Object.entries(inputs)) if (el.value) q.set(k, el.value);
    if (p > 1) q.set("page", String(p));
    location.hash = `#/auditlog${q.toString() ? `?${q}` : ""}`;
  };
  const exportHref = `${LOGS}/export?${new URLSearchParams(params)}`;
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Audit log")),
    section("Filters",
      h("form", { class: "inline-form", id: "audit-filters", onsubmit: (e) => { e.preventDefault(); go(1); } },
        field("Object type", inputs.object_type), field("Object id", inputs.object_id), field("Actor email", inputs.actor_email),
        field("From", inputs.created_after), field("To", inputs.created_before),
        h("button", { type: "submit", class: "btn btn-primary" }, "Filter"),
        h("a", { class: "btn", id: "audit-export", href: exportHref, download: "auditlogs.csv" }, "Export CSV"))),
    section(`Entries (${total})`,
      table([
        { title: "Time", render: (e) => fmtDate(e.time) },
        { title: "Actor", render: (e) => e.actor.email || `${e.actor.type} ${e.actor.id}` },
        { title: "Action", render: (e) => h("code", {}, e.action) },
        { title: "Object", render: (e) => `${e.object.type} ${e.object.name || e.object.id}` },
        { title: "Change", render: (e) => e.change },
        { title: "From", render: (e) => e.client_address },
      ], data || [], { emptyTitle: "No entries" }),
      pager({ page, perPage: 20, total, onChange: go })));
}
