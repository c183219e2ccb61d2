// Users of the organization, the operator's own password, and personal access tokens.

import { del, enc, get, post, put } from "../api.js";
import { confirmAction, field, fmtAgo, fmtDate, h, modal, replace, section, table, toast } from "../dom.js";

const USERADM = "/api/management/v1/useradm";
const EXPIRY = [["2592000", "30 days"], ["7776000", "90 days"], ["31536000", "1 year"], ["0", "never"]];

function addUserDialog(done) {
  const email = h("input", { type: "email", id: "new-user-email", autocomplete: "off" });
  const password = h("input", { type: "password", id: "new-user-password", autocomplete: "new-password" });
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal("Add a user", h("div", {}, field("Email", email), field("Password", password, "At least 8 characters."), error), [{
    label: "Add user", onclick: async (close) => {
      try { await post(`${USERADM}/users`, { email: email.value.trim(), password: password.value }); toast("User added", "success"); close(); done(); } catch (err) { error.textContent = err.message; error.hidden = false; }
    },
  }]);
}

function newTokenDialog(done) {
  const name = h("input", { id: "token-name", maxlength: "100" });
  const expiry = h("select", { id: "token-expiry" }, EXPIRY.map(([v, label]) => h("option", { value: v }, label)));
  const error = h("div", { class: "alert alert-error", hidden: true });
  modal("New personal access token", h("div", {}, field("Name", name), field("Expires in", expiry), error), [{
    label: "Create", onclick: async (close) => {
      try {
        const token = await post(`${USERADM}/settings/tokens`, { name: name.value.trim(), expires_in: Number(expiry.value) });
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
  const [users, tokens] = await Promise.all([get(`${USERADM}/users`, { per_page: 500 }), get(`${USERADM}/settings/tokens`)]);
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
      h("div", { class: "toolbar" }, h("button", { type: "button", class: "btn btn-primary", id: "add-user", onclick: () => addUserDialog(ctx.refresh) }, "Add user")),
      table([
        { title: "Email", render: (u) => h("span", {}, u.email, u.id === ctx.me.id ? h("span", { class: "badge badge-you" }, "you") : null) },
        { title: "Created", render: (u) => fmtDate(u.created_ts) },
        { title: "Last login", render: (u) => fmtAgo(u.login_ts) },
        { title: "", class: "col-actions", render: (u) => (u.id === ctx.me.id ? null : h("button", { type: "button", class: "btn btn-small btn-danger", onclick: removeUser(u) }, "Remove")) },
      ], users || [], { emptyTitle: "No users" })),
    section("My password", passwordForm(ctx.me)),
    section("Personal access tokens",
      h("p", { class: "muted" }, "Tokens let scripts and mender-cli call the management API as you."),
      h("div", { class: "toolbar" }, h("button", { type: "button", class: "btn btn-primary", id: "new-token-button", onclick: () => newTokenDialog(ctx.refresh) }, "New token")),
      table([
        { title: "Name", render: (t) => t.name },
        { title: "Created", render: (t) => fmtDate(t.created_ts) },
        { title: "Expires", render: (t) => (t.expiration_date ? fmtDate(t.expiration_date) : "never") },
        { title: "Last used", render: (t) => fmtAgo(t.last_used) },
        { title: "", class: "col-actions", render: (t) => h("button", { type: "button", class: "btn btn-small btn-danger", onclick: revoke(t) }, "Revoke") },
      ], tokens || [], { emptyTitle: "No access tokens" })));
}
