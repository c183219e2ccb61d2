// Roles: the built-in roles and the organization's custom roles, each a list of permission sets,
// some limited to device groups or release tags.

import { del, enc, post } from "../api.js";
import { confirmAction, field, h, modal, replace, section, table, toast } from "../dom.js";
import { denyReason, loadPermissions } from "../perm.js";

const ROLES = "/api/management/v2/useradm/roles";

function describe(role) {
  return h("ul", { class: "plain-list" }, (role.permission_sets_with_scope || []).map((ps) => h("li", {},
    h("code", {}, ps.name),
    ps.scope ? h("span", { class: "muted" }, ` limited to ${ps.scope.type === "DeviceGroups" ? "groups" : "tags"}: ${ps.scope.value.join(", ")}`) : null)));
}

function newRoleDialog(perms, done) {
  const name = h("input", { id: "role-name", maxlength: "64" });
  const description = h("input", { id: "role-description", maxlength: "1024" });
  const rows = perms.sets.filter((s) => s.name !== "SuperUser").map((s) => {
    const check = h("input", { type: "checkbox", id: `role-set-${s.name}`, value: s.name });
    const scope = s.supported_scope_types.length
      ? h("input", { id: `role-scope-${s.name}`, placeholder: s.supported_scope_types[0] === "DeviceGroups" ? "all devices, or groups: lab, testing" : "all releases, or tags: approved" })
      : null;
    return { s, check, scope, el: h("div", { class: "role-set" }, h("label", {}, check, " ", h("code", {}, s.name), h("span", { class: "muted" }, ` ${s.description}`)), scope) };
  });
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal("New role", h("div", {}, field("Name", name, "Letters, digits, '_', '.', '-'."), field("Description", description),
    h("div", { class: "role-sets" }, rows.map((r) => r.el)), error), [{
    label: "Create role", onclick: async (close) => {
      const sets = rows.filter((r) => r.check.checked).map((r) => {
        const values = r.scope ? r.scope.value.split(",").map((v) => v.trim()).filter(Boolean) : [];
        return values.length ? { name: r.s.name, scope: { type: r.s.supported_scope_types[0], value: values } } : { name: r.s.name };
      });
      try {
        await post(ROLES, { name: name.value.trim(), description: description.value, permission_sets_with_scope: sets });
        toast("Role created", "success"); close(); done();
      } catch (err) { error.textContent = err.message; error.hidden = false; }
    },
  }], { wide: true });
}

export async function render(ctx) {
  const perms = await loadPermissions(ctx.me);
  if (!ctx.alive) return;
  const reason = denyReason(perms, "ManageUsers");
  const remove = (r) => async () => {
    if (!(await confirmAction("Remove role", `Remove the role ${r.name}?`, "Remove"))) return;
    try { await del(`${ROLES}/${enc(r.name)}`); toast("Role removed", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Roles")),
    section("Roles",
      h("div", { class: "toolbar" },
        h("button", { type: "button", class: "btn btn-primary", id: "new-role", disabled: Boolean(reason), title: reason || "",
          onclick: () => newRoleDialog(perms, ctx.refresh) }, "New role"),
        reason ? h("span", { class: "muted", id: "new-role-reason" }, reason) : null),
      table([
        { title: "Name", render: (r) => h("span", {}, h("code", {}, r.name), r.built_in ? h("span", { class: "badge" }, "built-in") : null,
          (ctx.me.roles || []).includes(r.name) ? h("span", { class: "badge badge-you" }, "yours") : null) },
        { title: "Description", render: (r) => r.description },
        { title: "Permission sets", render: describe },
        { title: "", class: "col-actions", render: (r) => (r.built_in || reason ? null
          : h("button", { type: "button", class: "btn btn-small btn-danger", onclick: remove(r) }, "Remove")) },
      ], perms.roles, { emptyTitle: "No roles" })));
}
