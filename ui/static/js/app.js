// The single-page app: session check, layout, hash router, login form.

import { ApiError, get, login, logout } from "./api.js";
import { closeDialogs, field, h, replace, spinner, toast } from "./dom.js";

// Each page is a module of its own, loaded when first shown (and kept): a load fetches the shell
// and the page it opens, not all of them. A failed load is tried again at the next navigation.
function lazy(load) {
  let loading = null;
  return () => (loading ||= load().catch((err) => { loading = null; throw err; }));
}

const ROUTES = [
  [/^$/, lazy(() => import("./pages/dashboard.js")), "dashboard"],
  [/^devices$/, lazy(() => import("./pages/devices.js")), "devices"],
  [/^devices\/([^/]+)$/, lazy(() => import("./pages/device.js")), "devices"],
  [/^groups$/, lazy(() => import("./pages/fleet.js")), "groups"],
  [/^artifacts$/, lazy(() => import("./pages/artifacts.js")), "artifacts"],
  [/^releases\/(.+)$/, lazy(() => import("./pages/release.js")), "artifacts"],
  [/^deployments$/, lazy(() => import("./pages/deployments.js")), "deployments"],
  [/^deployments\/new$/, lazy(() => import("./pages/deployment_new.js")), "deployments"],
  [/^deployments\/([^/]+)$/, lazy(() => import("./pages/deployment.js")), "deployments"],
  [/^users$/, lazy(() => import("./pages/users.js")), "users"],
  [/^settings$/, lazy(() => import("./pages/settings.js")), "settings"],
  [/^settings\/integrations$/, lazy(() => import("./pages/integrations.js")), "settings"],
  [/^roles$/, lazy(() => import("./pages/roles.js")), "roles"],
  [/^auditlog$/, lazy(() => import("./pages/auditlog.js")), "auditlog"],
];

const NAV = [
  ["dashboard", "#/", "Dashboard"],
  ["devices", "#/devices", "Devices"],
  ["groups", "#/groups", "Groups"],
  ["artifacts", "#/artifacts", "Releases"],
  ["deployments", "#/deployments", "Deployments"],
  ["users", "#/users", "Users"],
  ["roles", "#/roles", "Roles"],
  ["auditlog", "#/auditlog", "Audit log"],
  ["settings", "#/settings", "Settings"],
];

const root = document.getElementById("app");
let me = null;
let org = null; // the user's organization: {id, name, status, tenant_token}
let current = null; // the running page's context (timers to stop on navigation)

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?");
  return { path: path.replace(/\/$/, ""), query: new URLSearchParams(qs || "") };
}

function pageContext(main) {
  const timers = [];
  const ctx = {
    main,
    alive: true,
    every(ms, fn) { timers.push(setInterval(() => { if (ctx.alive) fn(); }, ms)); },
    stop() { ctx.alive = false; timers.forEach(clearInterval); },
    me,
    org,
    setOrg(next) { org = next; ctx.org = next; const el = document.getElementById("org-name"); if (el) el.textContent = next.name; },
    refresh: () => route(),
  };
  return ctx;
}

function layout(active) {
  const nav = h("nav", { class: "nav", "aria-label": "Main" }, NAV.map(([key, href, label]) =>
    h("a", { href, class: key === active ? "active" : undefined, "aria-current": key === active ? "page" : undefined }, label)));
  const main = h("main", { id: "main", class: "main" });
  replace(root,
    h("header", { class: "topbar" },
      h("a", { class: "brand", href: "#/" }, h("span", { class: "brand-mark" }, "M"), "Mender server"),
      nav,
      h("div", { class: "user" },
        org ? h("span", { class: "org-name", id: "org-name", title: "Organization" }, org.name) : null,
        h("span", { class: "user-email" }, me.email),
        h("button", { type: "button", class: "btn btn-small", id: "logout", onclick: doLogout }, "Log out"))),
    main);
  return main;
}

async function route() {
  if (current) current.stop();
  if (!me) return;
  const { path, query } = parseHash();
  const match = ROUTES.map(([re, mod, key]) => [path.match(re), mod, key]).find(([m]) => m);
  const main = layout(match ? match[2] : "");
  if (!match) {
    replace(main, h("h1", {}, "Page not found"), h("p", {}, h("a", { href: "#/" }, "Back to the dashboard")));
    return;
  }
  const [m, load] = match;
  const ctx = current = pageContext(main);
  main.append(spinner());
  try {
    const mod = await load();
    if (current !== ctx) return; // navigated elsewhere while the page's module loaded
    await mod.render(ctx, m.slice(1).map(decodeURIComponent), query);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    replace(main, h("div", { class: "alert alert-error" }, `Could not load this page: ${err.message}`));
  }
}

function showLogin(message) {
  if (current) current.stop();
  me = null;
  const email = h("input", { type: "email", name: "email", id: "login-email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", id: "login-password", autocomplete: "current-password", required: true });
  const error = h("div", { class: "alert alert-error", role: "alert", hidden: !message }, message || "");
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block" }, "Log in");
  const form = h("form", { class: "login-form", onsubmit: async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await login(email.value, password.value);
      await start();
    } catch (err) {
      error.textContent = err.status === 401 ? "Wrong email or password." : `Login failed: ${err.message}`;
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  } }, field("Email", email), field("Password", password), error, submit);
  replace(root, h("div", { class: "login-page" },
    h("div", { class: "login-card" },
      h("div", { class: "login-brand" }, h("span", { class: "brand-mark" }, "M"), "Mender server"),
      h("h1", {}, "Log in"), form)));
  email.focus();
}

async function doLogout() {
  try { await logout(); } catch (err) { toast(`Logout: ${err.message}`, "error"); }
  showLogin("");
}

async function start() {
  // the page's module loads while the session is checked
  const first = ROUTES.find(([re]) => re.test(parseHash().path));
  if (first) first[1]().catch(() => {});
  try {
    [me, org] = await Promise.all([get("/api/management/v1/useradm/users/me"),
      get("/api/management/v1/tenantadm/user/tenant")]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { showLogin(""); return; }
    replace(root, h("div", { class: "alert alert-error" }, `The server did not answer: ${err.message}`));
    return;
  }
  if (!location.hash) location.hash = "#/";
  await route();
}

// a dialog belongs to the page it was opened on: a log or a form must not follow the operator
window.addEventListener("hashchange", () => { closeDialogs(); route(); });
window.addEventListener("session-expired", () => { if (me) showLogin("Your session has ended. Please log in again."); });
start();
