// Users of the organization, the operator's own password, and personal access tokens.

import { del, enc, get, post, put } from "../api.js";
import { confirmAction, field, fmtAgo, fmtDate, h, modal, replace, section, table, toast } from "../dom.js";
import { denyReason, loadPermissions } from "../perm.js";

const USERADM = "/api/management/v1/useradm";
const EXPIRY = [["2592000", "30 days"], ["7776000", "90 days"], ["31536000", "1 year"], ["0", "never"]];

// Checkboxes for roles; `names` limits the choice (a token: its user's roles), `checked` the preset,
// `locked` roles shown but not changeable (only an administrator gives or takes the admin role).
function rolePicker(id, roles, { names = null, checked = [], locked = {} } = {}) {
  const boxes = roles.filter((r) => !names || names.includes(r.name)).map((r) => {
    const box = h("input", { type: "checkbox", value: r.name, id: `${id}-${r.name}`, checked: checked.includes(r.name),
      disabled: Boolean(locked[r.name]) });
    return { box, el: h("label", { class: "role-choice", title: locked[r.name] || r.description || "" }, box, " ", r.name,
      locked[r.name] ? h("span", { class: "muted" }, ` (${locked[r.name]})`) : null) };
  });
  return { el: h("div", { class: "role-picker", id }, boxes.map((b) => b.el)), value: () => boxes.filter((b) => b.box.checked).map((b) => b.box.value) };
}

function adminLock(perms) {
  return perms.isAdmin ? {} : { RBAC_ROLE_PERMIT_ALL: "only an administrator gives it" };
}

function addUserDialog(perms, done) {
  const email = h("input", { type: "email", id: "new-user-email", autocomplete: "off" });
  const password = h("input", { type: "password", id: "new-user-password", autocomplete: "new-password" });
  const picker = rolePicker("new-user-roles", perms.roles, { checked: perms.isAdmin ? ["RBAC_ROLE_PERMIT_ALL"] : [], locked: adminLock(perms) });
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal("Add a user", h("div", {}, field("Email", email), field("Password", password, "At least 8 characters."), field("Roles", picker.el), error), [{
    label: "Add user", onclick: async (close) => {
      try { await post(`${USERADM}/users`, { email: email.value.trim(), password: password.value, roles: picker.value() }); toast("User added", "success"); close(); done(); } catch (err) { error.textContent = err.message; error.hidden = false; }
    },
  }]);
}

function editRolesDialog(perms, user, done) {
  const picker = rolePicker("edit-user-roles", perms.roles, { checked: user.roles || [], locked: adminLock(perms) });
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal(`Roles of ${user.email}`, h("div", {}, picker.el, error), [{
    label: "Save roles", onclick: async (close) => {
      try { await put(`${USERADM}/users/${enc(user.id)}`, { roles: picker.value() }); toast("Roles saved", "success"); close(); done(); } catch (err) { error.textContent = err.message; error.hidden = false; }
    },
  }]);
}

function newTokenDialog(perms, me, done) {
  const name = h("input", { id: "token-name", maxlength: "100" });
  const expiry = h("select", { id: "token-expiry" }, EXPIRY.map(([v, label]) => h("option", { value: v }, label)));
  const picker = rolePicker("token-roles", perms.roles, { names: me.roles || [], checked: me.roles || [] });
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal("New personal access token", h("div", {}, field("Name", name), field("Expires in", expiry),
    field("Acts with", picker.el, "A subset of your roles; the token never has more than you."), error), [{
    label: "Create", onclick: async (close) => {
      try {
        const chosen = picker.value();
        const body = { name: name.value.trim(), expires_in: Number(expiry.value) };
        if (chosen.length !== (me.roles || []).length) body.roles = chosen;
        const token = await post(`${USERADM}/settings/tokens`, body);
        close();
        const box = h("textarea", { id: "new-token", rows: "5", readonly: true, class: "mono" });
        box.value = token;
        modal("Copy your token now", h("div", {}, h("p", {}, "It is shown only once. Use it as `Authorization: Bearer <token>`."), box), [{
          label: "Copy", onclick: async (c) => { try { await navigator.clipboard.writeText(token); toast("Copied", "success"); } catch { box.select(); } c(); },
        }], { cancelLabel: "Done" });
        done();
      } catch (err) { error.textContent = err.message; error.hidden = false; }
    },
  }]);
}

function passwordForm(me) {
  const current = h("input", { type: "password", id: "current-password", autocomplete: "current-password" });
  const next = h("input", { type: "password", id: "new-password", autocomplete: "new-password" });
  return h("form", { class: "inline-form", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await put(`${USERADM}/users/me`, { password: next.value, current_password: current.value });
      toast("Password changed", "success");
      e.target.reset();
    } catch (err) { toast(`Password: ${err.message}`, "error"); }
  } }, h("input", { type: "email", hidden: true, autocomplete: "username", value: me.email }),
  field("Current password", current), field("New password", next), h("button", { type: "submit", class: "btn btn-primary" }, "Change password"));
}

export async function render(ctx) {
  const perms = await loadPermissions(ctx.me);
  const readReason = denyReason(perms, "ReadUsers");
  const manageReason = denyReason(perms, "ManageUsers");
  const [users, tokens] = await Promise.all([readReason ? [] : get(`${USERADM}/users`, { per_page: 500 }), get(`${USERADM}/settings/tokens`)]);
  if (!ctx.alive) return;
  const removeUser = (u) => async () => {
    if (!(await confirmAction("Remove user", `Remove ${u.email}? Their sessions and tokens stop working.`, "Remove"))) return;
    try { await del(`${USERADM}/users/${enc(u.id)}`); toast("User removed", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  const revoke = (t) => async () => {
    if (!(await confirmAction("Revoke token", `Revoke "${t.name}"? Clients using it are locked out.`, "Revoke"))) return;
    try { await del(`${USERADM}/settings/tokens/${enc(t.id)}`); toast("Token revoked", "success"); ctx.refresh(); } catch (err) { toast(err.message, "error"); }
  };
  replace(ctx.main,
    h("div", { class: "page-head" }, h("h1", {}, "Users and access tokens")),
    section("Users",
      h("div", { class: "toolbar" },
        h("button", { type: "button", class: "btn btn-primary", id: "add-user", disabled: Boolean(manageReason), title: manageReason || "",
          onclick: () => addUserDialog(perms, ctx.refresh) }, "Add user"),
        manageReason ? h("span", { class: "muted", id: "add-user-reason" }, manageReason) : null),
      readReason ? h("div", { class: "alert", id: "users-denied" }, readReason) : table([
        { title: "Email", render: (u) => h("span", {}, u.email, u.id === ctx.me.id ? h("span", { class: "badge badge-you" }, "you") : null) },
        { title: "Roles", render: (u) => (u.roles || []).join(", ") || "—" },
        { title: "Created", render: (u) => fmtDate(u.created_ts) },
        { title: "Last login", render: (u) => fmtAgo(u.login_ts) },
        { title: "", class: "col-actions", render: (u) => (manageReason ? null : h("span", {},
          h("button", { type: "button", class: "btn btn-small", onclick: () => editRolesDialog(perms, u, ctx.refresh) }, "Roles"),
          u.id === ctx.me.id ? null : h("button", { type: "button", class: "btn btn-small btn-danger", onclick: removeUser(u) }, "Remove"))) },
      ], users || [], { emptyTitle: "No users" })),
    section("My password", passwordForm(ctx.me)),
    section("Personal access tokens",
      h("p", { class: "muted" }, "Tokens let scripts and mender-cli call the management API as you."),
      h("div", { class: "toolbar" }, h("button", { type: "button", class: "btn btn-primary", id: "new-token-button", onclick: () => newTokenDialog(perms, ctx.me, ctx.refresh) }, "New token")),
      table([
        { title: "Name", render: (t) => t.name },
        { title: "Created", render: (t) => fmtDate(t.created_ts) },
        { title: "Expires", render: (t) => (t.expiration_date ? fmtDate(t.expiration_date) : "never") },
        { title: "Last used", render: (t) => fmtAgo(t.last_used) },
        { title: "Acts with", render: (t) => (t.roles ? t.roles.join(", ") : "all my roles") },
        { title: "", class: "col-actions", render: (t) => h("button", { type: "button", class: "btn btn-small btn-danger", onclick: revoke(t) }, "Revoke") },
      ], tokens || [], { emptyTitle: "No access tokens" })));
}
